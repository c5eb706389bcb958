"""Trains a hierarchical VRNN.

    python -m hvrnn_tf.train --gin_file=gin/smmnist_quick.gin --workdir=runs/quick

Resumes from the latest checkpoint in --workdir. Writes checkpoints,
TensorBoard logs (tensorboard --logdir=WORKDIR), operative_config.gin and, at
the end, sample GIFs/PNGs under WORKDIR/samples/.

Reliability (see README, "Reliability"): a run killed at any moment resumes
from its last complete checkpoint with the same step, optimizer state,
schedules and data position; SIGTERM / SIGINT save a checkpoint and exit with
status 128 + signal number; steps with a non-finite loss or gradients are
skipped and counted, and `max_consecutive_nonfinite_steps` of them in a row
stop the run; failing writes and bad settings stop it with a message naming
the file or parameter.
"""

import contextlib
import hashlib
import os
import re
import shutil
import signal
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
from hvrnn_tf import preemption
from hvrnn_tf import sampling
from hvrnn_tf import schedules
from hvrnn_tf import summaries as summaries_lib
from hvrnn_tf import validation
from hvrnn_tf import visualize
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import inputs
from hvrnn_tf import model as model_lib
from hvrnn_tf.model import HierarchicalVRNN

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples.")
flags.DEFINE_multi_string("gin_file", [], "Gin config files.")
flags.DEFINE_multi_string("gin_param", [], "Gin bindings, e.g. train.num_steps=10.")


def define_binary_flags():
  """Flags defined only when run as a binary: data_prep.smmnist, which tests
  import in the same process, has a flag of the same name."""
  flags.DEFINE_string(
      "mnist_dir", None, "Folder with MNIST IDX files for SM-MNIST "
      "(shorthand for --gin_param=\"data.make_dataset.mnist_dir='DIR'\"); "
      "relative to the current directory, also under `bazel run`.")


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
# How a resumed run finds its place in the training data:
#   checkpoint: the tf.data iterator's state is saved in every checkpoint, so
#     the resumed run sees exactly the batches an uninterrupted run would
#     (for deterministic pipelines: SM-MNIST; TFRecord sources interleave
#     their files in a nondeterministic order unless train.deterministic).
#     Checkpoints grow by the pipeline's buffers (shuffle buffer, prefetched
#     batches). Only with strategy "default": tf.distribute's iterators
#     cannot be saved, other strategies fall back to reseed.
#   reseed: nothing is saved; the resumed run re-seeds the pipeline with
#     (seed, step), so it does not replay the batches already seen in the
#     same order, and restores in O(1) whatever the pipeline holds.
DATA_POSITIONS = ("checkpoint", "reseed")


class DivergenceError(RuntimeError):
  """Training stopped after too many consecutive non-finite steps."""


