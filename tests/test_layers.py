"""Tests of the shared building blocks."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf import layers


@pytest.mark.parametrize("channels", [1, 4, 8, 10, 64, 512])
def test_num_groups_divides_and_keeps_several_channels_per_group(channels):
  groups = layers.num_groups(channels)
  assert channels % groups == 0 and groups <= 32
  assert channels // groups >= min(4, channels)


def test_group_norm_keeps_signal_at_1x1():
  """A 1x1 feature map must not be normalised to all zeros."""
  norm = tf.keras.layers.GroupNormalization(layers.num_groups(8))
  x = tf.random.stateless_normal([2, 1, 1, 8], seed=[0, 1])
  assert np.abs(norm(x).numpy()).max() > 0.1


def test_convlstm_sequence_equals_step_by_step():
  lstm = layers.ConvLSTM(5, 3)
  x = tf.random.stateless_normal([2, 4, 6, 6, 3], seed=[0, 2])
  state = (tf.random.stateless_normal([2, 6, 6, 5], seed=[0, 3]),
           tf.random.stateless_normal([2, 6, 6, 5], seed=[0, 4]))
  full, (h_full, c_full) = lstm(x, state)
  outputs = []
  for t in range(4):
    out, state = lstm(x[:, t:t + 1], state)
    outputs.append(out)
  np.testing.assert_allclose(full, tf.concat(outputs, 1), atol=1e-6)
  np.testing.assert_allclose(h_full, state[0], atol=1e-6)
  np.testing.assert_allclose(c_full, state[1], atol=1e-6)
  assert full.shape == [2, 4, 6, 6, 5]
  # The recurrence matters: the last output depends on the first input.
  changed, _ = lstm(tf.concat([x[:, :1] + 1.0, x[:, 1:]], 1),
                    (tf.zeros([2, 6, 6, 5]), tf.zeros([2, 6, 6, 5])))
  base, _ = lstm(x, (tf.zeros([2, 6, 6, 5]), tf.zeros([2, 6, 6, 5])))
  assert np.abs(changed[:, -1] - base[:, -1]).max() > 1e-4


def test_initial_state_shapes_and_range():
  h, c = layers.InitialState(7)(tf.random.stateless_normal(
      [2, 3, 4, 4, 5], seed=[1, 1]) * 10)
  assert h.shape == c.shape == [2, 4, 4, 7]
  assert np.abs(h.numpy()).max() <= 1.0


def test_upsample_nearest_repeats_pixels():
  x = tf.reshape(tf.range(4, dtype=tf.float32), [1, 2, 2, 1])
  up = layers.upsample_nearest(x, 4)[0, :, :, 0].numpy()
  np.testing.assert_array_equal(up, [[0, 0, 1, 1], [0, 0, 1, 1],
                                     [2, 2, 3, 3], [2, 2, 3, 3]])
  top = layers.upsample_nearest(tf.ones([1, 1, 1, 2]), 8)
  assert top.shape == [1, 8, 8, 2]


def test_res_block_projects_shortcut_only_when_needed():
  x = tf.random.stateless_normal([2, 8, 8, 4], seed=[2, 2])
  same, wider = layers.ResBlock(4), layers.ResBlock(6)
  assert same(x).shape == [2, 8, 8, 4] and same.shortcut is None
  assert wider(x).shape == [2, 8, 8, 6] and wider.shortcut is not None


def test_time_distributed_round_trips_shapes():
  x = tf.random.stateless_normal([2, 3, 4, 4, 1], seed=[3, 3])
  y = layers.time_distributed(lambda f: f * 2.0, x)
  np.testing.assert_allclose(y, x * 2.0)


def test_lists_and_dicts_of_sublayers_are_checkpointed(tmp_path):
  class Holder(layers.Layer):

    def __init__(self):
      super().__init__()
      self.blocks = [layers.ResBlock(2), layers.ResBlock(2)]
      self.by_kind = {"a": [tf.keras.layers.Dense(3)]}

    def call(self, x):
      for block in self.blocks:
        x = block(x)
      return self.by_kind["a"][0](x)

  x = tf.ones([1, 4, 4, 2])
  saved, restored = Holder(), Holder()
  saved(x)
  restored(x)
  path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
  for a, b in zip(saved.weights, restored.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  names = [n for n, _ in tf.train.list_variables(path)]
  assert any("blocks_1" in n for n in names)
  assert any("by_kind_a_0" in n for n in names)


def _conv_kernel_shapes(concrete) -> list:
  return sorted(tuple(op.inputs[1].shape) for op in concrete.graph.get_operations()
                if op.type == "Conv2D")


@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_uses_the_centre_tap_on_1x1_maps_only(use_bias):
  """layers.Conv2D equals keras.layers.Conv2D with the same weights, 1x1 or not."""
  ours = layers.Conv2D(6, 3, padding="same", use_bias=use_bias)
  plain = tf.keras.layers.Conv2D(6, 3, padding="same", use_bias=use_bias)
  ours.build([None, 1, 1, 5])
  plain.build([None, 1, 1, 5])
  for a, b in zip(ours.weights, plain.weights):
    assert a.shape == b.shape and a.path.split("/")[-1] == b.path.split("/")[-1]
    a.assign(tf.random.stateless_normal(a.shape, seed=[len(a.shape), 9]))
    b.assign(a)

  def outputs_and_gradients(conv, x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = conv(x)
      loss = tf.reduce_sum(tf.sin(y))
    return y, tape.gradient(loss, [x] + conv.trainable_variables)

  for size, ours_kernel in ((1, (1, 1, 5, 6)), (3, (3, 3, 5, 6))):
    x = tf.random.stateless_normal([4, size, size, 5], seed=[size, 1])
    ours_fn = tf.function(lambda x: outputs_and_gradients(ours, x))
    plain_fn = tf.function(lambda x: outputs_and_gradients(plain, x))
    for a, b in zip(tf.nest.flatten(ours_fn(x)), tf.nest.flatten(plain_fn(x))):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # 1x1: one convolution with the centre tap; larger maps: the whole kernel.
    assert _conv_kernel_shapes(ours_fn.get_concrete_function(x)) == [ours_kernel]
    assert _conv_kernel_shapes(plain_fn.get_concrete_function(x)) == [(3, 3, 5, 6)]
    if size == 1:  # the dead taps get exactly zero gradient
      kernel_gradient = ours_fn(x)[1][1].numpy()
      assert np.abs(kernel_gradient[1, 1]).max() > 0
      kernel_gradient[1, 1] = 0
      assert not kernel_gradient.any()


def test_conv2d_keeps_the_plain_path_for_strides_and_valid_padding():
  x = tf.ones([1, 1, 1, 2])
  for conv in (layers.Conv2D(3, 3, padding="valid"), layers.Conv2D(3, 3, strides=2, padding="same"),
               layers.Conv2D(3, 1, padding="same")):
    assert not conv._center_tap_only(x.shape)
  assert layers.Conv2D(3, 3, padding="same")._center_tap_only(x.shape)


def test_convlstm_gradient_has_no_strided_slice_grad_and_matches_a_reference():
  """ConvLSTM unstacks its input gates once; same result as a plain step-by-step loop."""
  lstm = layers.ConvLSTM(4, 3)
  x = tf.random.stateless_normal([2, 5, 4, 4, 3], seed=[5, 1])
  state = (tf.random.stateless_normal([2, 4, 4, 4], seed=[5, 2]),
           tf.random.stateless_normal([2, 4, 4, 4], seed=[5, 3]))
  lstm(x, state)

  def reference(x):
    """The ConvLSTM equations written out with plain ops and the layer's weights."""
    conv = lambda v, kernel: tf.nn.conv2d(v, kernel, 1, "SAME")
    h, c = state
    outputs = []
    for t in range(x.shape[1]):
      gates = (conv(x[:, t], lstm.input_conv.kernel) + lstm.input_conv.bias
               + conv(h, lstm.hidden_conv.kernel))
      i, f, o, g = tf.split(gates, 4, axis=-1)
      c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
      h = tf.sigmoid(o) * tf.tanh(c)
      outputs.append(h)
    return tf.stack(outputs, axis=1)

  def gradients(fn, x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(tf.sin(fn(x)))
    return loss, tape.gradient(loss, [x] + lstm.trainable_variables)

  layer_fn = tf.function(lambda x: gradients(lambda v: lstm(v, state)[0], x))
  reference_fn = tf.function(lambda x: gradients(reference, x))
  for a, b in zip(tf.nest.flatten(layer_fn(x)), tf.nest.flatten(reference_fn(x))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

  def op_counts(fn):
    graph = fn.get_concrete_function(x).graph.as_graph_def()
    ops = [n.op for n in graph.node]
    for function in graph.library.function:
      ops += [n.op for n in function.node_def]
    return {op: ops.count(op) for op in ("StridedSliceGrad", "Unpack")}

  counts = op_counts(layer_fn)
  assert counts["StridedSliceGrad"] == 0 and counts["Unpack"] >= 1
  assert op_counts(reference_fn)["StridedSliceGrad"] >= 5  # the test can fail: x[:, t] per step
