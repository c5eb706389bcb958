"""GroupNorm's hand-written gradient against Keras's GroupNormalization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.ops import group_norm
from hvrnn_tf.testing import graphs


def pair(channels, groups, rank=4, dtype="float32", xla_gradient=True):
  """(Keras's layer in `dtype`, ours) with the same random gamma and beta."""
  ours = group_norm.GroupNorm(groups, epsilon=1e-5, xla_gradient=xla_gradient)
  theirs = keras.layers.GroupNormalization(groups, epsilon=1e-5, dtype=dtype)
  for layer in (ours, theirs):
    layer.build([None] * (rank - 1) + [channels])
  rng = np.random.default_rng(channels + groups)
  for ours_w, theirs_w in zip(ours.weights, theirs.weights):
    value = rng.normal(1.0, 0.5, ours_w.shape)
    ours_w.assign(value.astype(np.float32))
    theirs_w.assign(value)
  return theirs, ours


def value_and_gradients(layer, x, dy):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x)
    loss = tf.reduce_sum(y * dy)
  return y, tape.gradient(loss, [x] + layer.trainable_variables)


@pytest.mark.parametrize("xla_gradient", [True, False])
@pytest.mark.parametrize(
  "shape,groups",
  [
    ([3, 8, 8, 64], 16),  # a NormConvLSTM's gates
    ([2, 1, 1, 32], 1),  # 1x1 map, one group
    ([2, 1, 1, 32], 16),  # 1x1 map, two channels per group
    ([1, 5, 7, 12], 4),  # not square
  ],
)
def test_same_output_and_gradients_as_keras(shape, groups, xla_gradient):
  """Output and gradients as close to float64 Keras as float32 Keras's,
  the gradient XLA-compiled or not (ModelConfig.group_norm_xla_gradient)."""
  theirs, ours = pair(shape[-1], groups, xla_gradient=xla_gradient)
  exact, _ = pair(shape[-1], groups, dtype="float64")
  x = tf.random.stateless_normal(shape, seed=[1, 2]) * 3.0 + 0.5
  dy = tf.random.stateless_normal(shape, seed=[3, 4])
  y_theirs, grads_theirs = value_and_gradients(theirs, x, dy)
  y_ours, grads_ours = value_and_gradients(ours, x, dy)
  y_exact, grads_exact = value_and_gradients(
    exact, tf.cast(x, tf.float64), tf.cast(dy, tf.float64)
  )
  for name, a, b, ref in zip(
    ("y", "x", "gamma", "beta"),
    [y_ours] + grads_ours,
    [y_theirs] + grads_theirs,
    [y_exact] + grads_exact,
  ):
    ref = ref.numpy()
    error_ours = np.abs(a.numpy() - ref).max()
    error_keras = np.abs(b.numpy() - ref).max()
    assert error_ours <= 2 * error_keras + 1e-6 * np.abs(ref).max(), name


def test_gradients_under_tf_function_with_an_unknown_batch():
  theirs, ours = pair(16, 4)
  spec = tf.TensorSpec([None, 4, 4, 16])
  grads = {}
  for name, layer in (("theirs", theirs), ("ours", ours)):

    @tf.function(input_signature=[spec, spec])
    def step(x, dy, layer=layer):
      return value_and_gradients(layer, x, dy)[1]

    x = tf.random.stateless_normal([5, 4, 4, 16], seed=[5, 6])
    grads[name] = step(x, tf.ones_like(x) + x)
  for a, b in zip(grads["ours"], grads["theirs"]):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-4, rtol=1e-4)


def test_other_ranks_keep_the_keras_path():
  theirs, ours = pair(8, 2, rank=3)
  x = tf.random.stateless_normal([2, 3, 8], seed=[7, 8])
  np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())


def test_gradient_computes_nothing_full_size_before_the_output_gradient():
  # Otherwise the executor computes it when the forward pass ends, for every
  # call, and holds it through the backward pass
  # (docs/design/early-gradients.md).
  _, ours = pair(64, 16)
  x = tf.random.stateless_normal([2, 4, 4, 64], seed=[9, 10])
  dy = tf.random.stateless_normal(x.shape, seed=[11, 12])
  loss = lambda x: tf.reduce_sum(ours(tf.tanh(x)) * dy)
  early = graphs.early_backward_ops(
    loss, [x], ours.trainable_variables, min_bytes=x.shape.num_elements() * 4
  )
  assert early == []