class Trainer:
  """Owns the model, optimizer, schedules and the compiled train step.

  Everything is created under `strategy`; `train_step` takes a global batch
  (a tensor, or a distributed value from strategy.experimental_distribute_*).
  """

  def __init__(self, config: ModelConfig, batch_size: int, seed: int,
               steps_per_epoch: int, *, learning_rate: float,
               lr_warmup_epochs: float, beta: float, beta_warmup_epochs: float,
               weight_decay: float, lr_reference_batch: int = 16,
               strategy: tf.distribute.Strategy | None = None,
               precision: str = "float32", jit_compile: bool = False,
               skip_nonfinite: bool = True):
    """See `train` for the arguments (keyword-only from `learning_rate` on).

    skip_nonfinite: a step whose loss or gradients are not all finite (on
      any replica) leaves the weights and optimizer untouched; it is counted
      in `skipped_steps` and reported as metrics["nonfinite"] = 1. With
      mixed_float16 only the loss is checked: the LossScaleOptimizer already
      skips steps whose scaled gradients overflow, and adjusts its scale.
    """
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
    self.skip_nonfinite = skip_nonfinite
    self.beta = beta
    self.beta_warmup_steps = int(beta_warmup_epochs * steps_per_epoch)
    self.learning_rate = schedules.WarmupLearningRate(
        learning_rate, int(lr_warmup_epochs * steps_per_epoch), batch_size,
        lr_reference_batch)
    with self.strategy.scope(), _dtype_policy(precision):
      self.model = HierarchicalVRNN(config, jit_compile_sampling=jit_compile)
      self.model.initialize()
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                       name="skipped_steps")
      # torch.optim.Adam(betas=(0.5, 0.9), weight_decay=weight_decay), as the
      # authors trained; why the L2 term counts once per update across
      # replicas and loss scales: schedules.TorchAdam.
      self.optimizer = schedules.TorchAdam(
          learning_rate=self.learning_rate, beta_1=0.5, beta_2=0.9,
          epsilon=1e-8, coupled_weight_decay=weight_decay)
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
    # Replicas that saw non-finite values, the same count on every replica.
    nonfinite = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, self._nonfinite(loss, gradients))
    if self.skip_nonfinite:
      self._apply_gradients_if(nonfinite == 0, gradients, variables)
    else:
      self.optimizer.apply_gradients(zip(gradients, variables))
    share = lambda x: tf.reduce_sum(x) / self.batch_size
    metrics = {"loss": loss, "nll": share(outputs.nll), "kl": share(outputs.kl)}
    for level, kl in enumerate(outputs.kl_per_level):
      metrics[f"kl_level_{level}"] = share(tf.reduce_sum(kl, axis=[1, 2, 3, 4]))
    return metrics, outputs.reconstruction, nonfinite

  def _nonfinite(self, loss, gradients):
    """1.0 if `loss` or (unless loss-scaled) a gradient is not finite, else 0.0."""
    checks = [tf.reduce_all(tf.math.is_finite(loss))]
    if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
      checks += [tf.reduce_all(tf.math.is_finite(g))
                 for g in gradients if g is not None]
    return 1.0 - tf.cast(tf.reduce_all(tf.stack(checks)), tf.float32)

  def _apply_gradients_if(self, condition, gradients, variables):
    """Applies the update only where `condition` (equal on all replicas) holds.

    The tf.cond runs in cross-replica context: a cond in replica context may
    not contain the merge_call that apply_gradients makes under a strategy
    (the same construction as Keras's LossScaleOptimizer).
    """
    def cross_replica(strategy, condition, gradients):
      condition = strategy.experimental_local_results(condition)[0]

      def apply():
        strategy.extended.call_for_each_replica(
            lambda g: self.optimizer.apply_gradients(zip(g, variables)),
            args=(gradients,))
        return tf.constant(True)

      return tf.cond(condition, apply, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(
        cross_replica, args=(condition, gradients))

  @tf.function
  def train_step(self, video):
    """One optimisation step on a global batch; returns (metrics, reconstruction).

    metrics: loss, nll, kl, kl_level_*, beta, learning_rate, and nonfinite
    (1.0 if the step had a non-finite loss or gradients; see skip_nonfinite).
    The step counter advances either way: it counts batches consumed.
    reconstruction: [B_local, f, S, S, C] of the first local replica.
    """
    # Drawn here, outside any XLA compilation (see HierarchicalVRNN.noise).
    noise = self.model.noise(model_lib.fold_in([self.seed, 0], self.step),
                             self.batch_size, self.config.future_frames)
    metrics, reconstruction, nonfinite = self.strategy.run(
        self._replica_step, args=(video, noise))
    metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
               for k, v in metrics.items()}
    metrics["beta"] = self.beta_at(self.step)
    metrics["learning_rate"] = self.learning_rate(self.step)
    nonfinite = self.strategy.experimental_local_results(nonfinite)[0] > 0
    metrics["nonfinite"] = tf.cast(nonfinite, tf.float32)
    if self.skip_nonfinite:
      self.skipped_steps.assign_add(tf.cast(nonfinite, tf.int64))
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
          seed: int = 0, steps_per_epoch: int = 1000,
          learning_rate: float = 2e-5, lr_reference_batch: int = 16,
          lr_warmup_epochs: float = 5.0,
          beta: float = 1.0, beta_warmup_epochs: float = 0.0,
          weight_decay: float = 1e-4, strategy: str = "default",
          precision: str = "float32", jit_compile: bool = False,
          log_every: int = 50, summary_every: int = 50,
          image_summary_every: int = 500, checkpoint_every: int = 1000,
          keep_checkpoints: int = 3, sample_sequences: int = 4,
          samples_per_sequence: int = 3, checkpoint_every_secs: float = 0.0,
          data_position: str = "checkpoint",
          max_consecutive_nonfinite_steps: int = 20,
          deterministic: bool = False, handle_signals: bool = True,
          debug_nonfinite_steps: tuple[int, ...] = ()):
  """Trains until `num_steps`, resuming from `workdir` if it has a checkpoint.

  Schedules are in epochs of `steps_per_epoch` steps. The optimiser is
  PyTorch's Adam (beta1 0.5, beta2 0.9, epsilon 1e-8) with coupled L2 weight
  decay `weight_decay` (weight_decay * w added to the gradient before the
  Adam moments, as torch.optim.Adam does; schedules.TorchAdam). The learning
  rate starts at `learning_rate` and is warmed up linearly over
  `lr_warmup_epochs` to learning_rate * batch_size / lr_reference_batch, then
  constant (Goyal et al.'s gradual warmup with the linear scaling rule: the
  paper's 2e-5 -> 1.6e-4 at batch 128 with reference 16). beta (the KL
  weight) is warmed up linearly from 0 over `beta_warmup_epochs`.
  `batch_size` is global (split over replicas); `strategy` is one of
  distribute.STRATEGIES; `precision` one of PRECISIONS; `jit_compile` XLA-
  compiles the train step and the sampling loop. Only the chief worker writes
  summaries, samples and the checkpoints in `workdir`. image_summary_every=0
  turns the image summaries off.

  Reliability settings:
    checkpoint_every_secs: also save when this many seconds passed since the
      last save (0: only every `checkpoint_every` steps); bounds the work a
      kill can lose when step times vary.
    data_position: how a resumed run finds its place in the data, one of
      DATA_POSITIONS ("checkpoint": exact, the tf.data iterator is saved in
      the checkpoints; "reseed": the pipeline is re-seeded by step).
      Strategies other than "default" always reseed: tf.distribute's
      distributed iterators cannot be saved.
    max_consecutive_nonfinite_steps: steps with a non-finite loss or
      gradients are skipped (no update) and counted (TensorBoard
      "skipped_nonfinite_steps"); this many in a row stop the run with a
      DivergenceError. No checkpoint is written during such a streak, so the
      last checkpoint holds the last good state.
    deterministic: calls tf.config.experimental.enable_op_determinism()
      (for the whole process): same losses for the same seed also on GPU,
      at some speed cost. On CPU runs are reproducible without it.
    handle_signals: SIGTERM / SIGINT make the run save a checkpoint after
      the current step and return (`trainer.interrupted_by` names the signal).
    debug_nonfinite_steps: testing hook: the batches of these steps (1-based,
      as logged) are multiplied by NaN before the step.

  Returns:
    The Trainer. `trainer.interrupted_by` is "SIGTERM"/"SIGINT" if a signal
    stopped the run early (after saving a checkpoint), else None.
  Raises:
    ValueError: invalid settings or data (the message names them), raised
      before the model is built.
    OSError: the workdir, a checkpoint or a summary cannot be written; the
      previous checkpoint is left intact.
    DivergenceError: max_consecutive_nonfinite_steps non-finite steps in a row.
  """
  arguments = dict(locals())
  del arguments["workdir"]
  _check_arguments(arguments)
  validation.check_bindings("model.ModelConfig", ModelConfig)
  validation.check_bindings("data.make_dataset", inputs.make_dataset)
  config = ModelConfig()
  check_writable(workdir)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  # Weight initialisation (Keras initialisers) follows the seed.
  keras.utils.set_random_seed(seed)
  dist = distribute.make_strategy(strategy)
  chief = distribute.is_chief(dist)
  dataset = _make_dataset(config, batch_size, seed)
  trainer = Trainer(config, batch_size, seed, steps_per_epoch,
                    learning_rate=learning_rate,
                    lr_reference_batch=lr_reference_batch,
                    lr_warmup_epochs=lr_warmup_epochs, beta=beta,
                    beta_warmup_epochs=beta_warmup_epochs,
                    weight_decay=weight_decay, strategy=dist,
                    precision=precision, jit_compile=jit_compile)
  trainer.interrupted_by = None
  iterator = iter(dist.experimental_distribute_dataset(dataset))
  if (data_position == "checkpoint" and
      not isinstance(iterator, tf.__internal__.tracking.Trackable)):
    # tf.distribute's DistributedIterator cannot be saved (TF 2.21).
    logging.warning("The input iterator of strategy %r cannot be saved in "
                    "checkpoints: using data_position='reseed'.", strategy)
    data_position = "reseed"
  objects = dict(model=trainer.model, optimizer=trainer.optimizer,
                 step=trainer.step, skipped_steps=trainer.skipped_steps)
  if data_position == "checkpoint":
    objects["data"] = iterator
  ckpt = checkpointing.checkpoint(**objects)
  # Every worker takes part in saving; non-chief workers write to a scratch
  # directory that is deleted again.
  chief_checkpoint_dir = os.path.join(workdir, checkpointing.CHECKPOINT_DIR)
  checkpoint_dir = chief_checkpoint_dir
  if not chief:
    checkpoint_dir = os.path.join(workdir, f".worker_{distribute.task_id(dist)}")
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir,
                                       max_to_keep=keep_checkpoints)
  latest, restored = checkpointing.restore_training_state(
      objects, chief_checkpoint_dir)
  if chief:
    for path in checkpointing.remove_partial_checkpoints(checkpoint_dir):
      logging.warning("Removed %s, left by an interrupted checkpoint write.",
                      path)
  if latest:
    logging.info("Resumed from %s at step %d", latest, trainer.current_step)
    if "data" not in restored:
      if data_position == "checkpoint":
        logging.warning("%s holds no usable data position: the input "
                        "pipeline is re-seeded instead.", latest)
      dataset = _make_dataset(config, batch_size,
                              _data_seed(seed, trainer.current_step))
      iterator = iter(dist.experimental_distribute_dataset(dataset))
      if data_position == "checkpoint":
        ckpt = checkpointing.checkpoint(**{**objects, "data": iterator})
        manager = tf.train.CheckpointManager(ckpt, checkpoint_dir,
                                             max_to_keep=keep_checkpoints)
  num_params = sum(v.numpy().size for v in trainer.model.trainable_variables)
  logging.info("Model: %.2fM parameters, %d replica(s), %s", num_params / 1e6,
               dist.num_replicas_in_sync, config)

  summaries = summaries_lib.SummaryWriter(os.path.join(workdir, "train"), chief)
  progress = _Progress(trainer.current_step, num_steps)
  saved_step = trainer.current_step if latest else None
  saved_time = time.time()
  nonfinite_steps = []  # the current streak of consecutive non-finite steps
  stop = False
  watcher = (preemption.SignalWatcher() if handle_signals
             else contextlib.nullcontext())
  with watcher, summaries:
    while trainer.current_step < num_steps:
      stop, save_now = _agree(dist, [
          getattr(watcher, "received", None) is not None,
          bool(checkpoint_every_secs) and
          time.time() - saved_time >= checkpoint_every_secs])
      if stop:
        break
      video = next(iterator)
      if trainer.current_step + 1 in debug_nonfinite_steps:
        video = dist.run(lambda v: v * float("nan"), args=(video,))
      metrics, reconstruction = trainer.train_step(video)
      step = trainer.current_step
      last = step == num_steps
      nonfinite = bool(metrics.pop("nonfinite"))
      if nonfinite:
        nonfinite_steps.append(step)
        logging.warning(
            "step %d: non-finite loss or gradients (loss %s); update skipped "
            "(%d in a row, %d in total).", step, float(metrics["loss"]),
            len(nonfinite_steps), int(trainer.skipped_steps.numpy()))
        if len(nonfinite_steps) >= max_consecutive_nonfinite_steps:
          summaries.flush()
          raise DivergenceError(_divergence_message(
              nonfinite_steps, chief_checkpoint_dir))
      else:
        nonfinite_steps = []
      if step == progress.start_step + 1 and chief:
        _write_operative_config(workdir, summaries, step)
      if step % summary_every == 0 or last:
        with summaries.at(step):
          for name, value in metrics.items():
            tf.summary.scalar(name, value)
          tf.summary.scalar("steps_per_second", progress.overall_rate(step))
          tf.summary.scalar("skipped_corrupt_records",
                            inputs.skipped_records_counter())
          tf.summary.scalar("skipped_nonfinite_steps", trainer.skipped_steps)
        # What was logged survives a kill (flush is cheap, no fsync).
        summaries.flush()
      if (chief and not nonfinite and image_summary_every and
          (step % image_summary_every == 0 or last)):
        with summaries.at(step):
          tf.summary.image("truth_reconstruction_prior",
                           trainer.image_summary(video, reconstruction))
      if step % log_every == 0 or last:
        logging.info("step %d/%d  loss %.2f  nll %.2f  kl %.2f  beta %.3f  %s",
                     step, num_steps, metrics["loss"], metrics["nll"],
                     metrics["kl"], metrics["beta"], progress.report(step))
      if last or ((step % checkpoint_every == 0 or save_now) and
                  not nonfinite_steps):
        summaries.flush()
        _save(manager, step)
        saved_step, saved_time = step, time.time()
    if stop:
      if saved_step != trainer.current_step:
        _save(manager, trainer.current_step)
      # Another worker may have received it (all stop at the same step).
      trainer.interrupted_by = getattr(watcher, "name", None) or "SIGTERM"
      logging.warning(
          "%s received: stopped at step %d with a checkpoint in %s; re-run "
          "the same command to resume.", watcher.name, trainer.current_step,
          chief_checkpoint_dir)
  if not chief:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
  logging.info("Weights fingerprint at step %d: %s", trainer.current_step,
               trainer.weights_fingerprint())
  if trainer.interrupted_by:
    # Keep the input pipeline and writers alive past the return: tearing
    # them down (tf.data threads) can take long on a loaded machine, and a
    # preempted job has a short grace period (main exits without teardown).
    trainer.resources = (iterator, dataset, manager, ckpt, summaries)
    return trainer

  if chief and sample_sequences > 0:
    videos = sampling.test_videos(config, sample_sequences)
    output_dir = os.path.join(workdir, "samples", f"step_{trainer.current_step}")
    sampling.write_samples(trainer.model, videos, output_dir,
                           samples_per_sequence, seed)
    logging.info("Samples written to %s", output_dir)
  return trainer


