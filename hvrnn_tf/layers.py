"""Building blocks shared by the encoder, the latent hierarchy and the decoder.

All layers work on NHWC tensors. Recurrent layers take sequences as
[batch, time, height, width, channels]; a "step" is the same call with time = 1,
so training (whole sequences) and generation (one frame at a time) run the very
same code and weights.
"""

import keras
import tensorflow as tf

LEAKY_SLOPE = 0.2


class Layer(keras.layers.Layer):
  """A Keras layer whose lists and dicts of sublayers are checkpointed.

  Keras 3 tracks `self.blocks = [layer, ...]` for its own weight lists but not
  as TensorFlow dependencies, so tf.train.Checkpoint and tf.saved_model.save
  would silently leave such sublayers out. Every composite layer of the model derives from
  this class, which adds them as children named `<attribute>_<key>`.
  """

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


def num_groups(channels: int) -> int:
  """GroupNorm groups for `channels`: a divisor, at most 32, >= 4 channels each.

  Groups of a single channel would zero every 1x1 feature map (each group
  would normalise one value), so groups always span several channels.
  """
  return max([1] + [g for g in range(1, 33)
                    if channels % g == 0 and channels // g >= 4])


def leaky_relu(x: tf.Tensor) -> tf.Tensor:
  return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def merge_time(x: tf.Tensor) -> tf.Tensor:
  """[B, T, ...] -> [B * T, ...]."""
  shape = tf.shape(x)
  return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


def split_time(x: tf.Tensor, batch_size, num_steps: int | None) -> tf.Tensor:
  """[B * T, ...] -> [B, T, ...], keeping T static when it is known."""
  shape = tf.shape(x)
  out = tf.reshape(x, tf.concat([[batch_size, -1], shape[1:]], axis=0))
  out.set_shape([None, num_steps] + x.shape[1:])
  return out


def time_distributed(fn, x: tf.Tensor) -> tf.Tensor:
  """Applies a per-frame function `fn` to every frame of x [B, T, ...]."""
  return split_time(fn(merge_time(x)), tf.shape(x)[0], x.shape[1])


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
    spatial = input_shape[1:3] if self.data_format == "channels_last" else input_shape[2:4]
    return (tuple(spatial) == (1, 1) and self.padding == "same" and self.groups == 1
            and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
            and tuple(self.kernel_size) != (1, 1))

  def convolution_op(self, inputs, kernel):
    if not self._center_tap_only(inputs.shape):
      return super().convolution_op(inputs, kernel)
    ky, kx = [(k - 1) // 2 for k in self.kernel_size]  # SAME's centre tap
    return keras.ops.conv(inputs, kernel[ky:ky + 1, kx:kx + 1], strides=1,
                          padding="valid", data_format=self.data_format)


class ResBlock(Layer):
  """Pre-activation residual block: (GroupNorm, LeakyReLU, 3x3 conv) x 2 + shortcut.

  [N, H, W, C_in] -> [N, H, W, filters]; a 1x1 conv projects the shortcut when
  C_in != filters.
  """

  def __init__(self, filters: int, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters

  def build(self, input_shape):
    in_channels = input_shape[-1]
    self.norm1 = keras.layers.GroupNormalization(num_groups(in_channels))
    self.conv1 = Conv2D(self.filters, 3, padding="same")
    self.norm2 = keras.layers.GroupNormalization(num_groups(self.filters))
    self.conv2 = Conv2D(self.filters, 3, padding="same")
    self.shortcut = (keras.layers.Conv2D(self.filters, 1)
                     if in_channels != self.filters else None)

  def call(self, x):
    y = self.conv1(leaky_relu(self.norm1(x)))
    y = self.conv2(leaky_relu(self.norm2(y)))
    return y + (self.shortcut(x) if self.shortcut is not None else x)


class ConvLSTM(Layer):
  """Convolutional LSTM over [B, T, H, W, C_in] sequences with explicit state.

  The four gates come from one input convolution and one hidden convolution
  (fused, 4 * filters output channels). The input convolution has no recurrent
  dependency, so it runs on all T frames at once; only the hidden convolution is
  sequential. Calling with T = 1 is a single generation step.

  State: (h, c), each [B, H, W, filters].
  """

  def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.input_conv = Conv2D(4 * filters, kernel_size, padding="same")
    self.hidden_conv = Conv2D(4 * filters, kernel_size, padding="same", use_bias=False)

  def call(self, inputs, state):
    """Returns (hidden states [B, T, H, W, filters], final state (h, c))."""
    input_gates = time_distributed(self.input_conv, inputs)
    h, c = state
    outputs = []
    # One unstack rather than input_gates[:, t] per step: the gradient of T
    # slices is T full-size StridedSliceGrad tensors summed by AddN (O(T^2)
    # memory traffic, 26% of the op time of a small model's step), that of
    # unstack a single stack.
    for step_gates in tf.unstack(input_gates, num=inputs.shape[1], axis=1):
      gates = step_gates + self.hidden_conv(h)
      i, f, o, g = tf.split(gates, 4, axis=-1)
      # +1 on the forget gate: the usual bias towards remembering at init.
      c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
      h = tf.sigmoid(o) * tf.tanh(c)
      outputs.append(h)
    return tf.stack(outputs, axis=1), (h, c)


class InitialState(Layer):
  """Initial (h, c) of a ConvLSTM from the context frames' features.

  Context features [B, c, H, W, C] are stacked on channels, then
  1x1 conv -> LeakyReLU -> 1x1 conv -> split into h (tanh) and c, each
  [B, H, W, filters].
  """

  def __init__(self, filters: int, **kwargs):
    super().__init__(**kwargs)
    self.hidden = keras.layers.Conv2D(filters, 1)
    self.out = keras.layers.Conv2D(2 * filters, 1)

  def call(self, context_features):
    x = tf.transpose(context_features, [0, 2, 3, 1, 4])
    shape = tf.shape(x)
    x = tf.reshape(x, tf.concat([shape[:3], [x.shape[3] * x.shape[4]]], axis=0))
    h, c = tf.split(self.out(leaky_relu(self.hidden(x))), 2, axis=-1)
    return tf.tanh(h), c
