"""Building blocks shared by the encoder, the latent hierarchy and the decoder.

All layers work on NHWC tensors. Recurrent layers take sequences as
[batch, time, height, width, channels]; a "step" is the same call with time = 1,
so training (whole sequences) and generation (one frame at a time) run the very
same code and weights.
"""

import contextlib

import keras
import tensorflow as tf

from hvrnn_tf.ops import group_norm as group_norm_lib
from hvrnn_tf.ops import shapes
from hvrnn_tf.ops import shared_kernel
from hvrnn_tf.ops import speed_paths

LEAKY_SLOPE = 0.2


class Layer(keras.layers.Layer):
  """A Keras layer whose lists and dicts of sublayers are checkpointed.

  Keras 3 tracks `self.blocks = [layer, ...]` for its own weight lists but not
  as TensorFlow dependencies, so tf.train.Checkpoint and tf.saved_model.save
  would silently leave such sublayers out. Every composite layer of the model derives from
  this class, which adds them as children named `<attribute>_<key>`.
  """

  def build(self, input_shape):
    """Nothing of its own: sublayers build on their first call.

    Without a build(), Keras 3 builds a layer whose sublayers are unbuilt by
    first tracing its call() symbolically, again at every level of nesting:
    ~75% of the paper model's initialize() time.
    """
    del input_shape

  def _trackable_children(self, save_type="checkpoint", **kwargs):
    children = super()._trackable_children(save_type, **kwargs)
    for name, value in vars(self).items():
      if not name.startswith("_") and isinstance(value, (list, tuple, dict)):
        children.update(_named_layers(name, value))
    return children


def _named_layers(prefix, value):
  """Yields (name, layer) for every Keras layer in nested lists/tuples/dicts."""
  if isinstance(value, keras.layers.Layer):
    yield prefix, value
  elif isinstance(value, dict):
    for key, item in value.items():
      yield from _named_layers(f"{prefix}_{key}", item)
  elif isinstance(value, (list, tuple)):
    for index, item in enumerate(value):
      yield from _named_layers(f"{prefix}_{index}", item)


# PyTorch's GroupNorm epsilon (the release's); Keras's default is 1e-3.
GROUP_NORM_EPSILON = 1e-5


def num_groups(channels: int, groups: int, exact: bool = False) -> int:
  """The GroupNorm group count for `channels`: `groups`, or fewer for narrow layers.

  exact: `groups` itself (the release's fixed counts, groups of one or two
  channels at reduced widths); `channels` must be a multiple of it.
  Otherwise the largest divisor of `channels` that is <= `groups` and leaves
  >= 4 channels per group (1 if none does). Every GroupNorm of the paper's
  model gets exactly the release's count either way; reduced-width configs
  get fewer groups, since one channel per group would zero every 1x1 map.
  """
  if exact:
    if channels % groups:
      raise ValueError(
        f"GroupNorm({groups}) cannot split {channels} channels into equal "
        "groups (ModelConfig.release_group_counts needs wider layers)"
      )
    return groups
  return max(
    [1]
    + [
      g
      for g in range(1, groups + 1)
      if channels % g == 0 and channels // g >= 4
    ]
  )


def group_norm(
  channels: int,
  groups: int,
  exact: bool = False,
  speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
  **kwargs,
):
  """GroupNorm over `channels` in num_groups(channels, groups, exact).

  keras.layers.GroupNormalization with a hand-written gradient
  (group_norm.GroupNorm, XLA-compiled as `speed` says). Computed in float32
  under mixed precision (statistics of bfloat16 values lose too much).
  """
  return group_norm_lib.GroupNorm(
    num_groups(channels, groups, exact),
    xla_gradient=speed.group_norm_xla_gradient,
    epsilon=GROUP_NORM_EPSILON,
    dtype="float32" if _mixed() else None,
    **kwargs,
  )


def _mixed() -> bool:
  return keras.mixed_precision.global_policy().compute_dtype in HALF_DTYPES


HALF_DTYPES = ("float16", "bfloat16")


def at_least_float32(x: tf.Tensor) -> tf.Tensor:
  """x in float32 if it is a 16-bit float (mixed precision), else as it is
  (float32, or float64 for bench.parity's rounding checks)."""
  return tf.cast(x, tf.float32) if x.dtype.name in HALF_DTYPES else x


