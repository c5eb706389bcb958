"""Smoke test of bench.sampling; the naive O(T^2) sampler must draw the same frames."""

import json

import pytest

from bench import sampling


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_sampling_bench_writes_json(tmp_path):
  out = tmp_path / "sampling.json"
  sampling.main(
    [
      "--protocol=micro:2",
      "--future_frames=2",
      "--per_sample_max=1",
      "--scaling_config=micro",
      "--scaling_samples=2",
      "--lengths=1,2",
      "--warmup=1",
      "--repeats=1",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["hardware"]["tensorflow"] and "results" in record
  protocol = [r for r in record["results"] if r["section"] == "protocol"]
  assert {r["variant"] for r in protocol} == {"batched", "per_sample"}
  for r in protocol:
    assert r["status"] == "ok", r
    for key in (
      "frames_per_s",
      "seconds",
      "num_samples",
      "future_frames",
      "timing",
    ):
      assert key in r
  scaling = [r for r in record["results"] if r["section"] == "scaling"]
  assert {(r["variant"], r["future_frames"]) for r in scaling} == {
    ("carried_states_O(T)", 1),
    ("carried_states_O(T)", 2),
    ("naive_O(T^2)", 1),
    ("naive_O(T^2)", 2),
  }
  assert all(r["status"] == "ok" for r in scaling)
  assert all(
    "ratio_vs_half_length" in r for r in scaling if r["future_frames"] == 2
  )
  # Same seed, same per-step noise: the O(T) and the naive sampler agree.
  assert record["naive_equals_carried"]["max_abs_diff"] < 1e-5
