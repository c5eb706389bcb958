"""Tests of the ConvLSTMs: equations, GroupNorm placement, Keras equality."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model import convlstm
from hvrnn_tf.testing import graphs


def _state(shape, seed):
  return (
    tf.random.stateless_normal(shape, seed=[seed, 1]),
    tf.random.stateless_normal(shape, seed=[seed, 2]),
  )


@pytest.mark.parametrize("normalized", [False, True])
def test_sequence_equals_step_by_step(normalized):
  lstm = convlstm.ConvLSTM(16, 3, normalized=normalized)
  x = tf.random.stateless_normal([2, 4, 6, 6, 3], seed=[0, 2])
  state = _state([2, 6, 6, 16], 3)
  full, (h_full, c_full) = lstm(x, state)
  outputs = []
  for t in range(4):
    out, state = lstm(x[:, t : t + 1], state)
    outputs.append(out)
  np.testing.assert_allclose(full, tf.concat(outputs, 1), atol=1e-5)
  np.testing.assert_allclose(h_full, state[0], atol=1e-5)
  np.testing.assert_allclose(c_full, state[1], atol=1e-5)
  # The recurrence matters: the last output depends on the first input.
  zero = (tf.zeros([2, 6, 6, 16]),) * 2
  changed, _ = lstm(tf.concat([x[:, :1] + 1.0, x[:, 1:]], 1), zero)
  base, _ = lstm(x, zero)
  assert np.abs(changed[:, -1] - base[:, -1]).max() > 1e-4


def _reference(lstm, x, state):
  """The release's equations written out with plain ops and lstm's weights."""
  conv = lambda v, layer: (
    tf.nn.conv2d(v, layer.kernel, 1, "SAME")
    + (layer.bias if layer.bias is not None else 0.0)
  )

  def norm(v, layer):  # GroupNorm, 16 groups here, eps 1e-5
    n, h, w, c = v.shape
    g = tf.reshape(v, [n, h, w, layer.groups, c // layer.groups])
    mean, var = tf.nn.moments(g, [1, 2, 4], keepdims=True)
    g = (g - mean) / tf.sqrt(var + 1e-5)
    return tf.reshape(g, v.shape) * layer.gamma + layer.beta

  h, c = state
  outputs = []
  for t in range(x.shape[1]):
    gates = norm(conv(x[:, t], lstm.input_conv), lstm.input_norm) + norm(
      conv(h, lstm.hidden_conv), lstm.hidden_norm
    )
    i, f, o, g = tf.split(gates, 4, axis=-1)
    c = norm(tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g), lstm.cell_norm)
    h = tf.sigmoid(o) * tf.tanh(c)
    outputs.append(h)
  return tf.stack(outputs, axis=1)


def test_normalised_convlstm_follows_the_release_equations():
  """GroupNorm(16) on input gates, hidden gates and the carried cell; no
  forget bias; gradients equal too. The layer unstacks its input gates
  once (no StridedSliceGrad), unlike a per-step slice."""
  lstm = convlstm.NormConvLSTM(16)
  x = tf.random.stateless_normal([2, 5, 4, 4, 3], seed=[5, 1])
  state = _state([2, 4, 4, 16], 5)
  lstm(x, state)
  for layer in (lstm.input_norm, lstm.hidden_norm, lstm.cell_norm):
    layer.gamma.assign(tf.random.stateless_uniform(layer.gamma.shape, [1, 1]))
    layer.beta.assign(tf.random.stateless_normal(layer.beta.shape, [1, 2]))
  assert lstm.input_norm.groups == lstm.hidden_norm.groups == 16
  assert lstm.cell_norm.groups == 4  # 16 channels: >= 4 per group

  def gradients(fn, x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.sin(fn(x)))
    return loss, tape.gradient(loss, [x] + lstm.trainable_variables)

  layer_fn = tf.function(lambda x: gradients(lambda v: lstm(v, state)[0], x))
  reference_fn = tf.function(
    lambda x: gradients(lambda v: _reference(lstm, v, state), x)
  )
  for a, b in zip(
    tf.nest.flatten(layer_fn(x)), tf.nest.flatten(reference_fn(x))
  ):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  ops = graphs.op_counts(
    layer_fn.get_concrete_function(x), ["StridedSliceGrad", "Unpack"]
  )
  assert ops["StridedSliceGrad"] == 0 and ops["Unpack"] > 0


def test_plain_convlstm_equals_keras_convlstm2d():
  """Copy the weights (gate order i, f, o, g -> Keras's i, f, g, o) and
  compare sequences and final states."""
  ours = convlstm.ConvLSTM(5)
  theirs = keras.layers.ConvLSTM2D(
    5,
    3,
    padding="same",
    unit_forget_bias=False,
    return_sequences=True,
    return_state=True,
  )
  x = tf.random.stateless_normal([2, 4, 6, 6, 3], seed=[7, 1])
  state = _state([2, 6, 6, 5], 7)
  ours(x, state)
  theirs(x, initial_state=list(state))
  order = lambda w: tf.concat([w[..., :10], w[..., 15:], w[..., 10:15]], -1)
  theirs.cell.kernel.assign(order(ours.input_conv.kernel))
  theirs.cell.recurrent_kernel.assign(order(ours.hidden_conv.kernel))
  theirs.cell.bias.assign(order(ours.input_conv.bias))
  sequence, (h, c) = ours(x, state)
  keras_sequence, keras_h, keras_c = theirs(x, initial_state=list(state))
  np.testing.assert_allclose(sequence, keras_sequence, atol=1e-5)
  np.testing.assert_allclose(h, keras_h, atol=1e-5)
  np.testing.assert_allclose(c, keras_c, atol=1e-5)
  assert ours.hidden_conv.bias is None
