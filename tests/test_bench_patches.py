"""bench.patches: each reference patch restores the old path with the same numerics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import patches
from hvrnn_tf.model import layers
from hvrnn_tf.training import schedules

# hvrnn_tf.model.convlstm as bench.patches patches it (through that module, so that
# this test's BUILD target needs no deps beyond //bench:patches).
convlstm = patches.convlstm


def test_old_optimisation_names_select_their_reference_patches():
  assert patches.variant_named("convlstm_unstack") == "slice_per_step"
  assert patches.variant_named("center_tap_1x1") == "full_kernel_1x1"
  assert patches.optimisation("kernel1_at_1x1") == "kernel1_at_1x1"


def _conv_gradients(conv, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    loss = tf.reduce_sum(tf.sin(conv(x)))
  return loss, tape.gradient(loss, [x] + conv.trainable_variables)


def test_center_tap_equals_the_full_kernel_on_1x1_maps():
  conv = layers.Conv2D(6, 3, padding="same")
  x = tf.random.stateless_uniform([4, 1, 1, 5], seed=[3, 4])
  conv(x)
  conv.kernel.assign(tf.random.stateless_normal(conv.kernel.shape, seed=[5, 6]))
  conv.bias.assign(tf.random.stateless_normal(conv.bias.shape, seed=[7, 8]))
  center = tf.function(lambda x: _conv_gradients(conv, x))
  full = tf.function(lambda x: _conv_gradients(conv, x))
  model = center(x)
  with patches.VARIANTS["full_kernel_1x1"]():
    patched = full(x)
  assert (
    layers.Conv2D.convolution_op is not keras.layers.Conv2D.convolution_op
  )  # restored
  for a, b in zip(tf.nest.flatten(model), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-6, atol=1e-6)
  # The two paths differ: the patched one convolves with the whole 3x3 kernel.
  kernel_shapes = lambda f: sorted(
    tuple(op.inputs[1].shape)
    for op in f.get_concrete_function(x).graph.get_operations()
    if op.type == "Conv2D"
  )
  assert kernel_shapes(center) == [(1, 1, 5, 6)]
  assert kernel_shapes(full) == [(3, 3, 5, 6)]
  with patches.VARIANTS["kernel1_at_1x1"]():
    small = layers.Conv2D(6, 3, padding="same")
    small(x)
  assert small.kernel.shape == (1, 1, 5, 6)
  assert "build" not in keras.layers.Conv2D.__dict__  # restored


def _same_gradients_under(variant, lstm, x, state):
  """Traces a ConvLSTM's loss and gradients as the model is and under `variant`.

  Asserts the two give the same loss and gradients (input and weights);
  returns the two tf.functions (model, patched) for their graphs.
  """

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.square(lstm(x, state)[0]))
    return loss, tape.gradient(loss, [x] + lstm.trainable_variables)

  model_fn, patched_fn = tf.function(gradients), tf.function(gradients)
  model = model_fn(x)
  with patches.VARIANTS[variant]():
    patched = patched_fn(x)
  for a, b in zip(tf.nest.flatten(model), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-5, atol=1e-5)
  return model_fn, patched_fn


@pytest.mark.parametrize("normalized", [False, True])
def test_per_step_slices_same_gradients_but_strided_slice_grads(normalized):
  # normalized=True: the release's NormConvLSTM (GroupNorms on the input
  # gates, the hidden gates and the cell), which the model uses above 1x1.
  lstm = convlstm.ConvLSTM(8, normalized=normalized)
  x = tf.random.stateless_uniform([2, 5, 4, 4, 3], seed=[1, 2])
  state = (
    tf.random.stateless_normal([2, 4, 4, 8], seed=[3, 4]),
    tf.random.stateless_normal([2, 4, 4, 8], seed=[5, 6]),
  )
  model_fn, patched_fn = _same_gradients_under("slice_per_step", lstm, x, state)
  assert convlstm.ConvLSTM.call is not patches._convlstm_call_sliced  # restored
  assert "call" in convlstm.ConvLSTM.__dict__
  # Every weight gets a gradient (the norms' too when normalized).
  assert len(lstm.trainable_variables) == (10 if normalized else 3)
  count = lambda f: patches.op_counts(
    f.get_concrete_function(x), ["StridedSliceGrad"]
  )
  assert count(model_fn)["StridedSliceGrad"] == 0
  assert count(patched_fn)["StridedSliceGrad"] >= 5  # one per time step


@pytest.mark.parametrize("normalized,size", [(False, 1), (True, 4)])
def test_per_step_kernel_differentiates_every_step_with_the_same_gradients(
  normalized, size
):
  lstm = convlstm.ConvLSTM(8, normalized=normalized)
  x = tf.random.stateless_uniform([2, 5, size, size, 3], seed=[1, 2])
  state = (
    tf.random.stateless_normal([2, size, size, 8], seed=[3, 4]),
    tf.zeros([2, size, size, 8]),
  )

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(state[0])
      loss = tf.reduce_sum(tf.square(lstm(x, state)[0]))
    return loss, tape.gradient(loss, [state[0]] + lstm.trainable_variables)

  model_fn, patched_fn = tf.function(gradients), tf.function(gradients)
  model = model_fn(x)
  with patches.VARIANTS["per_step_kernel"]():
    patched = patched_fn(x)
  assert "reuse_kernel" in layers.Conv2D.__dict__  # restored
  for a, b in zip(tf.nest.flatten(model), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-5, atol=1e-5)
  ops = ["StridedSliceGrad", "Conv2DBackpropFilter"]
  count = lambda f: patches.op_counts(f.get_concrete_function(x), ops)
  # The input conv runs once over the sequence; the hidden one per step. On
  # maps this small the shared hidden kernel's one gradient is a matmul.
  slices = 1 if size == 1 else 0
  assert count(model_fn) == {
    "StridedSliceGrad": 2 * slices,
    "Conv2DBackpropFilter": 1,
  }
  assert count(patched_fn) == {
    "StridedSliceGrad": 6 * slices,
    "Conv2DBackpropFilter": 6,
  }


def test_unfused_adam_gives_the_fused_update():
  w0 = tf.random.stateless_normal([50], seed=[1, 1])
  grads = [
    tf.random.stateless_normal([50], seed=[2, i]) * 1e-3 for i in range(3)
  ]

  def three_steps():
    w = tf.Variable(w0)
    optimizer = schedules.torch_adam(1e-2, 1e-4)
    step = tf.function(lambda g: optimizer.apply_gradients([(g, w)]))
    for g in grads:
      step(g)
    return w.numpy()

  fused = three_steps()
  with patches.VARIANTS["unfused_adam"]():
    unfused = three_steps()
  assert "update_step" in schedules.TorchAdam.__dict__  # restored
  assert np.abs(fused - w0.numpy()).max() > 1e-3  # the steps moved w
  np.testing.assert_allclose(fused, unfused, rtol=1e-6, atol=1e-8)


def test_unknown_variant_names_the_known_ones():
  with pytest.raises(ValueError, match="unfused_adam"):
    patches.variant_named("nope")


def _group_norm_under(variant):
  """(model fn, patched fn, x): a GroupNorm's gradients, checked equal."""
  norm = layers.group_norm(32, 16)
  x = tf.random.stateless_normal([2, 4, 4, 32], seed=[1, 2]) + 1.0

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.sin(norm(x)))
    return loss, tape.gradient(loss, [x] + norm.trainable_variables)

  model_fn, patched_fn = tf.function(gradients), tf.function(gradients)
  model = model_fn(x)
  with patches.VARIANTS[variant]():
    patched = patched_fn(x)
  # The statistics are summed in another order; the loss sums 1,024 sines.
  for a, b in zip(tf.nest.flatten(model), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-5, atol=1e-4)
  return model_fn, patched_fn, x


