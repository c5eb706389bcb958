"""Learning-rate and KL-weight (beta) schedules, and the paper's optimiser.

The paper (sec. 5) trains with Adam, betas (0.5, 0.9), and the authors'
PyTorch `main.py` with torch.optim.Adam(lr, weight_decay=1e-4): coupled L2
decay and, as it passes no betas, PyTorch's default betas (0.9, 0.999).
`torch_adam` defaults to the paper's betas; the release's are the gin
bindings `schedules.torch_adam.beta_1 = 0.9` and
`schedules.torch_adam.beta_2 = 0.999`. The learning rate is warmed up over 5
epochs by Goyal et al.'s gradual warmup with the linear scaling rule (2e-5 ->
1.6e-4 at the paper's global batch of 128 = 8 GPUs x 16), the KL weight beta
from 0 to 1 over 20 epochs (the release).
"""

import keras
import tensorflow as tf

import gin


def linear_warmup(step, start: float, end: float, warmup_steps: int):
  """Linear ramp from `start` at step 0 to `end` at `warmup_steps`, then flat."""
  if warmup_steps <= 0:
    return tf.constant(end, tf.float32)
  fraction = tf.minimum(tf.cast(step, tf.float32) / warmup_steps, 1.0)
  return start + (end - start) * fraction


def scaled_learning_rate(
  base: float, global_batch_size: int, reference_batch_size: int = 16
) -> float:
  """The learning rate after warmup: base * global_batch / reference_batch."""
  return base * global_batch_size / reference_batch_size


class WarmupLearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """Gradual warmup with the linear scaling rule (Goyal et al. 2017).

  The rate starts at `base` and rises linearly over `warmup_steps` to
  base * global_batch_size / reference_batch_size, then stays there. The
  paper's base 2e-5 with reference batch 16 gives 2e-5 -> 1.6e-4 at its
  global batch of 128, and a constant 2e-5 at a global batch of 16. Below
  the reference batch the scaled rate is smaller than `base` and there is
  nothing to warm up: the rate is base * global / reference from step 0.
  """

  def __init__(
    self,
    base: float,
    warmup_steps: int,
    global_batch_size: int,
    reference_batch_size: int = 16,
  ):
    self.config = dict(
      base=base,
      warmup_steps=warmup_steps,
      global_batch_size=global_batch_size,
      reference_batch_size=reference_batch_size,
    )
    self.scale = global_batch_size / reference_batch_size
    self.peak = scaled_learning_rate(
      base, global_batch_size, reference_batch_size
    )

  def __call__(self, step):
    return linear_warmup(
      step,
      min(self.config["base"], self.peak),
      self.peak,
      self.config["warmup_steps"],
    )

  def get_config(self):
    return dict(self.config)


