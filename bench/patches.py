"""The patches bench.optimizations times: old code paths and candidates.

Each is a context manager that changes hvrnn_tf inside this process only and
restores it on exit. A *reference* patch puts back the code path that an
optimisation now applied in hvrnn_tf replaced (so the optimisation keeps its
numbers); a *proposal* patch applies a candidate not (yet) in the model.

Variants:
  slice_per_step    reference of convlstm_unstack (in the model:
                    hvrnn_tf.model.convlstm.ConvLSTM.call, plain and normalized,
                    reads its precomputed input gates with one tf.unstack over
                    time): puts back input_gates[:, t] per step. Same
                    arithmetic; the gradient of T strided slices is T
                    full-size StridedSliceGrad tensors summed by AddN (O(T^2)
                    memory traffic, the largest single op kind in
                    bench.op_profile before the change), that of unstack one stack.
  full_kernel_1x1   reference of center_tap_1x1 (in the model: hvrnn_tf.model.layers.Conv2D,
                    used by the ConvLSTMs, ResBlocks and DcConvs, convolves 1x1
                    maps with the kernel's centre tap only, since with stride 1
                    and SAME padding the other taps only ever see zeros): puts
                    back keras.layers.Conv2D's full-kernel convolution. Same
                    arithmetic on the non-zero terms; the convolutions and
                    their gradients are k^2 (9) times larger (the weights are
                    the same).
  kernel1_at_1x1    proposal: such layers are built with a 1x1 kernel instead:
                    the same function class with 8/9 fewer of those weights, so
                    Adam updates fewer too; timed against the model, which
                    already skips their convolution. Other parameters and
                    initial values: timed, not compared.
Also reported per config: the parameters in such dead kernel taps (the
weights of the centre-tap layers still hold them; their gradient is zero).
  per_step_kernel   reference of shared_kernel (in the model: ConvLSTM wraps
                    its time loop in hidden_conv.reuse_kernel(): the hidden
                    kernel, or on 1x1 maps its centre tap, is read once per
                    sequence and its gradient is one backprop-filter
                    convolution over all steps, hvrnn_tf.ops.shared_kernel): puts
                    back plain per-step convolutions, i.e. T kernel-sized
                    gradients summed by AddN (and on 1x1 maps T zero-filled
                    kernel-sized StridedSliceGrads). Same arithmetic up to the
                    order of the sum over steps.
  unfused_adam      reference of fused_adam (in the model:
                    schedules.TorchAdam.update_step runs one ResourceApplyAdam
                    kernel per variable): puts back the update as ~14 Keras
                    elementwise ops, each a full-size temporary. The same
                    update up to rounding (epsilon enters the fused kernel
                    rescaled by sqrt(1 - beta_2^t)); compared on the weights
                    after one update, not on the gradients.
  keras_group_norm  reference of group_norm_gradient (in the model:
                    hvrnn_tf.ops.group_norm.GroupNorm differentiates GroupNorm in
                    closed form): puts back keras.layers.GroupNormalization's
                    call, differentiated by autodiff. Same forward ops; the
                    gradients equal up to rounding.
  conv_small_maps   reference of patch_matmul (in the model:
                    hvrnn_tf.ops.shared_kernel.SharedKernel runs each step's
                    hidden convolution as one matmul over k x k patches up to
                    MATMUL_MAX_ROWS rows, its input gradient up to
                    MATMUL_DX_MAX_ROWS and the kernel's gradient up to
                    MATMUL_DW_MAX_ROWS): puts back tf.nn.conv2d,
                    Conv2DBackpropInput and Conv2DBackpropFilter at every
                    size. The same sums in another order.
  group_norm_ops    reference of group_norm_fused (in the model:
                    hvrnn_tf.ops.group_norm sums GroupNorm's statistics per
                    channel over [N, HW, C] first, and runs its closed-form
                    gradient as one XLA computation): puts back the
                    reductions over axes (1, 3) of the grouped 4-D view and
                    the gradient as TensorFlow ops. The same formulas; the
                    sums in another order.
  isfinite_all      reference of nonfinite_sums (in the model:
                    Trainer._nonfinite tests each gradient's sum): puts back
                    IsFinite + All over every gradient. The same decision;
                    the ELBO and its gradients are untouched.
"""

import collections
import contextlib

