"""The training recipe: one gin-configurable, validated dataclass.

Registered with gin as `train` (so bindings read `train.num_steps = 1000`, as
in every gin file and operative_config.gin).
"""

from collections.abc import Callable
import dataclasses
from typing import Any

import tensorflow as tf

import gin
from hvrnn_tf.training import distribute
from hvrnn_tf.training import schedules
from hvrnn_tf.utils import validation

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# How a resumed run finds its place in the training data:
#   checkpoint: the tf.data iterator's state is saved in every checkpoint, so
#     the resumed run sees exactly the batches an uninterrupted run would
#     (for deterministic pipelines: SM-MNIST; TFRecord sources interleave
#     their files in a nondeterministic order unless train.deterministic).
#     Checkpoints grow by the pipeline's buffers (shuffle buffer, prefetched
#     batches). Only with the default strategy: tf.distribute's iterators
#     cannot be saved, other strategies fall back to reseed.
#   reseed: nothing is saved; the resumed run re-seeds the pipeline with
#     (seed, step), so it does not replay the batches already seen in the
#     same order, and restores in O(1) whatever the pipeline holds.
DATA_POSITIONS = ("checkpoint", "reseed")

_AT_LEAST_ONE = (
  "num_steps",
  "batch_size",
  "steps_per_epoch",
  "log_every",
  "summary_every",
  "checkpoint_every",
  "keep_checkpoints",
  "max_consecutive_nonfinite_steps",
  "lr_reference_batch",
)
_NON_NEGATIVE = (
  "seed",
  "learning_rate",
  "lr_warmup_epochs",
  "beta",
  "beta_warmup_epochs",
  "weight_decay",
  "image_summary_every",
  "sample_sequences",
  "samples_per_sequence",
  "checkpoint_every_secs",
)


@gin.configurable("train", module="train")
@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How the model is trained, logged, checkpointed and stopped.

  Optimisation (the paper's recipe; schedules are in epochs of
  `steps_per_epoch` steps):
    num_steps: train until the step counter reaches this (required).
    batch_size: global batch, split over replicas.
    seed: weight initialisation, posterior noise and data order.
    learning_rate: base rate, warmed up linearly over `lr_warmup_epochs` to
      learning_rate * batch_size / lr_reference_batch, then constant (Goyal et
      al.'s gradual warmup with the linear scaling rule: the paper's 2e-5 ->
      1.6e-4 at batch 128 with reference 16).
    beta, beta_warmup_epochs: the KL weight, warmed up linearly from 0.
    weight_decay: PyTorch's coupled L2, given to `optimizer`.
    optimizer: factory (learning_rate schedule, weight_decay) -> Keras
      optimizer; default @schedules.torch_adam (PyTorch's Adam, the
      paper's betas; schedules.torch_adam.beta_1/beta_2 select others).
    strategy: factory () -> tf.distribute.Strategy, e.g.
      `train.strategy = @distribute.local_devices_strategy` (distribute.py).
    precision: one of PRECISIONS; jit_compile: XLA-compile the train step and
      the sampling loop; deterministic: tf.config.experimental.
      enable_op_determinism() for the whole process.
  Logging: log_every, summary_every, image_summary_every (0: off) steps;
    sample_sequences x samples_per_sequence sample GIFs at the end (chief).
    profile_steps: (first, last) steps (1-based, as logged; first > 1, the
      first step traces the graph) the TF profiler records into
      WORKDIR/train/plugins/profile (chief); () off.
  Reliability:
    checkpoint_every (steps), checkpoint_every_secs (also save when this many
      seconds passed since the last save; 0: off), keep_checkpoints.
    data_position: one of DATA_POSITIONS.
    max_consecutive_nonfinite_steps: steps with a non-finite loss or
      gradients are skipped and counted; this many in a row stop the run
      with a DivergenceError, and no checkpoint is written during a streak.
    handle_signals: SIGTERM / SIGINT save a checkpoint after the current step
      and stop the run (TrainOutcome.interrupted_by names the signal).
    debug_nonfinite_steps: testing hook: the batches of these steps
      (1-based, as logged) are multiplied by NaN before the step.
  """

  num_steps: int = gin.REQUIRED
  batch_size: int = 16
  seed: int = 0
  steps_per_epoch: int = 1000
  learning_rate: float = 2e-5
  lr_reference_batch: int = 16
  lr_warmup_epochs: float = 5.0
  beta: float = 1.0
  beta_warmup_epochs: float = 0.0
  weight_decay: float = 1e-4
  optimizer: Callable[..., Any] = schedules.torch_adam
  strategy: Callable[[], tf.distribute.Strategy] = distribute.default_strategy
  precision: str = "float32"
  jit_compile: bool = False
  deterministic: bool = False
  log_every: int = 50
  summary_every: int = 50
  image_summary_every: int = 500
  sample_sequences: int = 4
  samples_per_sequence: int = 3
  checkpoint_every: int = 1000
  checkpoint_every_secs: float = 0.0
  keep_checkpoints: int = 3
  data_position: str = "checkpoint"
  max_consecutive_nonfinite_steps: int = 20
  handle_signals: bool = True
  debug_nonfinite_steps: tuple[int, ...] = ()
  profile_steps: tuple[int, ...] = ()

  def __post_init__(self):
    for name in ("debug_nonfinite_steps", "profile_steps"):
      object.__setattr__(self, name, tuple(getattr(self, name)))
    self._validate()

  def _validate(self):
    """Raises ValueError naming the `train.*` setting that is wrong."""
    values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    validation.check_types("train", values, TrainConfig)
    for name in _AT_LEAST_ONE:
      validation.check_range("train", name, values[name], minimum=1)
    for name in _NON_NEGATIVE:
      validation.check_range("train", name, values[name], minimum=0)
    validation.check_choice("train", "precision", self.precision, PRECISIONS)
    validation.check_choice(
      "train", "data_position", self.data_position, DATA_POSITIONS
    )
    profile = self.profile_steps
    if profile and not (len(profile) == 2 and 1 < profile[0] <= profile[1]):
      raise ValueError(
        "train.profile_steps: expected () or (first, last) steps with "
        f"1 < first <= last, got {profile!r}"
      )
    for name in ("optimizer", "strategy"):
      if not callable(values[name]):
        raise ValueError(
          f"train.{name}: expected a factory such as "
          f"@{_default_reference(name)}, got {values[name]!r}"
        )

  def steps(self, epochs: float) -> int:
    """A schedule length given in epochs, in steps."""
    return int(epochs * self.steps_per_epoch)


def reference(factory) -> str:
  """A factory's gin reference without the @, e.g. schedules.torch_adam."""
  return f"{factory.__module__.split('.')[-1]}.{factory.__name__}"


def _default_reference(name: str) -> str:
  return reference(TrainConfig.__dataclass_fields__[name].default)
