"""A short soak run (bench/soak.py): random kills, resumes, a valid model at the end.

Slow (minutes); run with `pytest -m slow bench/tests/test_bench_soak.py`. The full soak is
`python -m bench.soak --minutes=20 --kills=5` (last result in docs/RELIABILITY.md).
"""

import json

import pytest

from bench import soak

# The tiny model with one latent level and one decoder ConvLSTM: each of the
# four runs starts (traces its train step) a third faster.
SMALLER_MODEL = [
  "model.ModelConfig.latent_resolutions = (1,)",
  "model.ModelConfig.latent_channels = (2,)",
  "model.ModelConfig.decoder_convlstm_layers = 1",
]


@pytest.mark.slow
def test_short_soak_ends_with_a_valid_model(tmp_path):
  """~2 min: 1.5 min of training, checkpoints every 5 s (so that the second
  stop lands inside a write), then the final checks."""
  output = tmp_path / "soak.json"
  status = soak.main(
    [
      f"--workdir={tmp_path / 'run'}",
      "--minutes=1.5",
      "--kills=3",
      "--checkpoint_secs=5",
      "--seed=1",
      f"--output={output}",
    ]
    + [f"--gin_param={p}" for p in SMALLER_MODEL]
  )
  result = json.loads(output.read_text())
  assert status == 0 and result["ok"], result["problems"]
  assert [s["kind"] for s in result["stops"]] == [
    "sigkill",
    "sigkill_in_checkpoint_write",
    "sigint",
    "sigterm",
  ]
  assert result["kills_inside_checkpoint_writes"] >= 1
  assert result["final_step"] > 0
  # Training went on across the stops: the loss fell between the first and
  # the last steps of the curve (windows of up to 20 steps, disjoint).
  assert result["loss_window_steps"] >= 1, result
  assert result["loss_last_mean"] < result["loss_first_mean"], result
