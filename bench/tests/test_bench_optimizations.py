"""bench.optimizations: each speed path timed and compared by config switch."""

import json

import pytest

from bench import optimizations


@pytest.mark.slow  # two Trainers traced and timed: 10-35 s
def test_optimizations_bench_writes_json(tmp_path):
  out = tmp_path / "optimizations.json"
  optimizations.main(
    [
      "--cases=micro:1:group_norm_xla_gradient",
      "--warmup=1",
      "--repeats=1",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  (result,) = record["results"]
  assert result["status"] == "ok", result
  assert result["settings_without"] == {"group_norm_xla_gradient": False}
  assert (
    result["speedup"]
    == result["ms_per_step_without"] / result["ms_per_step_with"]
  )
  # The equivalence itself is tests/test_group_norm.py's; here only that the
  # two models were compared from the same weights.
  assert result["loss_abs_diff"] <= 1e-5 * max(1.0, abs(result["loss"]))


def test_unknown_optimisations_are_named():
  with pytest.raises(ValueError, match="nope"):
    optimizations.main(["--cases=micro:1:nope"])