def _check_arguments(args: dict) -> None:
  """Rejects bad `train.*` settings, naming them, before any expensive work."""
  validation.check_types("train", args, train)
  check = lambda name, **bounds: validation.check_range(
      "train", name, args[name], **bounds)
  for name in ("num_steps", "batch_size", "steps_per_epoch", "log_every",
               "summary_every", "checkpoint_every", "keep_checkpoints",
               "max_consecutive_nonfinite_steps", "lr_reference_batch"):
    check(name, minimum=1)
  for name in ("seed", "learning_rate", "lr_warmup_epochs", "beta",
               "beta_warmup_epochs", "weight_decay", "image_summary_every",
               "sample_sequences", "samples_per_sequence"):
    check(name, minimum=0)
  check("checkpoint_every_secs", minimum=0)
  validation.check_choice("train", "strategy", args["strategy"],
                          distribute.STRATEGIES)
  validation.check_choice("train", "precision", args["precision"], PRECISIONS)
  validation.check_choice("train", "data_position", args["data_position"],
                          DATA_POSITIONS)


def _make_dataset(config: ModelConfig, batch_size: int, seed: int):
  """The training data; errors name the model settings they depend on."""
  try:
    return inputs.make_dataset(
        split="train", batch_size=batch_size,
        sequence_length=config.sequence_length, image_size=config.image_size,
        channels=config.channels, seed=seed)
  except ValueError as e:
    message = str(e)
    if "sequence_length" in message:
      message += (f" (sequence_length = model.ModelConfig.context_frames + "
                  f"model.ModelConfig.future_frames = {config.context_frames}"
                  f" + {config.future_frames})")
    if "image_size" in message or "channels" in message:
      message += (f" (model.ModelConfig.image_size = {config.image_size}, "
                  f"model.ModelConfig.channels = {config.channels})")
    raise ValueError(message) from e