class TorchAdam(keras.optimizers.Adam):
  """Adam exactly as torch.optim.Adam computes it, with coupled L2 decay.

  Per variable w with (all-reduced, unscaled) gradient g, at step t:
    g <- g + coupled_weight_decay * w        (PyTorch's `weight_decay`)
    m <- beta_1 m + (1 - beta_1) g;  v <- beta_2 v + (1 - beta_2) g^2
    w <- w - lr / (1 - beta_1^t) * m / (sqrt(v / (1 - beta_2^t)) + epsilon)
  The L2 term enters the gradient before the moments, so Adam normalises it
  like the data gradient (unlike Keras's `weight_decay`, which is decoupled,
  AdamW-style, and must stay None here). Keras's Adam adds epsilon to the
  uncorrected sqrt(v) ("epsilon hat"); PyTorch adds it after the bias
  correction, as above. With PyTorch's default epsilon of 1e-8 (which the
  authors' code used) the updates are the same as PyTorch's.

  The decay is added in `update_step`, which Keras calls once per variable
  with the gradient already summed over replicas (MirroredStrategy /
  MultiWorkerMirroredStrategy) and already divided by the loss scale
  (LossScaleOptimizer): so it is added exactly once per update, whatever the
  number of replicas or the loss scale, and not at all when an update is
  skipped (non-finite steps). Variables without a gradient are not updated
  and not decayed, as in PyTorch (Keras drops None gradients).
  """

  def __init__(
    self,
    learning_rate=0.001,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    coupled_weight_decay=0.0,
    **kwargs,
  ):
    if kwargs.get("weight_decay") is not None:
      raise ValueError(
        "TorchAdam: use coupled_weight_decay (PyTorch's L2), "
        "not Keras's decoupled weight_decay"
      )
    if kwargs.get("amsgrad"):
      raise ValueError("TorchAdam does not implement amsgrad")
    super().__init__(
      learning_rate=learning_rate,
      beta_1=beta_1,
      beta_2=beta_2,
      epsilon=epsilon,
      **kwargs,
    )
    self.coupled_weight_decay = coupled_weight_decay
    self._step_scalars = None  # {dtype: scalars} during an apply

  def _backend_update_step(self, grads, trainable_variables, learning_rate):
    """Keras's per-variable loop, with the step's scalars computed once.

    Computed per variable, the bias corrections and casts were ~20 graph
    nodes per variable, a fifth of the tiny model's train-step graph
    (docs/design/step-graph-size.md).
    """
    self._step_scalars = {}
    try:
      super()._backend_update_step(grads, trainable_variables, learning_rate)
    finally:
      self._step_scalars = None

  def _scalars(self, dtype, learning_rate) -> dict:
    """ResourceApplyAdam's scalar arguments at this step, in `dtype`."""
    cache = self._step_scalars
    if cache is not None and dtype in cache:
      return cache[dtype]
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    beta_2_power = tf.pow(beta_2, step)
    scalars = dict(
      beta1_power=tf.pow(beta_1, step),
      beta2_power=beta_2_power,
      lr=tf.cast(learning_rate, dtype),
      beta1=beta_1,
      beta2=beta_2,
      epsilon=tf.cast(self.epsilon, dtype) * tf.sqrt(1 - beta_2_power),
    )
    if cache is not None:
      cache[dtype] = scalars
    return scalars

  def update_step(self, gradient, variable, learning_rate):
    """One fused `ResourceApplyAdam` kernel per variable.

    That kernel computes w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) +
    eps'), torch's update when eps' = eps sqrt(1 - b2^t). One pass over w, m,
    v and g instead of ~14 elementwise ops, each a full-size temporary (13%
    of the op time of the paper's model's CPU step;
    docs/design/fused-adam.md).
    """
    dtype = variable.dtype
    gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)
    if self.coupled_weight_decay:
      gradient += tf.cast(self.coupled_weight_decay, dtype) * variable
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
      var=_handle(variable),
      m=_handle(self._momentums[index]),
      v=_handle(self._velocities[index]),
      grad=gradient,
      **self._scalars(dtype, learning_rate),
    )

  def get_config(self):
    config = super().get_config()
    config["coupled_weight_decay"] = self.coupled_weight_decay
    return config


def _handle(variable):
  """The resource handle of a Keras or tf variable (a replica's, under
  a strategy's update)."""
  if isinstance(variable, keras.Variable):
    variable = variable.value
  return variable.handle


@gin.configurable(module="schedules")
def torch_adam(
  learning_rate,
  weight_decay: float,
  beta_1: float = 0.5,
  beta_2: float = 0.9,
  epsilon: float = 1e-8,
) -> TorchAdam:
  """torch.optim.Adam(betas=(beta_1, beta_2), weight_decay=weight_decay).

  The betas default to the paper's (0.5, 0.9). The release's main.py passes
  no betas, so it ran PyTorch's default (0.9, 0.999): bind
  `schedules.torch_adam.beta_1 = 0.9` and `schedules.torch_adam.beta_2 =
  0.999` (e.g. --gin_param=schedules.torch_adam.beta_1=0.9
  --gin_param=schedules.torch_adam.beta_2=0.999). PyTorch's default epsilon,
  which both used.
  """
  return TorchAdam(
    learning_rate=learning_rate,
    beta_1=beta_1,
    beta_2=beta_2,
    epsilon=epsilon,
    coupled_weight_decay=weight_decay,
  )
