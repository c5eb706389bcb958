"""One training run: the gin-configured model and recipe trained in a workdir
until train.num_steps, resumed from its newest checkpoint. `hvrnn_tf.train`
is its binary.

Reliability (see docs/RELIABILITY.md): a run killed at any moment resumes
from its last complete checkpoint with the same step, optimizer state,
schedules and data position; SIGTERM / SIGINT save a checkpoint and stop the
run; steps with a non-finite loss or gradients are skipped and counted, and
`max_consecutive_nonfinite_steps` of them in a row stop the run; failing
writes and bad settings stop it with a message naming the file or parameter.
"""

import contextlib
import dataclasses
import hashlib
import os

from absl import logging
import keras
import tensorflow as tf

from hvrnn_tf.data import inputs
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import distribute
from hvrnn_tf.training import hooks as hooks_lib
from hvrnn_tf.training import hparams
from hvrnn_tf.training import lease as lease_lib
from hvrnn_tf.training import loop
from hvrnn_tf.training import summaries as summaries_lib
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.trainer import Trainer
from hvrnn_tf.utils import filesystems
from hvrnn_tf.utils import validation


@dataclasses.dataclass
class TrainOutcome:
  """How a run ended.

  trainer: the trained task (model, optimizer, step).
  interrupted_by: "SIGTERM" / "SIGINT" if a signal stopped the run early
    (after saving a checkpoint), else None.
  resources: what must outlive an interrupted run's return (input pipeline,
    writers): tearing them down can outlast a preemption's grace period.
  """

  trainer: Trainer
  interrupted_by: str | None = None
  resources: tuple = ()

  @property
  def step(self) -> int:
    return self.trainer.current_step


class _Checkpoints:
  """The run's checkpoint manager, data position and restore at start-up.

  Every worker takes part in saving; non-chief workers write to a scratch
  directory that is deleted again (`cleanup`).
  """

  def __init__(
    self, workdir: str, trainer: Trainer, config: TrainConfig, chief: bool
  ):
    self.trainer, self.config, self.chief = trainer, config, chief
    self.chief_dir = os.path.join(workdir, checkpointing.CHECKPOINT_DIR)
    self.dir = self.chief_dir
    if not chief:
      self.dir = os.path.join(
        workdir, f".worker_{distribute.task_id(trainer.strategy)}"
      )

  def restore(self, iterator):
    """Restores the newest checkpoint; returns (its path or None, iterator).

    The iterator is a fresh, re-seeded one where the checkpoint holds no
    usable data position.
    """
    objects = self.trainer.checkpoint_objects()
    data_position = self.config.data_position
    if data_position == "checkpoint" and not isinstance(
      iterator, tf.__internal__.tracking.Trackable
    ):
      # tf.distribute's DistributedIterator cannot be saved (TF 2.21).
      logging.warning(
        "The input iterator of this strategy cannot be saved "
        "in checkpoints: using data_position='reseed'."
      )
      data_position = "reseed"
    if data_position == "checkpoint":
      objects["data"] = iterator
    latest, restored = checkpointing.restore_training_state(
      objects, self.chief_dir
    )
    if self.chief:
      for path in checkpointing.remove_partial_checkpoints(self.dir):
        logging.warning(
          "Removed %s, left by an interrupted checkpoint write.", path
        )
    if latest and "data" not in restored:
      if data_position == "checkpoint":
        logging.warning(
          "%s holds no usable data position: the input "
          "pipeline is re-seeded instead.",
          latest,
        )
      iterator = _iterator(
        self.trainer, _data_seed(self.config.seed, self.trainer.current_step)
      )
      if data_position == "checkpoint":
        objects["data"] = iterator
    self.manager = tf.train.CheckpointManager(
      checkpointing.checkpoint(**objects),
      self.dir,
      max_to_keep=self.config.keep_checkpoints,
    )
    return latest, iterator

  def cleanup(self) -> None:
    if not self.chief:
      with contextlib.suppress(tf.errors.OpError):
        tf.io.gfile.rmtree(self.dir)


def _iterator(trainer: Trainer, seed: int):
  """An iterator over the (distributed) training batches."""
  dataset = inputs.dataset_for_config(
    trainer.config, "train", trainer.batch_size, seed=seed
  )
  return iter(trainer.strategy.experimental_distribute_dataset(dataset))


def _data_seed(seed: int, step: int) -> int:
  """The input pipeline's seed for a run resumed at `step`
  (data_position="reseed")."""
  if step == 0:
    return seed
  digest = hashlib.sha256(f"{seed}:{step}".encode()).digest()
  return int.from_bytes(digest[:7], "little")


