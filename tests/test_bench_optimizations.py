"""bench.optimizations: the optimisations in the model keep the numerics of the paths they replace."""

import json

import pytest

from bench import optimizations


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_optimizations_bench_writes_json_and_keeps_numerics(tmp_path):
  out = tmp_path / "optimizations.json"
  optimizations.main(
    [
      "--cases=micro:1:full_kernel_1x1",
      "--warmup=1",
      "--repeats=1",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  (result,) = record["results"]
  assert result["status"] == "ok", result
  assert (
    result["optimisation"] == "center_tap_1x1" and result["role"] == "reference"
  )
  for key in (
    "ms_per_step_model",
    "ms_per_step_patched",
    "ms_per_step_without",
    "ms_per_step_with",
    "speedup",
    "loss_abs_diff",
    "max_gradient_relative_diff",
    "parameters_model",
    "parameters_patched",
  ):
    assert key in result
  # A reference patch restores the old path: "without" the optimisation is the patched run.
  assert result["ms_per_step_without"] == result["ms_per_step_patched"]
  assert (
    result["speedup"]
    == result["ms_per_step_patched"] / result["ms_per_step_model"]
  )
  assert result["parameters_model"] == result["parameters_patched"]
  assert result["loss_abs_diff"] <= 1e-5 * max(1.0, abs(result["loss_model"]))
  assert result["max_gradient_relative_diff"] < 1e-5
  dead = record["dead_weights"]["micro"]
  assert 0 < dead["dead_kernel_parameters"] < dead["parameters"]


def test_optimizer_patch_is_compared_on_the_update():
  """unfused_adam: same gradients (the ELBO is untouched), update equal to rounding."""
  from bench import common  # pylint: disable=g-import-not-at-top

  config = common.model_config("micro")
  trainer = common.make_trainer(config, 1)
  result = optimizations.compare_numerics(
    trainer.model, common.synthetic_video(config, 1), "unfused_adam"
  )
  assert result["max_gradient_relative_diff"] == 0
  # Measured as (new - old) weights: an ulp of a weight ~0.1 is ~1e-5 of a
  # first Adam step of lr = 1e-3, whichever kernel computed the step.
  assert 0 <= result["max_update_relative_diff"] < 1e-4
  assert result["global_update_relative_diff"] < 1e-5
  assert result["worst_update_variable"]["max_abs"] > 0  # the update moved it