def _data_seed(seed: int, step: int) -> int:
  """The input pipeline's seed for a run resumed at `step` (data_position="reseed")."""
  if step == 0:
    return seed
  digest = hashlib.sha256(f"{seed}:{step}".encode()).digest()
  return int.from_bytes(digest[:7], "little")


def _agree(strategy: tf.distribute.Strategy, flags: list[bool]) -> list[bool]:
  """Each flag, true if it is true on any worker.

  Workers must stop and save at the same step (saving is collective), but
  signals and clocks are per worker: with multi_worker this all-reduces the
  flags (one small collective per step); elsewhere they are returned as is.
  """
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return flags
  local = tf.constant([float(f) for f in flags])
  votes = strategy.run(lambda: tf.identity(local))
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)
  return [bool(v > 0) for v in total.numpy()]


def _save(manager: tf.train.CheckpointManager, step: int) -> None:
  logging.info("Writing checkpoint %d", step)
  path = checkpointing.save(manager, step)
  logging.info("Saved checkpoint %s", path)


def _divergence_message(steps, checkpoint_dir: str) -> str:
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  kept = (f"the last checkpoint, {latest} (step "
          f"{checkpointing.checkpoint_number(latest)}), is intact"
          if latest else "no checkpoint was written yet")
  return (f"training diverged: steps {steps[0]}-{steps[-1]} had a non-finite "
          f"loss or gradients ({len(steps)} in a row, the limit "
          f"train.max_consecutive_nonfinite_steps). Stopped without saving; "
          f"{kept}. Lower the learning rate or check the data, then re-run to "
          "resume from it.")


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


