"""GroupNorm with a hand-written gradient: Keras's layer, fewer memory passes.

keras.layers.GroupNormalization computes y = x * inv + (beta - mean * inv),
inv = gamma / sqrt(var + eps), per (sample, group), and leaves the backward
pass to autodiff, which differentiates tf.nn.moments through broadcasts,
divisions and a three-way AddN: about twelve full-size elementwise passes.
On CPU each is its own kernel, and GroupNorm was 13% of the op time of the
paper's model's train step (bench/README.md, finding 11). The closed form
    dx = (x - mean) q + inv dy - rstd A1 / M,   q = -rstd^2 A2 / M
(A1, A2: the group sums of gamma dy and gamma dy x_hat, M the group size)
needs eight. The forward pass is Keras's, op for op.
"""

import keras
import tensorflow as tf

from hvrnn_tf import shapes


class GroupNorm(keras.layers.GroupNormalization):
  """keras.layers.GroupNormalization (same weights, names, config and output)
  whose channels-last 4-D calls [N, H, W, C] -> [N, H, W, C] use
  `group_norm_with_gradient`; other calls keep Keras's path."""

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
    )
    return tf.cast(y, self.compute_dtype)


def group_norm_with_gradient(x, gamma, beta, groups: int, epsilon: float):
  """GroupNorm of x [N, H, W, C] over `groups` groups of channels.

  gamma, beta: [C]. The same value as keras.layers.GroupNormalization; the
  gradients with respect to x, gamma and beta in closed form.
  """
  shape = shapes.dims(x)
  n, h, w, channels = shape
  grouped_shape = [n, h * w, groups, channels // groups]

  @tf.custom_gradient
  def normalize(x, gamma, beta):
    xg = tf.reshape(x, grouped_shape)  # [N, HW, G, C/G]
    mean, variance = tf.nn.moments(xg, axes=[1, 3], keepdims=True)
    rstd = tf.math.rsqrt(variance + epsilon)  # [N, 1, G, 1]
    gamma_g = tf.reshape(gamma, [1, 1, groups, -1])
    inv = rstd * gamma_g  # [N, 1, G, C/G]
    shift = -mean * inv + tf.reshape(beta, [1, 1, groups, -1])
    y = tf.reshape(xg * inv + shift, shape)

    def grad(dy):
      dy = tf.reshape(dy, grouped_shape)
      sum_dy = tf.reduce_sum(dy, axis=1, keepdims=True)  # [N, 1, G, C/G]
      sum_dy_x = tf.reduce_sum(dy * xg, axis=1, keepdims=True)
      # Per channel: sum over HW of dy * x_hat.
      dy_xhat = rstd * (sum_dy_x - mean * sum_dy)
      size = tf.cast(grouped_shape[1] * grouped_shape[3], x.dtype)
      a1 = tf.reduce_sum(gamma_g * sum_dy, axis=3, keepdims=True) / size
      a2 = tf.reduce_sum(gamma_g * dy_xhat, axis=3, keepdims=True) / size
      q = -rstd * rstd * a2  # [N, 1, G, 1]
      # Centred: x * q - mean * q would cancel when |mean| >> std. Not before
      # dy: xg - mean needs no output gradient, so the executor would make it
      # for every call when the forward pass ends and hold them all through
      # the backward pass (bench/README.md, finding 15). After dy, not q, so
      # that it overlaps the reductions.
      with tf.control_dependencies([dy]):
        centred = xg - mean
      dx = tf.reshape(centred * q + (dy * inv - rstd * a1), shape)
      dgamma = tf.reshape(tf.reduce_sum(dy_xhat, axis=0), [-1])
      dbeta = tf.reshape(tf.reduce_sum(sum_dy, axis=0), [-1])
      return dx, dgamma, dbeta

    return y, grad

  return normalize(x, gamma, beta)
