"""Convolutional LSTMs over [B, T, H, W, C] sequences with explicit (h, c) state.

Both compute the gates i, f, o, g (the release's order) from 3x3 convolutions
of the input and of the previous hidden state, with no forget-gate bias:
  c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c').
The input convolution has no recurrent dependency, so it runs on all T frames
at once; only the hidden path is sequential. A call with T = 1 is one
generation step, so training and sampling run the same code and weights.
"""

import tensorflow as tf

from hvrnn_tf.model import layers
from hvrnn_tf.ops import speed_paths


class ConvLSTM(layers.Layer):
  """ConvLSTM; plain by default, GroupNorm'd inside with normalized=True.

  Plain: one 3x3 conv over concat(x, h) (split here into an input conv with
  the bias and a bias-free hidden conv: the same parameters), no
  normalisation; the same function as keras.layers.ConvLSTM2D(filters, 3,
  padding="same", unit_forget_bias=False) with its gates reordered (Keras:
  i, f, g, o; tests/test_convlstm.py copies weights between the two and
  compares). Used at the decoder's 1x1 stage.

  normalized: the release's NormConvLSTM, GroupNorm(16) on the input gates,
  on the hidden gates (whose conv then has a bias) and on the new cell, which
  is also the carried state:
    gates = GN16(conv3x3(x)) + GN16(conv3x3(h));  c' = GN16(c'_raw).
  keras.layers.ConvLSTM2D cannot normalise inside its gates, hence this layer.

  State: (h, c), each [B, H, W, filters]. exact_groups: GroupNorm(16)
  exactly, whatever the width (layers.num_groups). speed: the ops' speed
  paths of its GroupNorms and hidden convolution (ModelConfig.speed_paths).
  """

  def __init__(
    self,
    filters: int,
    kernel_size: int = 3,
    normalized: bool = False,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.filters = filters
    self.normalized = normalized
    self.speed = speed
    self.input_conv = layers.Conv2D(4 * filters, kernel_size, padding="same")
    self.hidden_conv = layers.Conv2D(
      4 * filters, kernel_size, padding="same", use_bias=normalized
    )
    if normalized:
      self.input_norm = layers.group_norm(4 * filters, 16, exact_groups, speed)
      self.hidden_norm = layers.group_norm(4 * filters, 16, exact_groups, speed)
      self.cell_norm = layers.group_norm(filters, 16, exact_groups, speed)

  def _input_gates(self, x):
    y = self.input_conv(x)
    return self.input_norm(y) if self.normalized else y

  def _hidden_gates(self, h):
    y = self.hidden_conv(h)
    return self.hidden_norm(y) if self.normalized else y

  def call(self, inputs, state):
    """inputs [B, T, H, W, C_in] -> (hidden states [B, T, H, W, filters], (h, c))."""
    input_gates = layers.time_distributed(self._input_gates, inputs)
    h, c = state
    outputs = []
    # One unstack rather than input_gates[:, t] per step: the gradient of T
    # slices is T full-size StridedSliceGrad tensors summed by AddN, that of
    # unstack a single stack. The same for the hidden kernel's centre tap.
    with self.hidden_conv.reuse_kernel(self.speed.patch_matmul_max_rows):
      for step_gates in tf.unstack(input_gates, num=inputs.shape[1], axis=1):
        h, c = self.step(step_gates, h, c)
        outputs.append(h)
    return tf.stack(outputs, axis=1), (h, c)

  def step(self, step_gates, h, c):
    """One time step: input gates [B, H, W, 4F] and state (h, c) -> (h', c')."""
    gates = step_gates + tf.cast(self._hidden_gates(h), step_gates.dtype)
    i, f, o, g = tf.split(gates, 4, axis=-1)
    c = tf.sigmoid(f) * tf.cast(c, gates.dtype) + tf.sigmoid(i) * tf.tanh(g)
    if self.normalized:
      c = self.cell_norm(c)
    return tf.sigmoid(o) * tf.tanh(c), c


def NormConvLSTM(filters: int, kernel_size: int = 3, **kwargs) -> ConvLSTM:  # pylint: disable=invalid-name
  """The release's normalised ConvLSTM (see ConvLSTM, normalized=True)."""
  return ConvLSTM(filters, kernel_size, normalized=True, **kwargs)
