"""Trains a hierarchical VRNN.

    python -m hvrnn_tf.train --gin_file=gin/smmnist_quick.gin --workdir=runs/quick

Resumes from the latest checkpoint in --workdir. Writes checkpoints,
TensorBoard logs (tensorboard --logdir=WORKDIR), operative_config.gin and, at
the end, sample GIFs/PNGs under WORKDIR/samples/.
"""

import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin
import keras
import tensorflow as tf

from hvrnn_tf import checkpointing
from hvrnn_tf import sampling
from hvrnn_tf import schedules
from hvrnn_tf import visualize
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import inputs
from hvrnn_tf.model import HierarchicalVRNN

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples.")
flags.DEFINE_multi_string("gin_file", [], "Gin config files.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. train.num_steps=10.")


def check_writable(workdir: str) -> None:
  """Fails early, naming the directory, if `workdir` cannot be written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test_{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise OSError(f"workdir {workdir!r} is not writable: {e}") from e


def _format_duration(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


class Trainer:
  """Owns the model, optimizer, schedules and the compiled train step."""

  def __init__(self, config: ModelConfig, batch_size: int, seed: int,
               steps_per_epoch: int, lr_start: float, lr_end: float,
               lr_warmup_epochs: float, beta: float, beta_warmup_epochs: float,
               weight_decay: float):
    self.config = config
    self.batch_size = batch_size
    self.seed = seed
    self.beta = beta
    self.beta_warmup_steps = int(beta_warmup_epochs * steps_per_epoch)
    self.model = HierarchicalVRNN(config)
    self.model.initialize()
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    self.learning_rate = schedules.WarmupLearningRate(
        lr_start, lr_end, int(lr_warmup_epochs * steps_per_epoch), batch_size)
    self.optimizer = keras.optimizers.Adam(
        learning_rate=self.learning_rate, beta_1=0.5, beta_2=0.9,
        weight_decay=weight_decay)
    self.optimizer.build(self.model.trainable_variables)

  def beta_at(self, step):
    return schedules.linear_warmup(step, 0.0, self.beta, self.beta_warmup_steps)

  @tf.function
  def train_step(self, video):
    """One optimisation step on video [B, c + f, S, S, C]; returns metrics."""
    seed = tf.random.experimental.stateless_fold_in([self.seed, 0], self.step)
    beta = self.beta_at(self.step)
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      outputs = self.model.elbo(video, seed, beta)
    gradients = tape.gradient(outputs.loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables))
    metrics = {"loss": outputs.loss, "nll": tf.reduce_mean(outputs.nll),
               "kl": tf.reduce_mean(outputs.kl), "beta": beta,
               "learning_rate": self.learning_rate(self.step)}
    for level, kl in enumerate(outputs.kl_per_level):
      metrics[f"kl_level_{level}"] = tf.reduce_mean(
          tf.reduce_sum(kl, axis=[1, 2, 3, 4]))
    self.step.assign_add(1)
    return metrics, outputs.reconstruction

  def image_summary(self, video, reconstruction):
    """[1, 3H, F*W, C] strip: ground truth / posterior reconstruction / prior sample."""
    c = self.config.context_frames
    prior = self.model.sample(video[:1, :c], video.shape[1] - c, 1,
                              tf.constant([self.seed, 1]))[0]
    rows = tf.stack([video[0, c:], reconstruction[0], prior[0]])
    return visualize.image_strip(rows.numpy())[None]


@gin.configurable(module="train", denylist=["workdir"])
def train(workdir: str, num_steps: int = gin.REQUIRED, batch_size: int = 16,
          seed: int = 0, steps_per_epoch: int = 1000, lr_start: float = 2e-5,
          lr_end: float = 1.6e-4, lr_warmup_epochs: float = 5.0,
          beta: float = 1.0, beta_warmup_epochs: float = 0.0,
          weight_decay: float = 1e-4, log_every: int = 50,
          summary_every: int = 50, image_summary_every: int = 500,
          checkpoint_every: int = 1000, keep_checkpoints: int = 3,
          sample_sequences: int = 4, samples_per_sequence: int = 3):
  """Trains until `num_steps`, resuming from `workdir` if it has a checkpoint.

  Schedules are in epochs of `steps_per_epoch` steps. Adam(0.5, 0.9) with
  Keras's decoupled weight decay; the learning rate is warmed up linearly and
  scaled by batch_size / 16; beta (the KL weight) is warmed up linearly from 0.
  """
  config = ModelConfig()
  check_writable(workdir)
  dataset = inputs.make_dataset(
      split="train", batch_size=batch_size,
      sequence_length=config.sequence_length, image_size=config.image_size,
      channels=config.channels, seed=seed)
  trainer = Trainer(config, batch_size, seed, steps_per_epoch, lr_start,
                    lr_end, lr_warmup_epochs, beta, beta_warmup_epochs,
                    weight_decay)
  ckpt = checkpointing.checkpoint(trainer.model, trainer.optimizer, trainer.step)
  manager = tf.train.CheckpointManager(
      ckpt, os.path.join(workdir, checkpointing.CHECKPOINT_DIR),
      max_to_keep=keep_checkpoints)
  if manager.latest_checkpoint:
    ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d", manager.latest_checkpoint,
                 int(trainer.step))
  num_params = sum(v.numpy().size for v in trainer.model.trainable_variables)
  logging.info("Model: %.2fM parameters, %s", num_params / 1e6, config)

  writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
  start_step, start_time = int(trainer.step), time.time()
  last_log_step, last_log_time = start_step, start_time
  iterator = iter(dataset)
  while int(trainer.step) < num_steps:
    video = next(iterator)
    metrics, reconstruction = trainer.train_step(video)
    step = int(trainer.step)
    if step == start_step + 1:
      _write_operative_config(workdir)
    if step % summary_every == 0 or step == num_steps:
      with writer.as_default(step=step):
        for name, value in metrics.items():
          tf.summary.scalar(name, value)
        elapsed = time.time() - start_time
        tf.summary.scalar("steps_per_second", (step - start_step) / elapsed)
    if step % image_summary_every == 0 or step == num_steps:
      with writer.as_default(step=step):
        tf.summary.image("truth_reconstruction_prior",
                         trainer.image_summary(video, reconstruction))
    if step % log_every == 0 or step == num_steps:
      now = time.time()
      rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
      logging.info(
          "step %d/%d  loss %.2f  nll %.2f  kl %.2f  beta %.3f  %.2f steps/s"
          "  ETA %s", step, num_steps, metrics["loss"], metrics["nll"],
          metrics["kl"], metrics["beta"], rate,
          _format_duration((num_steps - step) / max(rate, 1e-9)))
      last_log_step, last_log_time = step, now
    if step % checkpoint_every == 0 or step == num_steps:
      manager.save(checkpoint_number=step)
  writer.flush()

  if sample_sequences > 0:
    videos = sampling.test_videos(config, sample_sequences)
    output_dir = os.path.join(workdir, "samples", f"step_{int(trainer.step)}")
    sampling.write_samples(trainer.model, videos, output_dir,
                         samples_per_sequence, seed)
    logging.info("Samples written to %s", output_dir)
  return trainer


def _write_operative_config(workdir: str) -> None:
  path = os.path.join(workdir, checkpointing.OPERATIVE_CONFIG)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(gin.operative_config_str())
  os.replace(tmp, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    checkpointing.parse_gin(FLAGS.gin_file, FLAGS.gin_param)
    train(FLAGS.workdir)
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.train: error: {e}")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
