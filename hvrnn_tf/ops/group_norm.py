"""GroupNorm with a hand-written gradient: Keras's layer, fewer memory passes.

keras.layers.GroupNormalization computes y = x * inv + (beta - mean * inv),
inv = gamma / sqrt(var + eps), per (sample, group), and leaves the backward
pass to autodiff, which differentiates tf.nn.moments through broadcasts,
divisions and a three-way AddN: about twelve full-size elementwise passes.
On CPU each is its own kernel, and GroupNorm was 13% of the op time of the
paper's model's train step (docs/design/group-norm.md). The closed form
    dx = (x - mean) q + inv dy - rstd A1 / M,   q = -rstd^2 A2 / M
(A1, A2: the group sums of gamma dy and gamma dy x_hat, M the group size)
runs as one XLA computation, which fuses its elementwise ops into its
reductions and into a few loops. The forward pass is Keras's formula, its
statistics summed per channel first (docs/design/group-norm.md).
"""

import keras
import tensorflow as tf

from hvrnn_tf.ops import shapes
from hvrnn_tf.ops import speed_paths


class GroupNorm(keras.layers.GroupNormalization):
  """keras.layers.GroupNormalization (same weights, names and config; the
  same output up to the order of its sums) whose channels-last 4-D calls
  [N, H, W, C] -> [N, H, W, C] use `group_norm_with_gradient`; other calls
  keep Keras's path.

  xla_gradient: the gradient runs as one XLA computation (else as
  TensorFlow ops; ModelConfig.group_norm_xla_gradient).
  """

  def __init__(
    self,
    *args,
    xla_gradient: bool = speed_paths.DEFAULT.group_norm_xla_gradient,
    **kwargs,
  ):
    super().__init__(*args, **kwargs)
    self.xla_gradient = xla_gradient

  def get_config(self):
    return {**super().get_config(), "xla_gradient": self.xla_gradient}

  def call(self, inputs):
    channels_last_4d = len(inputs.shape) == 4 and self.axis in (-1, 3)
    if not (channels_last_4d and self.scale and self.center):
      return super().call(inputs)
    x = tf.cast(inputs, self.compute_dtype)
    y = group_norm_with_gradient(
      x,
      tf.cast(self.gamma, x.dtype),
      tf.cast(self.beta, x.dtype),
      self.groups,
      self.epsilon,
      self.xla_gradient,
    )
    return tf.cast(y, self.compute_dtype)


def _channel_sums(xg: tf.Tensor) -> tf.Tensor:
  """[N, HW, G, C/G] -> the sums over HW, [N, 1, G, C/G]."""
  n, hw, groups, group_size = shapes.dims(xg)
  # As a column reduction of [N, HW, C]: Eigen reduces axes (1, 3) of the
  # 4-D view 1.3-3.5x slower (docs/design/group-norm.md).
  sums = tf.reduce_sum(tf.reshape(xg, [n, hw, groups * group_size]), axis=1)
  return tf.reshape(sums, [n, 1, groups, group_size])


def _group_size(xg: tf.Tensor) -> tf.Tensor:
  """M, the values per (sample, group) of [N, HW, G, C/G], in xg's dtype."""
  _, hw, _, group_size = shapes.dims(xg)
  return tf.cast(hw * group_size, xg.dtype)


def _group_means(xg: tf.Tensor) -> tf.Tensor:
  """[N, HW, G, C/G] -> the means over (HW, C/G), [N, 1, G, 1]."""
  sums = tf.reduce_sum(_channel_sums(xg), axis=3, keepdims=True)
  return sums / _group_size(xg)


def closed_form_gradient(xg, dy, mean, rstd, gamma_g):
  """GroupNorm's gradients from x, dy [N, HW, G, C/G] and the statistics.

  mean, rstd: [N, 1, G, 1]; gamma_g: gamma as [1, 1, G, C/G]. Returns
  (dx [N, HW, G, C/G], dgamma [C], dbeta [C]).
  """
  size = _group_size(xg)
  # Centred, as x - mean, because x * q - mean * q would cancel when
  # |mean| >> std. Not before dy: xg - mean needs no output gradient, so the
  # executor would make it for every call when the forward pass ends and
  # hold them all through the backward pass (docs/design/early-gradients.md).
  with tf.control_dependencies([dy]):
    centred = xg - mean
  sum_dy = _channel_sums(dy)  # [N, 1, G, C/G]
  # Per channel: the sum over HW of dy * x_hat.
  dy_xhat = rstd * _channel_sums(dy * centred)
  a1 = tf.reduce_sum(gamma_g * sum_dy, axis=3, keepdims=True) / size
  a2 = tf.reduce_sum(gamma_g * dy_xhat, axis=3, keepdims=True) / size
  q = -rstd * rstd * a2  # [N, 1, G, 1]
  dx = centred * q + (dy * (rstd * gamma_g) - rstd * a1)
  dgamma = tf.reshape(tf.reduce_sum(dy_xhat, axis=0), [-1])
  dbeta = tf.reshape(tf.reduce_sum(sum_dy, axis=0), [-1])
  return dx, dgamma, dbeta


_compiled_gradient = tf.function(closed_form_gradient, jit_compile=True)


def group_norm_with_gradient(
  x, gamma, beta, groups: int, epsilon: float, xla_gradient: bool
):
  """GroupNorm of x [N, H, W, C] over `groups` groups of channels.

  gamma, beta: [C]. The value of keras.layers.GroupNormalization (up to the
  order of its sums); the gradients with respect to x, gamma and beta in
  closed form, as one XLA computation where `xla_gradient`.
  """
  gradient = _compiled_gradient if xla_gradient else closed_form_gradient
  shape = shapes.dims(x)
  n, h, w, channels = shape
  grouped_shape = [n, h * w, groups, channels // groups]

  @tf.custom_gradient
  def normalize(x, gamma, beta):
    xg = tf.reshape(x, grouped_shape)  # [N, HW, G, C/G]
    mean = _group_means(xg)  # [N, 1, G, 1]
    variance = _group_means(tf.math.squared_difference(xg, mean))
    rstd = tf.math.rsqrt(variance + epsilon)
    gamma_g = tf.reshape(gamma, [1, 1, groups, -1])
    inv = rstd * gamma_g  # [N, 1, G, C/G]
    shift = -mean * inv + tf.reshape(beta, [1, 1, groups, -1])
    y = tf.reshape(xg * inv + shift, shape)

    def grad(dy):
      dx, dgamma, dbeta = gradient(
        xg, tf.reshape(dy, grouped_shape), mean, rstd, gamma_g
      )
      return tf.reshape(dx, shape), dgamma, dbeta

    return y, grad

  return normalize(x, gamma, beta)
