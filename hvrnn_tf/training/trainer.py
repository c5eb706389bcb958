"""The training task: model, optimizer, schedules and the compiled train step."""

import contextlib
import hashlib

import keras
import numpy as np
import tensorflow as tf

from hvrnn_tf.model import vrnn
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.training import schedules
from hvrnn_tf.training import summaries
from hvrnn_tf.training.config import TrainConfig


class Trainer:
  """Owns the model, optimizer, schedules and the compiled train step.

  Everything is created under `strategy` (default: the current one);
  `train_step` takes a global batch [B, c + f, S, S, C] (a tensor, or a
  distributed value from strategy.experimental_distribute_*).

  A step whose loss or gradients are not all finite (on any replica) leaves
  the weights and optimizer untouched; it is counted in `skipped_steps` and
  reported as metrics["nonfinite"] = 1. With mixed_float16 only the loss is
  checked: the LossScaleOptimizer already skips steps whose scaled gradients
  overflow, and adjusts its scale.
  """

  def __init__(
    self,
    model_config: ModelConfig,
    train_config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
  ):
    self.strategy = strategy or tf.distribute.get_strategy()
    replicas = self.strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
      raise ValueError(
        f"train.batch_size={train_config.batch_size} must be "
        f"divisible by the number of replicas ({replicas})"
      )
    self.config = model_config
    self.train_config = train_config
    self.batch_size = train_config.batch_size
    self.seed = train_config.seed
    self.beta_warmup_steps = train_config.steps(train_config.beta_warmup_epochs)
    self.learning_rate = schedules.WarmupLearningRate(
      train_config.learning_rate,
      train_config.steps(train_config.lr_warmup_epochs),
      train_config.batch_size,
      train_config.lr_reference_batch,
    )
    with self.strategy.scope(), _dtype_policy(train_config.precision):
      self._build(train_config)
    self._replica_step = tf.function(
      self._replica_step_fn, jit_compile=train_config.jit_compile
    )
    self._latent_scales = tf.function(self._latent_scales_fn)

  def _build(self, train_config: TrainConfig) -> None:
    """Creates the variables (under the strategy's scope)."""
    self.model = HierarchicalVRNN(
      self.config, jit_compile_sampling=train_config.jit_compile
    )
    self.model.initialize()
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    self.skipped_steps = tf.Variable(
      0, dtype=tf.int64, trainable=False, name="skipped_steps"
    )
    self.optimizer = train_config.optimizer(
      self.learning_rate, train_config.weight_decay
    )
    if train_config.precision == "mixed_float16":
      self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
    # Slots must exist before the first distributed step.
    self.optimizer.build(self.model.trainable_variables)

  @property
  def current_step(self) -> int:
    return int(self.step.numpy())

  def beta_at(self, step):
    return schedules.linear_warmup(
      step, 0.0, self.train_config.beta, self.beta_warmup_steps
    )

  def checkpoint_objects(self) -> dict:
    """What a checkpoint holds besides the data position."""
    return dict(
      model=self.model,
      optimizer=self.optimizer,
      step=self.step,
      skipped_steps=self.skipped_steps,
    )

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
    noise = [n[start : start + local_batch] for n in noise]
    variables = self.model.trainable_variables
    share = lambda x: tf.reduce_sum(x) / self.batch_size
    with tf.GradientTape() as tape:
      outputs = self.model.elbo(
        video, beta=self.beta_at(self.step), noise=noise
      )
      loss = share(outputs.neg_elbo)
      scaled_loss = (
        self.optimizer.scale_loss(loss)
        if hasattr(self.optimizer, "scale_loss")
        else loss
      )
    gradients = tape.gradient(scaled_loss, variables)
    # Replicas that saw non-finite values, the same count on every replica.
    nonfinite = tf.distribute.get_replica_context().all_reduce(
      tf.distribute.ReduceOp.SUM, self._nonfinite(loss, gradients)
    )
    config = self.train_config
    due = summaries.due(self.step + 1, config.summary_every, config.num_steps)
    grad_norm = self._global_norm_if(due, gradients)
    if hasattr(self.optimizer, "dynamic_scale"):  # LossScaleOptimizer
      grad_norm /= self.optimizer.dynamic_scale
    self._apply_gradients_if(nonfinite == 0, gradients, variables)
    metrics = {"loss": loss, "nll": share(outputs.nll), "kl": share(outputs.kl)}
    for level, kl in enumerate(outputs.kl_per_level):
      metrics[f"kl_level_{level}"] = share(tf.reduce_sum(kl, axis=[1, 2, 3, 4]))
    return metrics, outputs.reconstruction, nonfinite, grad_norm

  def _nonfinite(self, loss, gradients):
    """1.0 if `loss` or (unless loss-scaled) a gradient is not finite, else 0.0.

    Checks each tensor's sum, which is NaN or infinite when any element is
    (and when finite elements overflow float32, a step worth skipping too):
    one read per gradient, where IsFinite + All wrote and reduced a boolean
    copy of every gradient (2% of the op time of the paper's model's step).
    """
    tensors = [loss]
    if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
      tensors += [g for g in gradients if g is not None]
    sums = tf.stack([tf.reduce_sum(tf.cast(t, tf.float32)) for t in tensors])
    return 1.0 - tf.cast(tf.reduce_all(tf.math.is_finite(sums)), tf.float32)

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
          args=(gradients,),
        )
        return tf.constant(True)

      return tf.cond(condition, apply, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(
      cross_replica, args=(condition, gradients)
    )

  def _global_norm_if(self, condition, gradients):
    """The global norm of the gradients summed over replicas where
    `condition` (equal on all replicas) holds, else NaN.

    Under several replicas the sum is one more all-reduce of every gradient
    (the optimizer's own happens inside Keras), hence only on the steps
    whose metrics are written; in cross-replica context, as
    `_apply_gradients_if`.
    """

    def cross_replica(strategy, condition, gradients):
      condition = strategy.experimental_local_results(condition)[0]
      gradients = [g for g in gradients if g is not None]

      def norm():
        summed = strategy.extended.batch_reduce_to(
          tf.distribute.ReduceOp.SUM, [(g, g) for g in gradients]
        )
        return tf.linalg.global_norm(
          [strategy.experimental_local_results(g)[0] for g in summed]
        )

      return tf.cond(condition, norm, lambda: tf.constant(float("nan")))

    return tf.distribute.get_replica_context().merge_call(
      cross_replica, args=(condition, gradients)
    )

  @tf.function
  def train_step(self, video):
    """One optimisation step on a global batch; returns (metrics, reconstruction).

    metrics: loss, nll, kl, kl_level_*, beta, learning_rate, grad_norm
    (the global norm of the unscaled gradient summed over replicas, on the
    steps whose summaries are written: every train.summary_every and the
    last; NaN on the others), and nonfinite (1.0 if the step had a
    non-finite loss or gradients, and was skipped).
    The step counter advances either way: it counts batches consumed.
    reconstruction: [B_local, f, S, S, C] of the first local replica.
    """
    # Drawn here, outside any XLA compilation (see HierarchicalVRNN.noise).
    noise = self.model.noise(
      vrnn.fold_in([self.seed, 0], self.step),
      self.batch_size,
      self.config.future_frames,
    )
    return self._step(video, noise)

  @tf.function
  def train_step_with_noise(self, video, noise):
    """train_step with the given posterior noise (HierarchicalVRNN.noise's
    layout) instead of the run's own draws: bench.parity feeds the release's."""
    return self._step(video, noise)

  def _step(self, video, noise):
    metrics, reconstruction, nonfinite, grad_norm = self.strategy.run(
      self._replica_step, args=(video, noise)
    )
    metrics = {
      k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
      for k, v in metrics.items()
    }
    metrics["beta"] = self.beta_at(self.step)
    metrics["learning_rate"] = self.learning_rate(self.step)
    metrics["grad_norm"] = self.strategy.experimental_local_results(grad_norm)[
      0
    ]
    nonfinite = self.strategy.experimental_local_results(nonfinite)[0] > 0
    metrics["nonfinite"] = tf.cast(nonfinite, tf.float32)
    self.skipped_steps.assign_add(tf.cast(nonfinite, tf.int64))
    self.step.assign_add(1)
    return metrics, self.strategy.experimental_local_results(reconstruction)[0]

  def summary_videos(self, video, reconstruction) -> np.ndarray:
    """[3, c + F, S, S, C]: the first sequence's ground truth, its posterior
    reconstruction and a prior sample, each after the context frames."""
    video = self.strategy.experimental_local_results(video)[0]
    c = self.config.context_frames
    prior = self.model.sample(
      video[:1, :c], video.shape[1] - c, 1, tf.constant([self.seed, 1])
    )[0]
    futures = tf.stack([video[0, c:], reconstruction[0], prior[0]])
    context = tf.repeat(video[None, 0, :c], 3, axis=0)
    return tf.concat([context, futures], axis=1).numpy()

  def latent_scales(self, video) -> list:
    """Per level, top first, (prior, posterior) standard deviations
    [B, F, r, r, z] of the first replica's batch: one more forward pass."""
    video = self.strategy.experimental_local_results(video)[0]
    return self._latent_scales(video)

  def _latent_scales_fn(self, video):
    outputs = self.model.elbo(video, tf.constant([self.seed, 2]))
    return [
      (prior.scale, posterior.scale)
      for prior, posterior in zip(outputs.priors, outputs.posteriors)
    ]

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