def leaky_relu(x: tf.Tensor) -> tf.Tensor:
  return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def merge_time(x: tf.Tensor) -> tf.Tensor:
  """[B, T, ...] -> [B * T, ...]."""
  batch, steps, *rest = shapes.dims(x)
  return tf.reshape(x, [batch * steps] + rest)


def split_time(x: tf.Tensor, batch_size, num_steps: int | None) -> tf.Tensor:
  """[B * T, ...] -> [B, T, ...], keeping T static when it is known."""
  out = tf.reshape(x, [batch_size, -1] + shapes.dims(x)[1:])
  out.set_shape([None, num_steps] + x.shape[1:])
  return out


def time_distributed(fn, x: tf.Tensor) -> tf.Tensor:
  """Applies a per-frame function `fn` to every frame of x [B, T, ...]."""
  return split_time(fn(merge_time(x)), shapes.dims(x)[0], x.shape[1])


def upsample_nearest(x: tf.Tensor, resolution: int) -> tf.Tensor:
  """Nearest-neighbour upsampling of x [N, r, r, C] to [N, resolution, resolution, C]."""
  factor = resolution // x.shape[1]
  if factor == 1:
    return x
  return tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)


class Conv2D(keras.layers.Conv2D):
  """keras.layers.Conv2D that skips the dead taps of a k x k kernel on 1x1 maps.

  On a 1x1 input, a stride-1, dilation-1, SAME convolution with a k > 1 kernel
  multiplies only the kernel's centre tap with data (every other tap sees the
  zero padding), so convolving with that tap alone gives the same output and
  gradients (zero for the other taps) at 1/k^2 of the cost: 1.2x per BAIR
  train step, see bench/README.md. Otherwise the plain Keras path. Weights,
  their names and shapes are those of keras.layers.Conv2D (checkpoints
  restore either way).
  """

  def _center_tap_only(self, input_shape) -> bool:
    spatial = (
      input_shape[1:3]
      if self.data_format == "channels_last"
      else input_shape[2:4]
    )
    return (
      tuple(spatial) == (1, 1)
      and self.padding == "same"
      and self.groups == 1
      and tuple(self.strides) == (1, 1)
      and tuple(self.dilation_rate) == (1, 1)
      and tuple(self.kernel_size) != (1, 1)
    )

  _shared = None  # a SharedKernel inside reuse_kernel()

  @contextlib.contextmanager
  def reuse_kernel(
    self,
    max_rows: tuple[int, int, int] = (
      speed_paths.DEFAULT.patch_matmul_max_rows
    ),
  ):
    """Within it, the calls are the steps of one recurrence and share the kernel.

    For a recurrent caller that applies this layer once per time step: the
    kernel (or, on 1x1 maps, its centre-tap slice) is read once, and its
    gradient over all steps is one convolution (shared_kernel.SharedKernel)
    instead of T kernel-sized gradients summed by AddN (for a 1x1 map also
    T zero-filled kernel-sized StridedSliceGrads). Same values; the same
    gradients up to summation order. Stride-1 channels-last layers only;
    others keep the plain path. max_rows: SharedKernel's patch-matmul limits.
    """
    plain = (
      self.data_format != "channels_last"
      or self.groups != 1
      or tuple(self.strides) != (1, 1)
      or tuple(self.dilation_rate) != (1, 1)
    )
    if not plain:
      self._shared = shared_kernel.SharedKernel(max_rows)
    try:
      yield self
    finally:
      self._shared = None

  def convolution_op(self, inputs, kernel):
    padding = self.padding
    if self._center_tap_only(inputs.shape):
      ky, kx = [(k - 1) // 2 for k in self.kernel_size]  # SAME's centre tap
      kernel, padding = kernel[ky : ky + 1, kx : kx + 1], "valid"
    if self._shared is not None:
      return self._shared(inputs, kernel, padding.upper())
    if padding != self.padding:
      return keras.ops.conv(
        inputs, kernel, strides=1, padding="valid", data_format=self.data_format
      )
    return super().convolution_op(inputs, kernel)


class ResBlock(Layer):
  """Post-norm residual block with a 0.1-scaled residual branch (the release's).

  [N, H, W, C_in] -> [N, H, W, filters]:
    out = shortcut(x) + 0.1 * GN(conv3x3_nobias(LReLU(GN(conv3x3(LReLU(x))))))
  with hidden width min(C_in, filters); shortcut = bias-free 1x1 conv when
  C_in != filters, else identity. `groups`: GroupNorm groups (4; 1 at 1x1);
  `exact_groups`: exactly that many (see num_groups); `speed`: the ops'
  speed paths (ModelConfig.speed_paths).
  """

  RESIDUAL_SCALE = 0.1

  def __init__(
    self,
    filters: int,
    groups: int = 4,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.filters = filters
    self.groups = groups
    self.exact_groups = exact_groups
    self.speed = speed

  def build(self, input_shape):
    in_channels = input_shape[-1]
    hidden = min(in_channels, self.filters)
    self.conv1 = Conv2D(hidden, 3, padding="same")
    self.norm1 = self._norm(hidden)
    self.conv2 = Conv2D(self.filters, 3, padding="same", use_bias=False)
    self.norm2 = self._norm(self.filters)
    self.shortcut = (
      keras.layers.Conv2D(self.filters, 1, use_bias=False)
      if in_channels != self.filters
      else None
    )

  def _norm(self, channels: int):
    return group_norm(channels, self.groups, self.exact_groups, self.speed)

  def call(self, x):
    dx = self.norm1(self.conv1(leaky_relu(x)))
    dx = self.norm2(self.conv2(leaky_relu(dx)))
    skip = self.shortcut(x) if self.shortcut is not None else x
    return tf.cast(skip, dx.dtype) + self.RESIDUAL_SCALE * dx


class DcConv(Layer):
  """conv k x k (SAME) -> GroupNorm(4) -> LeakyReLU: [N, H, W, C] -> [N, H, W, filters]."""

  def __init__(
    self,
    filters: int,
    kernel_size: int,
    groups: int = 4,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.conv = Conv2D(filters, kernel_size, padding="same")
    self.norm = group_norm(filters, groups, exact_groups, speed)

  def call(self, x):
    return leaky_relu(self.norm(self.conv(x)))


class DcUpConv(Layer):
  """Transposed conv (kernel 4) -> GroupNorm(4) -> LeakyReLU.

  [N, r, r, C] -> [N, 4, 4, filters] from r = 1 (stride 1, no padding), else
  [N, 2r, 2r, filters] (stride 2, padding 1: PyTorch's ConvTranspose2d(4, 2, 1)).
  """

  def __init__(
    self,
    filters: int,
    groups: int = 4,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.filters = filters
    self.groups = groups
    self.exact_groups = exact_groups
    self.speed = speed

  def build(self, input_shape):
    one = input_shape[1] == 1
    self.conv = keras.layers.Conv2DTranspose(
      self.filters,
      4,
      strides=1 if one else 2,
      padding="valid" if one else "same",
    )
    self.norm = group_norm(
      self.filters, self.groups, self.exact_groups, self.speed
    )

  def call(self, x):
    return leaky_relu(self.norm(self.conv(x)))


class InitialState(Layer):
  """Initial (h, c) of a ConvLSTM from the context frames' features.

  Context features [B, c, H, W, C] are stacked on channels (c * C), then
  DcConv(c*C -> c*C, kernel) -> conv1x1(-> 2 * filters) -> GroupNorm (1 group
  at 1x1, else 16) -> split into h and c, each [B, H, W, filters]. No tanh.
  kernel_size: 1, or 3 for one decoder stage (decoder.Decoder).
  """

  def __init__(
    self,
    filters: int,
    kernel_size: int = 1,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.exact_groups = exact_groups
    self.speed = speed

  def build(self, input_shape):
    stacked = input_shape[1] * input_shape[-1]
    self.mix = DcConv(
      stacked,
      self.kernel_size,
      exact_groups=self.exact_groups,
      speed=self.speed,
    )
    self.out = keras.layers.Conv2D(2 * self.filters, 1)
    self.norm = group_norm(
      2 * self.filters,
      1 if input_shape[2] == 1 else 16,
      self.exact_groups,
      self.speed,
    )

  def call(self, context_features):
    x = tf.transpose(context_features, [0, 2, 3, 1, 4])
    batch, height, width, steps, channels = shapes.dims(x)
    x = tf.reshape(x, [batch, height, width, steps * channels])
    h, c = tf.split(self.norm(self.out(self.mix(x))), 2, axis=-1)
    return h, c
