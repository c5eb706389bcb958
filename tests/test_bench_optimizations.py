"""bench.optimizations: every candidate keeps the numerics (same loss and gradients)."""

import json

import keras
import tensorflow as tf

from bench import optimizations
from hvrnn_tf import layers


def test_optimizations_bench_writes_json_and_keeps_numerics(tmp_path):
  out = tmp_path / "optimizations.json"
  optimizations.main(["--cases=micro:1:center_tap_1x1", "--warmup=1", "--repeats=1",
                      f"--output={out}"])
  record = json.loads(out.read_text())
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in ("ms_per_step_plain", "ms_per_step_variant", "speedup", "loss_abs_diff",
              "max_gradient_relative_diff", "parameters_plain", "parameters_variant"):
    assert key in result
  assert result["loss_abs_diff"] <= 1e-5 * max(1.0, abs(result["loss_plain"]))
  assert result["max_gradient_relative_diff"] < 1e-5
  dead = record["dead_weights"]["micro"]
  assert 0 < dead["dead_kernel_parameters"] < dead["parameters"]


def test_center_tap_equals_the_full_kernel_on_1x1_maps():
  conv = keras.layers.Conv2D(6, 3, padding="same")
  x = tf.random.stateless_uniform([4, 1, 1, 5], seed=[3, 4])

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.sin(conv(x)))
    return loss, tape.gradient(loss, [x] + conv.trainable_variables)

  conv(x)
  plain = gradients(x)
  with optimizations.VARIANTS["center_tap_1x1"]():
    patched = gradients(x)
  assert "call" not in keras.layers.Conv2D.__dict__  # restored
  for a, b in zip(tf.nest.flatten(plain), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-6, atol=1e-6)
  with optimizations.VARIANTS["kernel1_at_1x1"]():
    small = keras.layers.Conv2D(6, 3, padding="same")
    small(x)
  assert small.kernel.shape == (1, 1, 5, 6)


def test_convlstm_unstack_same_gradients_without_strided_slice_grads():
  lstm = layers.ConvLSTM(4)
  x = tf.random.stateless_uniform([2, 5, 4, 4, 3], seed=[1, 2])
  state = (tf.zeros([2, 4, 4, 4]), tf.zeros([2, 4, 4, 4]))

  def gradients(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.square(lstm(x, state)[0]))
    return loss, tape.gradient(loss, [x] + lstm.trainable_variables)

  plain_fn, patched_fn = tf.function(gradients), tf.function(gradients)
  plain = plain_fn(x)
  with optimizations.VARIANTS["convlstm_unstack"]():
    patched = patched_fn(x)
  assert layers.ConvLSTM.call is not optimizations._convlstm_call_unstacked  # restored
  for a, b in zip(tf.nest.flatten(plain), tf.nest.flatten(patched)):
    tf.debugging.assert_near(a, b, rtol=1e-6, atol=1e-6)
  count = lambda f: optimizations._op_counts(f.get_concrete_function(x), ["StridedSliceGrad"])
  assert count(plain_fn)["StridedSliceGrad"] >= 5  # one per time step
  assert count(patched_fn)["StridedSliceGrad"] == 0