import keras
from keras import ops
import tensorflow as tf

from hvrnn_tf.model import convlstm
from hvrnn_tf.model import layers
from hvrnn_tf.ops import group_norm
from hvrnn_tf.ops import shared_kernel
from hvrnn_tf.training import schedules
from hvrnn_tf.training import trainer


def _convlstm_call_sliced(self, inputs, state):
  """hvrnn_tf.model.convlstm.ConvLSTM.call with the old time indexing: input_gates[:, t] per step.

  Otherwise the model's call (plain and normalized=True: GroupNorms on the
  input gates, the hidden gates and the new cell; no forget-gate bias), so
  the two must give the same loss and gradients.
  """
  input_gates = layers.time_distributed(self._input_gates, inputs)
  h, c = state
  outputs = []
  with self.hidden_conv.reuse_kernel():
    for t in range(inputs.shape[1]):
      h, c = self.step(input_gates[:, t], h, c)
      outputs.append(h)
  return tf.stack(outputs, axis=1), (h, c)


@contextlib.contextmanager
def patch(owner, name, replacement):
  had_own = name in owner.__dict__
  original = owner.__dict__.get(name)
  setattr(owner, name, replacement)
  try:
    yield
  finally:
    if had_own:
      setattr(owner, name, original)
    else:
      delattr(owner, name)


def _on_1x1_same(layer, input_shape) -> bool:
  """A stride-1 SAME Conv2D with a k > 1 kernel applied to 1x1 feature maps."""
  return (
    tuple(input_shape[1:3]) == (1, 1)
    and layer.padding == "same"
    and tuple(layer.strides) == (1, 1)
    and tuple(layer.dilation_rate) == (1, 1)
    and tuple(layer.kernel_size) != (1, 1)
    and layer.groups == 1
  )


def _full_kernel_1x1():
  """hvrnn_tf.model.layers.Conv2D convolves 1x1 maps with the whole kernel again.

  The plain keras.layers.Conv2D path: the k^2 - 1 taps that see only the
  SAME padding are multiplied too (same output, zero gradient for them).
  """
  return patch(
    layers.Conv2D, "convolution_op", keras.layers.Conv2D.convolution_op
  )


@contextlib.contextmanager
def _kernel1_at_1x1():
  """Conv2D layers first built on 1x1 inputs get a 1x1 kernel (fewer weights).

  The same function class as the centre tap of the k x k kernel (the other
  taps are dead, see dead_kernel_parameters), but other parameters and other
  initial values: speed and size only, no numerics comparison.
  """
  original = keras.layers.Conv2D.build

  def build(self, input_shape):
    if _on_1x1_same(self, input_shape):
      self.kernel_size = (1, 1)
    return original(self, input_shape)

  with patch(keras.layers.Conv2D, "build", build):
    yield


def _unfused_adam_update_step(self, gradient, variable, learning_rate):
  """TorchAdam.update_step as Keras elementwise ops (the path fused_adam replaced)."""
  dtype = variable.dtype
  lr = ops.cast(learning_rate, dtype)
  gradient = ops.cast(gradient, dtype)
  if self.coupled_weight_decay:
    gradient = ops.add(
      gradient,
      ops.multiply(ops.cast(self.coupled_weight_decay, dtype), variable),
    )
  local_step = ops.cast(self.iterations + 1, dtype)
  beta_1 = ops.cast(self.beta_1, dtype)
  beta_2 = ops.cast(self.beta_2, dtype)
  bias_correction_1 = 1 - ops.power(beta_1, local_step)
  bias_correction_2 = 1 - ops.power(beta_2, local_step)
  m = self._momentums[self._get_variable_index(variable)]
  v = self._velocities[self._get_variable_index(variable)]
  self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
  self.assign_add(
    v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - beta_2)
  )
  denominator = ops.add(
    ops.divide(ops.sqrt(v), ops.sqrt(bias_correction_2)),
    ops.cast(self.epsilon, dtype),
  )
  self.assign_sub(
    variable, ops.divide(ops.multiply(m, lr / bias_correction_1), denominator)
  )


def _nonfinite_isfinite_all(self, loss, gradients):
  """Trainer._nonfinite as IsFinite + All over every tensor (the old check)."""
  checks = [tf.reduce_all(tf.math.is_finite(loss))]
  if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
    checks += [
      tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None
    ]
  return 1.0 - tf.cast(tf.reduce_all(tf.stack(checks)), tf.float32)


