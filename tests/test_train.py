"""End-to-end tests of the training binary: learning, resuming, bad input."""

import os
import pathlib
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf import train
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY_TRAINING = """
model.ModelConfig.image_size = 32
model.ModelConfig.channels = 1
model.ModelConfig.context_frames = 2
model.ModelConfig.future_frames = 2
model.ModelConfig.n_hid = 4
model.ModelConfig.channel_multipliers = (1, 2, 4, 4, 4)
model.ModelConfig.latent_resolutions = (1, 8)
model.ModelConfig.latent_channels = (2, 2)
model.ModelConfig.decoder_convlstm_layers = 2
model.ModelConfig.reconstruction_loss = "bernoulli"
train.batch_size = 4
train.lr_start = 3e-3
train.lr_end = 3e-3
train.lr_warmup_epochs = 0
train.log_every = 10
train.summary_every = 10
train.image_summary_every = 20
train.checkpoint_every = 20
train.sample_sequences = 1
train.samples_per_sequence = 2
"""


def scalar_events(workdir, tag):
  """[(step, value)] of a scalar summary across all event files of a run."""
  events = []
  for path in tf.io.gfile.glob(os.path.join(workdir, "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          events.append((event.step, float(tf.make_ndarray(value.tensor))))
  return sorted(events)


def run_training(workdir, num_steps):
  gin.clear_config()
  gin.parse_config(TINY_TRAINING + f"train.num_steps = {num_steps}")
  return train.train(str(workdir))


def test_short_run_learns_checkpoints_and_resumes(tmp_path):
  trainer = run_training(tmp_path, 40)
  assert int(trainer.step) == 40
  losses = [v for _, v in scalar_events(tmp_path, "loss")]
  assert len(losses) == 4 and losses[-1] < losses[0]
  assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith("ckpt-40")
  config = (tmp_path / "operative_config.gin").read_text()
  assert "ModelConfig.n_hid = 4" in config
  samples = sorted(p.name for p in (tmp_path / "samples" / "step_40").iterdir())
  assert samples == ["sample_0.gif", "sample_0.png"]
  first_weights = [v.numpy() for v in trainer.model.trainable_variables]

  resumed = run_training(tmp_path, 50)
  assert int(resumed.step) == 50
  steps = [s for s, _ in scalar_events(tmp_path, "loss")]
  assert steps == [10, 20, 30, 40, 50]  # continued at 40, did not restart
  assert int(resumed.optimizer.iterations) == 50
  assert any(np.abs(a - b.numpy()).max() > 0 for a, b in
             zip(first_weights, resumed.model.trainable_variables))
  for tag in ("nll", "kl", "kl_level_0", "kl_level_1", "beta",
              "learning_rate", "steps_per_second"):
    assert scalar_events(tmp_path, tag), tag


def run_binary(*args):
  return subprocess.run(
      [sys.executable, "-m", "hvrnn_tf.train", *args], cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


@pytest.mark.parametrize("args,message", [
    (["--gin_param=model.ModelConfig.n_hidd = 3"], "n_hidd"),
    (["--gin_file=gin/does_not_exist.gin"], "does_not_exist.gin"),
    (["--gin_file=gin/smmnist_quick.gin",
      "--gin_param=model.ModelConfig.latent_resolutions = (1, 12)",
      "--gin_param=model.ModelConfig.latent_channels = (2, 2)"],
     "ModelConfig.latent_resolutions"),
    (["--gin_file=gin/smmnist_quick.gin",
      "--gin_param=data.make_dataset.source = 'tfrecord'",
      "--gin_param=data.make_dataset.file_pattern = '/nonexistent/*.tfrecord'"],
     "/nonexistent/"),
])
def test_bad_configuration_is_a_clear_error(tmp_path, args, message):
  result = run_binary(f"--workdir={tmp_path / 'run'}", *args)
  assert result.returncode != 0
  _, marker, error = result.stderr.partition("hvrnn_tf.train: error:")
  assert marker and message in error
  assert "Traceback" not in result.stderr


def test_unwritable_workdir_is_a_clear_error(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(OSError, match="not writable"):
    train.check_writable(str(blocker / "run"))