def _hooks(
  workdir: str,
  config: TrainConfig,
  checkpoints: _Checkpoints,
  writer: summaries_lib.SummaryWriter,
  resumed: bool,
) -> list:
  """The loop's hooks, in the order they run after each step."""
  chief = checkpoints.chief
  saved = checkpoints.trainer.current_step if resumed else None
  hooks = [
    hooks_lib.DivergenceHook(
      config.max_consecutive_nonfinite_steps, writer, checkpoints.chief_dir
    ),
    chief and hooks_lib.OperativeConfigHook(workdir, writer),
    hooks_lib.SummaryHook(writer, config.summary_every),
    chief and hooks_lib.ImageSummaryHook(writer, config.image_summary_every),
    hooks_lib.LoggingHook(config.log_every),
    hooks_lib.CheckpointHook(
      checkpoints.manager,
      config.checkpoint_every,
      config.checkpoint_every_secs,
      writer,
      saved,
    ),
    config.handle_signals and hooks_lib.PreemptionHook(checkpoints.chief_dir),
    chief
    and hooks_lib.SampleHook(
      workdir, config.sample_sequences, config.samples_per_sequence, config.seed
    ),
    chief
    and config.profile_steps
    and hooks_lib.ProfilerHook(writer.logdir, *config.profile_steps),
  ]
  return [hook for hook in hooks if hook]


def train(workdir: str) -> TrainOutcome:
  """Trains the gin-configured model (ModelConfig) with the gin-configured
  recipe (TrainConfig, bound as `train.*`) until train.num_steps, resuming
  from `workdir`'s newest checkpoint.

  Raises:
    ValueError: invalid settings or data (the message names them), raised
      before the model is built.
    OSError: the workdir, a checkpoint or a summary cannot be written; the
      previous checkpoint is left intact.
    lease.WorkdirBusyError (an OSError): another trainer holds the workdir
      (training/lease.py; only the chief takes the lease).
    hooks.DivergenceError: train.max_consecutive_nonfinite_steps non-finite
      steps in a row.
  """
  validation.check_bindings("train", TrainConfig)
  config = TrainConfig()
  validation.check_bindings("model.ModelConfig", ModelConfig)
  validation.check_bindings("data.make_dataset", inputs.make_dataset)
  model_config = ModelConfig()
  filesystems.check_writable(workdir)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(config.seed)  # Keras initialisers follow it.
  strategy = config.strategy()
  chief = distribute.is_chief(strategy)
  with lease_lib.held(workdir, chief):
    return _train(workdir, config, model_config, strategy, chief)


def _train(
  workdir: str,
  config: TrainConfig,
  model_config: ModelConfig,
  strategy: tf.distribute.Strategy,
  chief: bool,
) -> TrainOutcome:
  """train's run, once the chief holds the workdir's lease."""
  # Bad data settings fail here, before the model is built.
  dataset = inputs.dataset_for_config(
    model_config, "train", config.batch_size, seed=config.seed
  )
  trainer = Trainer(model_config, config, strategy)
  checkpoints = _Checkpoints(workdir, trainer, config, chief)
  latest, iterator = checkpoints.restore(
    iter(strategy.experimental_distribute_dataset(dataset))
  )
  if latest:
    logging.info("Resumed from %s at step %d", latest, trainer.current_step)
  else:
    hparams.write(workdir, model_config, config, chief)
  num_params = sum(v.numpy().size for v in trainer.model.trainable_variables)
  logging.info(
    "Model: %.2fM parameters, %d replica(s), %s",
    num_params / 1e6,
    strategy.num_replicas_in_sync,
    model_config,
  )
  batches = iterator
  if config.debug_nonfinite_steps:
    batches = loop.poison_batches(
      iterator, config.debug_nonfinite_steps, strategy, trainer.current_step
    )
  logdir = os.path.join(workdir, hparams.TRAIN_GROUP)
  with summaries_lib.SummaryWriter(logdir, chief) as writer:
    state = loop.run_loop(
      trainer,
      batches,
      config.num_steps,
      _hooks(workdir, config, checkpoints, writer, bool(latest)),
    )
  checkpoints.cleanup()
  logging.info(
    "Weights fingerprint at step %d: %s",
    trainer.current_step,
    trainer.weights_fingerprint(),
  )
  return TrainOutcome(
    trainer, state.interrupted_by, (iterator, checkpoints, writer)
  )
