"""bench.optimizations: the optimisations in the model keep the numerics of the paths they replace."""

import json

import keras
import pytest
import tensorflow as tf

from bench import optimizations
from hvrnn_tf import layers

# hvrnn_tf.convlstm as bench.optimizations patches it (through that module, so
# that this test's BUILD target needs no deps beyond //bench:optimizations_lib).
convlstm = optimizations.convlstm


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_optimizations_bench_writes_json_and_keeps_numerics(tmp_path):
  out = tmp_path / "optimizations.json"
  optimizations.main(
    [
      "--cases=micro:1:full_kernel_1x1",
      "--warmup=1",
      "--repeats=1",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  (result,) = record["results"]
  assert result["status"] == "ok", result
  assert (
    result["optimisation"] == "center_tap_1x1" and result["role"] == "reference"
  )
  for key in (
    "ms_per_step_model",
    "ms_per_step_patched",
    "ms_per_step_without",
    "ms_per_step_with",
    "speedup",
    "loss_abs_diff",
    "max_gradient_relative_diff",
    "parameters_model",
    "parameters_patched",
  ):
    assert key in result
  # A reference patch restores the old path: "without" the optimisation is the patched run.
  assert result["ms_per_step_without"] == result["ms_per_step_patched"]
  assert (
    result["speedup"]
    == result["ms_per_step_patched"] / result["ms_per_step_model"]
  )
  assert result["parameters_model"] == result["parameters_patched"]
  assert result["loss_abs_diff"] <= 1e-5 * max(1.0, abs(result["loss_model"]))
  assert result["max_gradient_relative_diff"] < 1e-5
  dead = record["dead_weights"]["micro"]
  assert 0 < dead["dead_kernel_parameters"] < dead["parameters"]


def test_old_optimisation_names_select_their_reference_patches():
  assert optimizations._variant("convlstm_unstack") == "slice_per_step"
  assert optimizations._variant("center_tap_1x1") == "full_kernel_1x1"
  assert optimizations.optimisation("kernel1_at_1x1") == "kernel1_at_1x1"


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
  with optimizations.VARIANTS["full_kernel_1x1"]():
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
  with optimizations.VARIANTS["kernel1_at_1x1"]():
    small = layers.Conv2D(6, 3, padding="same")
    small(x)
  assert small.kernel.shape == (1, 1, 5, 6)
  assert "build" not in keras.layers.Conv2D.__dict__  # restored


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

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.square(lstm(x, state)[0]))
    return loss, tape.gradient(loss, [x] + lstm.trainable_variables)

  model_fn, patched_fn = tf.function(gradients), tf.function(gradients)
  model = model_fn(x)
  with optimizations.VARIANTS["slice_per_step"]():
    patched = patched_fn(x)
  assert (
    convlstm.ConvLSTM.call is not optimizations._convlstm_call_sliced
  )  # restored
  assert "call" in convlstm.ConvLSTM.__dict__
  # Every weight gets a gradient (the norms' too when normalized).
  assert len(lstm.trainable_variables) == (10 if normalized else 3)
  for a, b in zip(tf.nest.flatten(model), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-5, atol=1e-5)
  count = lambda f: optimizations._op_counts(
    f.get_concrete_function(x), ["StridedSliceGrad"]
  )
  assert count(model_fn)["StridedSliceGrad"] == 0
  assert count(patched_fn)["StridedSliceGrad"] >= 5  # one per time step