def _channel_sums_4d(xg):
  """group_norm._channel_sums over axis 1 of the grouped 4-D view."""
  return tf.reduce_sum(xg, axis=1, keepdims=True)


def _group_means_4d(xg):
  """group_norm._group_means over axes (1, 3) of the grouped 4-D view."""
  return tf.reduce_mean(xg, axis=[1, 3], keepdims=True)


@contextlib.contextmanager
def _group_norm_ops():
  """GroupNorm's reductions over the 4-D view, its gradient as TF ops."""
  with contextlib.ExitStack() as stack:
    for name, value in (
      ("_channel_sums", _channel_sums_4d),
      ("_group_means", _group_means_4d),
      ("XLA_GRADIENT", False),
    ):
      stack.enter_context(patch(group_norm, name, value))
    yield


@contextlib.contextmanager
def _conv_small_maps():
  """SharedKernel convolves every map size with oneDNN's convolutions again."""
  with contextlib.ExitStack() as stack:
    for limit in shared_kernel.MATMUL_LIMITS:
      stack.enter_context(patch(shared_kernel, limit, 0))
    yield


@contextlib.contextmanager
def _no_kernel_reuse(self):
  yield self


def graph_nodes(concrete) -> list:
  """The NodeDefs of a concrete function's graph and of its functions."""
  graph = concrete.graph.as_graph_def()
  nodes = list(graph.node)
  for function in graph.library.function:
    nodes += function.node_def
  return nodes


def op_counts(concrete, op_types) -> dict:
  """How many ops of each of `op_types` a concrete function's graph holds."""
  counts = collections.Counter(n.op for n in graph_nodes(concrete))
  return {t: counts[t] for t in op_types}


VARIANTS = {
  "slice_per_step": lambda: patch(
    convlstm.ConvLSTM, "call", _convlstm_call_sliced
  ),
  "full_kernel_1x1": _full_kernel_1x1,
  "per_step_kernel": lambda: patch(
    layers.Conv2D, "reuse_kernel", _no_kernel_reuse
  ),
  "unfused_adam": lambda: patch(
    schedules.TorchAdam, "update_step", _unfused_adam_update_step
  ),
  "keras_group_norm": lambda: patch(
    group_norm.GroupNorm, "call", keras.layers.GroupNormalization.call
  ),
  "isfinite_all": lambda: patch(
    trainer.Trainer, "_nonfinite", _nonfinite_isfinite_all
  ),
  "conv_small_maps": _conv_small_maps,
  "group_norm_ops": _group_norm_ops,
  "kernel1_at_1x1": _kernel1_at_1x1,
}
# What each patch is checked on: the ELBO's loss and gradients, the weights
# after one optimizer update, or nothing (other parameters).
NUMERICS = {
  "slice_per_step": "gradients",
  "full_kernel_1x1": "gradients",
  "per_step_kernel": "gradients",
  "unfused_adam": "update",
  "keras_group_norm": "gradients",
  "isfinite_all": "gradients",
  "conv_small_maps": "gradients",
  "group_norm_ops": "gradients",
  "kernel1_at_1x1": None,
}
# Reference patches: the optimisation (applied in the model) whose old path each restores.
REFERENCE_OF = {
  "slice_per_step": "convlstm_unstack",
  "full_kernel_1x1": "center_tap_1x1",
  "per_step_kernel": "shared_kernel",
  "unfused_adam": "fused_adam",
  "keras_group_norm": "group_norm_gradient",
  "isfinite_all": "nonfinite_sums",
  "conv_small_maps": "patch_matmul",
  "group_norm_ops": "group_norm_fused",
}
# The optimisations' names select their reference patches.
ALIASES = {
  optimisation: variant for variant, optimisation in REFERENCE_OF.items()
}


def optimisation(variant: str) -> str:
  return REFERENCE_OF.get(variant, variant)


def variant_named(name: str) -> str:
  """The patch called `name`, or the reference patch of the optimisation `name`."""
  name = ALIASES.get(name, name)
  if name not in VARIANTS:
    raise ValueError(
      f"Unknown variant {name!r}; known: {list(VARIANTS)} "
      f"(or the optimisations {list(ALIASES)}, meaning their reference patches)"
    )
  return name
