"""End-to-end tests of the training binary: learning, resuming, bad input."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

import gin
from hvrnn_tf.training import task
from hvrnn_tf.training import workdir as workdir_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY_GIN = str(REPO_ROOT / "gin" / "tiny.gin")
TINY_TRAINING = """
train.learning_rate = 7.5e-4
train.lr_reference_batch = 4
train.lr_warmup_epochs = 0
train.log_every = 10
train.summary_every = 10
train.image_summary_every = 20
train.checkpoint_every = 20
train.sample_sequences = 1
train.samples_per_sequence = 2
"""


def run_events(workdir):
  """TensorBoard's own reader over every event file of a run's train/ logs."""
  accumulator = event_accumulator.EventAccumulator(
    os.path.join(workdir, "train"), size_guidance={"tensors": 0}
  )
  return accumulator.Reload()


def scalar_events(workdir, tag):
  """[(step, value)] of a scalar summary (tf.summary writes them as tensors)."""
  return sorted(
    (e.step, float(tf.make_ndarray(e.tensor_proto)))
    for e in run_events(workdir).Tensors(tag)
  )


def run_training(workdir, num_steps):
  gin.clear_config()
  gin.parse_config_files_and_bindings(
    [TINY_GIN], TINY_TRAINING + f"train.num_steps = {num_steps}"
  )
  return task.train(str(workdir))


def test_short_run_learns_checkpoints_and_resumes(tmp_path):
  outcome = run_training(tmp_path, 40)
  assert outcome.step == 40 and outcome.interrupted_by is None
  losses = [v for _, v in scalar_events(tmp_path, "loss")]
  assert len(losses) == 4 and losses[-1] < losses[0]
  assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith(
    "ckpt-40"
  )
  config = (tmp_path / "operative_config.gin").read_text()
  assert "ModelConfig.n_hid = 4" in config
  samples = sorted(p.name for p in (tmp_path / "samples" / "step_40").iterdir())
  assert samples == ["sample_0.gif", "sample_0.png"]
  first_weights = [v.numpy() for v in outcome.trainer.model.trainable_variables]

  resumed = run_training(tmp_path, 50).trainer
  assert resumed.current_step == 50
  steps = [s for s, _ in scalar_events(tmp_path, "loss")]
  assert steps == [10, 20, 30, 40, 50]  # continued at 40, did not restart
  assert int(resumed.optimizer.iterations) == 50
  assert any(
    np.abs(a - b.numpy()).max() > 0
    for a, b in zip(first_weights, resumed.model.trainable_variables)
  )
  tags = run_events(tmp_path).Tags()["tensors"]
  assert {
    "loss",
    "nll",
    "kl",
    "kl_level_0",
    "kl_level_1",
    "beta",
    "learning_rate",
    "steps_per_second",
    "skipped_corrupt_records",
    "truth_reconstruction_prior",
    "operative_config",
  } <= set(tags)


def run_binary(*args, cwd=REPO_ROOT):
  return subprocess.run(
    [sys.executable, "-m", "hvrnn_tf.train", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
  )


@pytest.mark.parametrize(
  "args,message",
  [
    (
      ["--gin_param=model.ModelConfig.n_hidd = 3"],
      "unknown gin parameter 'n_hidd' of 'model.ModelConfig' in binding "
      "model.ModelConfig.n_hidd = 3",
    ),
    (["--gin_param=train.num_steps = (3"], "gin syntax error"),
    (["--gin_file=gin/does_not_exist.gin"], "does_not_exist.gin"),
    (
      [
        "--gin_file=gin/smmnist_quick.gin",
        "--gin_param=model.ModelConfig.latent_resolutions = (1, 12)",
        "--gin_param=model.ModelConfig.latent_channels = (2, 2)",
      ],
      "ModelConfig.latent_resolutions",
    ),
    (
      [
        "--gin_file=gin/smmnist_quick.gin",
        "--gin_param=data.make_dataset.source = 'tfrecord'",
        "--gin_param=data.make_dataset.file_pattern = '/nonexistent/*.tfrecord'",
      ],
      "/nonexistent/",
    ),
  ],
)
def test_bad_configuration_is_a_clear_error(tmp_path, args, message):
  result = run_binary(f"--workdir={tmp_path / 'run'}", *args)
  assert result.returncode != 0
  _, marker, error = result.stderr.partition("hvrnn_tf.train: error:")
  assert marker and message in error
  assert "\n" not in error.strip()  # One line, the last.
  assert "Traceback" not in result.stderr


def test_workdir_defaults_to_runs_and_the_gin_file_s_stem(tmp_path):
  result = run_binary(
    "--gin_file=tiny.gin", "--gin_param=train.num_steps = 1", cwd=tmp_path
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Workdir: runs/tiny (from --gin_file)" in result.stderr
  assert (tmp_path / "runs" / "tiny" / "checkpoints").is_dir()
  assert workdir_lib.default_workdir(["a/b/bair.gin", "c.gin"]) == "runs/bair"
  with pytest.raises(ValueError, match="--workdir"):
    workdir_lib.default_workdir([])
