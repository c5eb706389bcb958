"""End-to-end tests of the training binary: learning, resuming, bad input."""

import os
import pathlib
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from hvrnn_tf import schedules
from hvrnn_tf import train
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

# Trainer arguments for the unit tests: a constant learning rate 1.25e-4 at
# batch 2, beta 1 from the start, the paper's weight decay.
TINY_OPTIMIZER = dict(learning_rate=1.25e-4, lr_reference_batch=2,
                      lr_warmup_epochs=0, beta=1.0, beta_warmup_epochs=0,
                      weight_decay=1e-4)


def run_events(workdir):
  """TensorBoard's own reader over every event file of a run's train/ logs."""
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(workdir, "train"), size_guidance={"tensors": 0})
  return accumulator.Reload()


def scalar_events(workdir, tag):
  """[(step, value)] of a scalar summary (tf.summary writes them as tensors)."""
  return sorted((e.step, float(tf.make_ndarray(e.tensor_proto)))
                for e in run_events(workdir).Tensors(tag))


def run_training(workdir, num_steps):
  gin.clear_config()
  gin.parse_config_files_and_bindings(
      [TINY_GIN], TINY_TRAINING + f"train.num_steps = {num_steps}")
  return train.train(str(workdir))


def test_short_run_learns_checkpoints_and_resumes(tmp_path):
  trainer = run_training(tmp_path, 40)
  assert trainer.current_step == 40
  losses = [v for _, v in scalar_events(tmp_path, "loss")]
  assert len(losses) == 4 and losses[-1] < losses[0]
  assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith("ckpt-40")
  config = (tmp_path / "operative_config.gin").read_text()
  assert "ModelConfig.n_hid = 4" in config
  samples = sorted(p.name for p in (tmp_path / "samples" / "step_40").iterdir())
  assert samples == ["sample_0.gif", "sample_0.png"]
  first_weights = [v.numpy() for v in trainer.model.trainable_variables]

  resumed = run_training(tmp_path, 50)
  assert resumed.current_step == 50
  steps = [s for s, _ in scalar_events(tmp_path, "loss")]
  assert steps == [10, 20, 30, 40, 50]  # continued at 40, did not restart
  assert int(resumed.optimizer.iterations) == 50
  assert any(np.abs(a - b.numpy()).max() > 0 for a, b in
             zip(first_weights, resumed.model.trainable_variables))
  tags = run_events(tmp_path).Tags()["tensors"]
  assert {"loss", "nll", "kl", "kl_level_0", "kl_level_1", "beta",
          "learning_rate", "steps_per_second", "skipped_corrupt_records",
          "truth_reconstruction_prior",
          "operative_config"} <= set(tags)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_losses_stay_finite(tiny_config, precision):
  config = tiny_config()
  trainer = train.Trainer(config, 2, 0, 10, **TINY_OPTIMIZER,
                          precision=precision)
  video = tf.random.stateless_uniform([2, 5, 16, 16, 1], seed=[0, 1])
  for _ in range(3):
    metrics, reconstruction = trainer.train_step(video)
    assert all(np.isfinite(float(v)) for v in metrics.values())
  assert reconstruction.dtype == tf.float32
  conv = trainer.model.encoder.stem
  assert conv.compute_dtype == precision.split("_")[1]
  assert conv.kernel.dtype == "float32"  # variables stay float32
  # The global policy is restored once the model is built.
  assert tf.keras.mixed_precision.global_policy().name == "float32"


def test_xla_compiled_step_matches_the_plain_step(tiny_config):
  # One latent level and one decoder ConvLSTM: XLA's compile time on CPU
  # grows faster than linearly with the variables (tiny_config()'s 291
  # take ~4 min and 7 GB; these 145, ~1 min).
  config = tiny_config(latent_resolutions=(1,), latent_channels=(2,),
                       decoder_convlstm_layers=1)
  video = tf.random.stateless_uniform([2, 5, 16, 16, 1], seed=[0, 1])
  trainers = [train.Trainer(config, 2, 0, 10, **TINY_OPTIMIZER,
                            jit_compile=jit) for jit in (False, True)]
  for a, b in zip(*[t.model.trainable_variables for t in trainers]):
    b.assign(a)
  plain, compiled = [t.train_step(video)[0]["loss"] for t in trainers]
  np.testing.assert_allclose(plain, compiled, rtol=1e-4)


def test_trainer_uses_the_papers_optimizer_and_schedules(tiny_config):
  trainer = train.Trainer(tiny_config(), 2, 0, 10, learning_rate=2e-5,
                          lr_reference_batch=1, lr_warmup_epochs=5, beta=1.0,
                          beta_warmup_epochs=20, weight_decay=1e-4,
                          precision="mixed_float16")
  optimizer = trainer.optimizer.inner_optimizer  # inside the loss scaling
  assert isinstance(optimizer, schedules.TorchAdam)
  assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (
      0.5, 0.9, 1e-8)
  assert optimizer.coupled_weight_decay == 1e-4
  assert optimizer.weight_decay is None  # no decoupled (AdamW) decay
  # 2e-5 -> 2e-5 * 2 / 1 over 5 epochs of 10 steps; beta over 20 epochs.
  np.testing.assert_allclose(
      [float(trainer.learning_rate(s)) for s in (0, 25, 50, 80)],
      [2e-5, 3e-5, 4e-5, 4e-5], rtol=1e-6)
  np.testing.assert_allclose(
      [float(trainer.beta_at(s)) for s in (0, 100, 200, 300)],
      [0.0, 0.5, 1.0, 1.0], rtol=1e-6)


def run_binary(*args):
  return subprocess.run(
      [sys.executable, "-m", "hvrnn_tf.train", *args], cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


@pytest.mark.parametrize("args,message", [
    (["--gin_param=model.ModelConfig.n_hidd = 3"],
     "unknown gin parameter 'n_hidd' of 'model.ModelConfig' in binding "
     "model.ModelConfig.n_hidd = 3"),
    (["--gin_param=train.num_steps = (3"], "gin syntax error"),
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
  assert "\n" not in error.strip()  # One line, the last.
  assert "Traceback" not in result.stderr


def test_unwritable_workdir_is_a_clear_error(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(OSError, match="not writable"):
    train.check_writable(str(blocker / "run"))