def test_keras_group_norm_restores_autodiff_with_the_same_gradients():
  model_fn, patched_fn, x = _group_norm_under("keras_group_norm")
  assert "call" in patches.group_norm.GroupNorm.__dict__  # restored
  count = lambda f: patches.op_counts(f.get_concrete_function(x), ["IdentityN"])
  assert count(model_fn)["IdentityN"] >= 1  # the custom gradient
  assert count(patched_fn)["IdentityN"] == 0


def _compiled_calls(concrete) -> int:
  """Calls of XLA-compiled functions in a concrete function's graph."""
  return sum(n.attr["_XlaMustCompile"].b for n in patches.graph_nodes(concrete))


def test_group_norm_ops_restores_the_gradient_as_tf_ops():
  model_fn, patched_fn, x = _group_norm_under("group_norm_ops")
  assert patches.group_norm.XLA_GRADIENT  # restored
  assert _compiled_calls(model_fn.get_concrete_function(x)) == 1
  assert _compiled_calls(patched_fn.get_concrete_function(x)) == 0
  means = lambda f: patches.op_counts(f.get_concrete_function(x), ["Mean"])
  assert means(model_fn)["Mean"] == 0  # sums per channel, then per group
  assert means(patched_fn)["Mean"] == 2  # tf.reduce_mean over axes (1, 3)


def test_isfinite_all_makes_the_same_decision():
  class Holder:
    optimizer = schedules.torch_adam(1e-3, 0.0)

  new, old = patches.trainer.Trainer._nonfinite, patches._nonfinite_isfinite_all  # pylint: disable=protected-access
  ones = tf.ones([4])
  cases = [
    (1.0, [ones, None]),
    (np.nan, [ones]),
    (1.0, [tf.constant([1.0, np.inf])]),
    (1.0, [ones, tf.constant([np.nan, 0.0])]),
  ]
  for loss, gradients in cases:
    loss = tf.constant(loss)
    assert float(new(Holder(), loss, gradients)) == float(
      old(Holder(), loss, gradients)
    )


def test_conv_small_maps_restores_convolutions_with_the_same_gradients():
  lstm = convlstm.ConvLSTM(8, normalized=True)
  x = tf.random.stateless_uniform([1, 4, 4, 4, 3], seed=[1, 2])
  state = (tf.zeros([1, 4, 4, 8]), tf.zeros([1, 4, 4, 8]))
  model_fn, patched_fn = _same_gradients_under(
    "conv_small_maps", lstm, x, state
  )
  limits = patches.shared_kernel.MATMUL_LIMITS
  assert all(getattr(patches.shared_kernel, n) > 0 for n in limits)  # restored
  ops = ["Conv2DBackpropInput", "Conv2DBackpropFilter", "ExtractImagePatches"]
  count = lambda f: patches.op_counts(f.get_concrete_function(x), ops)
  # Four steps of 16 rows: the hidden conv's forward, input and kernel
  # gradients as matmuls over patches (4 + 4 + 1) in the model; the input
  # conv over all frames stays a convolution.
  assert count(model_fn) == {
    "Conv2DBackpropInput": 1,
    "Conv2DBackpropFilter": 1,
    "ExtractImagePatches": 9,
  }
  assert count(patched_fn) == {
    "Conv2DBackpropInput": 5,
    "Conv2DBackpropFilter": 2,
    "ExtractImagePatches": 0,
  }
