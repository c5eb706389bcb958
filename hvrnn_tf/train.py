"""Trains a hierarchical VRNN.

    python -m hvrnn_tf.train --gin_file=gin/smmnist_quick.gin --workdir=runs/quick

Resumes from the latest checkpoint in --workdir. Writes checkpoints,
TensorBoard logs (tensorboard --logdir=WORKDIR), operative_config.gin and, at
the end, sample GIFs/PNGs under WORKDIR/samples/.
"""

import contextlib
import hashlib
import os
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from hvrnn_tf import checkpointing
from hvrnn_tf import distribute
from hvrnn_tf import sampling
from hvrnn_tf import schedules
from hvrnn_tf import visualize
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import inputs
from hvrnn_tf import model as model_lib
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


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


class Trainer:
  """Owns the model, optimizer, schedules and the compiled train step.

  Everything is created under `strategy`; `train_step` takes a global batch
  (a tensor, or a distributed value from strategy.experimental_distribute_*).
  """

  def __init__(self, config: ModelConfig, batch_size: int, seed: int,
               steps_per_epoch: int, lr_start: float, lr_end: float,
               lr_warmup_epochs: float, beta: float, beta_warmup_epochs: float,
               weight_decay: float, strategy: tf.distribute.Strategy | None = None,
               precision: str = "float32", jit_compile: bool = False):
    self.strategy = strategy or tf.distribute.get_strategy()
    replicas = self.strategy.num_replicas_in_sync
    if batch_size % replicas:
      raise ValueError(f"train.batch_size={batch_size} must be divisible by "
                       f"the number of replicas ({replicas})")
    if precision not in PRECISIONS:
      raise ValueError(f"train.precision={precision!r}; expected one of "
                       f"{PRECISIONS}")
    self.config = config
    self.batch_size = batch_size
    self.seed = seed
    self.beta = beta
    self.beta_warmup_steps = int(beta_warmup_epochs * steps_per_epoch)
    self.learning_rate = schedules.WarmupLearningRate(
        lr_start, lr_end, int(lr_warmup_epochs * steps_per_epoch), batch_size)
    with self.strategy.scope(), _dtype_policy(precision):
      self.model = HierarchicalVRNN(config, jit_compile_sampling=jit_compile)
      self.model.initialize()
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.optimizer = keras.optimizers.Adam(
          learning_rate=self.learning_rate, beta_1=0.5, beta_2=0.9,
          weight_decay=weight_decay)
      if precision == "mixed_float16":
        self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
      # Slots must exist before the first distributed step.
      self.optimizer.build(self.model.trainable_variables)
    self._replica_step = tf.function(self._replica_step_fn,
                                     jit_compile=jit_compile)

  @property
  def current_step(self) -> int:
    return int(self.step.numpy())

  def beta_at(self, step):
    return schedules.linear_warmup(step, 0.0, self.beta, self.beta_warmup_steps)

  def _replica_step_fn(self, video, noise):
    """Gradient step on one replica's slice [B / replicas, c + f, S, S, C].

    `noise` is the posterior noise of the whole global batch; the replica
    takes its rows, so every sequence gets the noise it would get on a single
    device. The loss is summed over the slice and divided by the global batch
    size, so the optimizer's all-reduce (a sum) gives the global-batch mean
    gradient. Returns metrics as the replica's share of the global mean.
    """
    local_batch = tf.shape(video)[0]
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    start = tf.cast(replica, tf.int32) * local_batch
    noise = [n[start:start + local_batch] for n in noise]
    beta = self.beta_at(self.step)
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      outputs = self.model.elbo(video, beta=beta, noise=noise)
      loss = tf.reduce_sum(outputs.nll + beta * outputs.kl) / self.batch_size
      scaled_loss = (self.optimizer.scale_loss(loss)
                     if hasattr(self.optimizer, "scale_loss") else loss)
    gradients = tape.gradient(scaled_loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables))
    share = lambda x: tf.reduce_sum(x) / self.batch_size
    metrics = {"loss": loss, "nll": share(outputs.nll), "kl": share(outputs.kl)}
    for level, kl in enumerate(outputs.kl_per_level):
      metrics[f"kl_level_{level}"] = share(tf.reduce_sum(kl, axis=[1, 2, 3, 4]))
    return metrics, outputs.reconstruction

  @tf.function
  def train_step(self, video):
    """One optimisation step on a global batch; returns (metrics, reconstruction).

    reconstruction: [B_local, f, S, S, C] of the first local replica.
    """
    # Drawn here, outside any XLA compilation (see HierarchicalVRNN.noise).
    noise = self.model.noise(model_lib.fold_in([self.seed, 0], self.step),
                             self.batch_size, self.config.future_frames)
    metrics, reconstruction = self.strategy.run(self._replica_step,
                                                args=(video, noise))
    metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
               for k, v in metrics.items()}
    metrics["beta"] = self.beta_at(self.step)
    metrics["learning_rate"] = self.learning_rate(self.step)
    self.step.assign_add(1)
    return metrics, self.strategy.experimental_local_results(reconstruction)[0]

  def image_summary(self, video, reconstruction):
    """[1, 3H, F*W, C] strip: ground truth / posterior reconstruction / prior sample."""
    video = self.strategy.experimental_local_results(video)[0]
    c = self.config.context_frames
    prior = self.model.sample(video[:1, :c], video.shape[1] - c, 1,
                              tf.constant([self.seed, 1]))[0]
    rows = tf.stack([video[0, c:], reconstruction[0], prior[0]])
    return visualize.image_strip(rows.numpy())[None]

  def weights_fingerprint(self) -> str:
    """md5 of all trainable weights: equal across workers that are in sync."""
    digest = hashlib.md5()
    for v in self.model.trainable_variables:
      digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _dtype_policy(name: str):
  """Sets Keras's global dtype policy while layers are created, then restores it."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


@gin.configurable(module="train", denylist=["workdir"])
def train(workdir: str, num_steps: int = gin.REQUIRED, batch_size: int = 16,
          seed: int = 0, steps_per_epoch: int = 1000, lr_start: float = 2e-5,
          lr_end: float = 1.6e-4, lr_warmup_epochs: float = 5.0,
          beta: float = 1.0, beta_warmup_epochs: float = 0.0,
          weight_decay: float = 1e-4, strategy: str = "default",
          precision: str = "float32", jit_compile: bool = False,
          log_every: int = 50, summary_every: int = 50,
          image_summary_every: int = 500, checkpoint_every: int = 1000,
          keep_checkpoints: int = 3, sample_sequences: int = 4,
          samples_per_sequence: int = 3):
  """Trains until `num_steps`, resuming from `workdir` if it has a checkpoint.

  Schedules are in epochs of `steps_per_epoch` steps. Adam(0.5, 0.9) with
  Keras's decoupled weight decay; the learning rate is warmed up linearly and
  scaled by batch_size / 16; beta (the KL weight) is warmed up linearly from 0.
  `batch_size` is global (split over replicas); `strategy` is one of
  distribute.STRATEGIES; `precision` one of PRECISIONS; `jit_compile` XLA-
  compiles the train step and the sampling loop. Only the chief worker writes
  summaries, samples and the checkpoints in `workdir`.
  """
  config = ModelConfig()
  check_writable(workdir)
  dist = distribute.make_strategy(strategy)
  chief = distribute.is_chief(dist)
  dataset = inputs.make_dataset(
      split="train", batch_size=batch_size,
      sequence_length=config.sequence_length, image_size=config.image_size,
      channels=config.channels, seed=seed)
  trainer = Trainer(config, batch_size, seed, steps_per_epoch, lr_start,
                    lr_end, lr_warmup_epochs, beta, beta_warmup_epochs,
                    weight_decay, dist, precision, jit_compile)
  ckpt = checkpointing.checkpoint(trainer.model, trainer.optimizer, trainer.step)
  # Every worker takes part in saving; non-chief workers write to a scratch
  # directory that is deleted again.
  checkpoint_dir = os.path.join(workdir, checkpointing.CHECKPOINT_DIR)
  if not chief:
    checkpoint_dir = os.path.join(workdir, f".worker_{distribute.task_id(dist)}")
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir,
                                       max_to_keep=keep_checkpoints)
  latest = tf.train.latest_checkpoint(
      os.path.join(workdir, checkpointing.CHECKPOINT_DIR))
  if latest:
    ckpt.restore(latest).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d", latest, trainer.current_step)
  num_params = sum(v.numpy().size for v in trainer.model.trainable_variables)
  logging.info("Model: %.2fM parameters, %d replica(s), %s", num_params / 1e6,
               dist.num_replicas_in_sync, config)

  writer = (tf.summary.create_file_writer(os.path.join(workdir, "train"))
            if chief else tf.summary.create_noop_writer())
  progress = _Progress(trainer.current_step, num_steps)
  iterator = iter(dist.experimental_distribute_dataset(dataset))
  while trainer.current_step < num_steps:
    video = next(iterator)
    metrics, reconstruction = trainer.train_step(video)
    step = trainer.current_step
    last = step == num_steps
    if step == progress.start_step + 1 and chief:
      _write_operative_config(workdir, writer, step)
    if step % summary_every == 0 or last:
      with writer.as_default(step=step):
        for name, value in metrics.items():
          tf.summary.scalar(name, value)
        tf.summary.scalar("steps_per_second", progress.overall_rate(step))
        tf.summary.scalar("skipped_corrupt_records",
                          inputs.skipped_records_counter())
    if chief and (step % image_summary_every == 0 or last):
      with writer.as_default(step=step):
        tf.summary.image("truth_reconstruction_prior",
                         trainer.image_summary(video, reconstruction))
    if step % log_every == 0 or last:
      logging.info("step %d/%d  loss %.2f  nll %.2f  kl %.2f  beta %.3f  %s",
                   step, num_steps, metrics["loss"], metrics["nll"],
                   metrics["kl"], metrics["beta"], progress.report(step))
    if step % checkpoint_every == 0 or last:
      manager.save(checkpoint_number=step)
  writer.flush()
  if not chief:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
  logging.info("Weights fingerprint at step %d: %s", trainer.current_step,
               trainer.weights_fingerprint())

  if chief and sample_sequences > 0:
    videos = sampling.test_videos(config, sample_sequences)
    output_dir = os.path.join(workdir, "samples", f"step_{trainer.current_step}")
    sampling.write_samples(trainer.model, videos, output_dir,
                           samples_per_sequence, seed)
    logging.info("Samples written to %s", output_dir)
  return trainer


class _Progress:
  """Steps per second and ETA for the log lines."""

  def __init__(self, start_step: int, num_steps: int):
    self.start_step, self.num_steps = start_step, num_steps
    self.start_time = time.time()
    self.last_step, self.last_time = start_step, self.start_time

  def overall_rate(self, step: int) -> float:
    return (step - self.start_step) / max(time.time() - self.start_time, 1e-9)

  def report(self, step: int) -> str:
    now = time.time()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    return (f"{rate:.2f} steps/s  ETA "
            f"{_format_duration((self.num_steps - step) / max(rate, 1e-9))}")


def _write_operative_config(workdir: str, writer, step: int) -> None:
  """Saves every setting the run uses, as a file and as TensorBoard text."""
  config = gin.operative_config_str()
  path = os.path.join(workdir, checkpointing.OPERATIVE_CONFIG)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(config)
  os.replace(tmp, path)
  with writer.as_default(step=step):
    tf.summary.text("operative_config", "```\n" + config + "\n```")


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