def _write_operative_config(workdir: str, summaries: summaries_lib.SummaryWriter,
                            step: int) -> None:
  """Saves every setting the run uses, as a file and as TensorBoard text."""
  config = gin.operative_config_str()
  path = os.path.join(workdir, checkpointing.OPERATIVE_CONFIG)
  tmp = path + ".tmp"
  try:
    with open(tmp, "w") as f:
      f.write(config)
    os.replace(tmp, path)
  except OSError as e:
    raise OSError(f"cannot write {path}: {e}") from e
  with summaries.at(step):
    tf.summary.text("operative_config", "```\n" + config + "\n```")


def _without_gin_context(error: Exception) -> str:
  """The message, less the "In call to configurable 'train' (<function ...>)"
  line gin appends to exceptions raised in configurables."""
  return re.sub(r"\s*In call to configurable '[\w.]+' \(<.*?>\)", "",
                str(error)).strip()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    mnist_dir = FLAGS.mnist_dir if "mnist_dir" in FLAGS else None
    mnist = ([f"data.make_dataset.mnist_dir = {mnist_dir!r}"]
             if mnist_dir else [])
    checkpointing.parse_gin(FLAGS.gin_file, [*FLAGS.gin_param, *mnist])
    trainer = train(FLAGS.workdir)
  except (ValueError, OSError, DivergenceError) as e:
    sys.exit(f"hvrnn_tf.train: error: {_without_gin_context(e)}")
  except RuntimeError as e:
    if "Required bindings" not in str(e):  # gin: a gin.REQUIRED value unset
      raise
    sys.exit(f"hvrnn_tf.train: error: {_without_gin_context(e)}")
  if trainer.interrupted_by:
    print(f"hvrnn_tf.train: stopped by {trainer.interrupted_by} at step "
          f"{trainer.current_step}; checkpoint saved, re-run to resume.",
          file=sys.stderr)
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # As if the signal had ended the process (schedulers see "preempted"),
    # and at once: the checkpoint and summaries are written, and TensorFlow's
    # teardown could outlast the grace period before a SIGKILL.
    os._exit(128 + int(getattr(signal, trainer.interrupted_by)))  # pylint: disable=protected-access


if __name__ == "__main__":
  define_binary_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)
