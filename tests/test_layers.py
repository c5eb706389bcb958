"""Tests of the shared building blocks."""

import contextlib

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model import layers
from hvrnn_tf.ops import speed_paths
from hvrnn_tf.testing import graphs


@pytest.mark.parametrize(
  "channels,groups,expected",
  [(64, 4, 4), (2048, 16, 16), (512, 1, 1), (16, 16, 4), (8, 4, 2), (3, 4, 1)],
)
def test_num_groups_is_the_papers_or_fewer_for_narrow_layers(
  channels, groups, expected
):
  assert layers.num_groups(channels, groups) == expected


def test_group_norm_keeps_signal_at_1x1_and_uses_pytorchs_epsilon():
  """A 1x1 feature map must not be normalised to all zeros."""
  norm = layers.group_norm(8, 16)
  x = tf.random.stateless_normal([2, 1, 1, 8], seed=[0, 1])
  assert np.abs(norm(x).numpy()).max() > 0.1
  assert norm.epsilon == 1e-5


def _group_stats(x, groups):
  """Mean and std of x [N, H, W, C] per sample and channel group."""
  n, h, w, c = x.shape
  grouped = tf.reshape(x, [n, h * w, groups, c // groups])
  return (
    tf.reduce_mean(grouped, [1, 3]).numpy(),
    tf.math.reduce_std(grouped, [1, 3]).numpy(),
  )


def test_initial_state_is_groupnormed_without_tanh():
  context = tf.random.stateless_normal([2, 3, 4, 4, 5], seed=[1, 1]) * 10
  net = layers.InitialState(8, kernel_size=3)
  h, c = net(context)
  assert h.shape == c.shape == [2, 4, 4, 8]
  assert net.mix.conv.kernel.shape == [3, 3, 15, 15]  # 3 frames x 5 stacked
  mean, std = _group_stats(tf.concat([h, c], -1), 4)  # GN16 on 16: 4 groups
  np.testing.assert_allclose(mean, 0.0, atol=1e-4)
  np.testing.assert_allclose(std, 1.0, atol=2e-2)
  at_1x1 = layers.InitialState(8)
  at_1x1(tf.ones([1, 2, 1, 1, 4]))
  assert at_1x1.norm.groups == 1


def test_upsample_nearest_repeats_pixels():
  x = tf.reshape(tf.range(4, dtype=tf.float32), [1, 2, 2, 1])
  up = layers.upsample_nearest(x, 4)[0, :, :, 0].numpy()
  np.testing.assert_array_equal(
    up, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
  )
  top = layers.upsample_nearest(tf.ones([1, 1, 1, 2]), 8)
  assert top.shape == [1, 8, 8, 2]


def test_res_block_is_post_norm_with_a_tenth_of_the_residual():
  x = tf.random.stateless_normal([2, 8, 8, 16], seed=[2, 2])
  block = layers.ResBlock(16)
  out = block(x)
  assert block.shortcut is None and block.conv1.kernel.shape == [3, 3, 16, 16]
  assert block.conv2.bias is None
  branch = (out - x) / 0.1
  leaky = lambda v: tf.nn.leaky_relu(v, 0.2)
  np.testing.assert_allclose(
    branch,
    block.norm2(block.conv2(leaky(block.norm1(block.conv1(leaky(x)))))),
    atol=2e-5,
  )
  mean, std = _group_stats(branch, 4)  # GN(4) is the branch's last op
  np.testing.assert_allclose(mean, 0.0, atol=1e-4)
  np.testing.assert_allclose(std, 1.0, atol=2e-2)


def test_res_block_widens_through_a_bias_free_projection():
  x = tf.random.stateless_normal([2, 8, 8, 4], seed=[2, 2])
  wider = layers.ResBlock(6)
  assert wider(x).shape == [2, 8, 8, 6]
  assert wider.shortcut.kernel.shape == [1, 1, 4, 6]
  assert wider.shortcut.bias is None
  assert wider.conv1.kernel.shape[-1] == 4  # hidden = min(fin, fout)


def test_dc_up_conv_goes_1_to_4_then_doubles():
  up = layers.DcUpConv(8)
  assert up(tf.ones([2, 1, 1, 16])).shape == [2, 4, 4, 8]
  assert up.conv.kernel.shape[:2] == [4, 4]
  assert layers.DcUpConv(8)(tf.ones([2, 4, 4, 16])).shape == [2, 8, 8, 8]


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
  return sorted(
    tuple(op.inputs[1].shape)
    for op in concrete.graph.get_operations()
    if op.type == "Conv2D"
  )


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
    assert _conv_kernel_shapes(ours_fn.get_concrete_function(x)) == [
      ours_kernel
    ]
    assert _conv_kernel_shapes(plain_fn.get_concrete_function(x)) == [
      (3, 3, 5, 6)
    ]
    if size == 1:  # the dead taps get exactly zero gradient
      kernel_gradient = ours_fn(x)[1][1].numpy()
      assert np.abs(kernel_gradient[1, 1]).max() > 0
      kernel_gradient[1, 1] = 0
      assert not kernel_gradient.any()


@pytest.mark.parametrize("size", [1, 4])
def test_conv2d_reuse_kernel_differentiates_the_kernel_once(size):
  """A 3-step recurrence: one kernel gradient convolution (and on 1x1 maps
  one StridedSliceGrad) inside reuse_kernel, three outside; same values.
  With the convolutions on maps this small too (their patch matmuls are
  tested in test_shared_kernel)."""
  conv = layers.Conv2D(5, 3, padding="same")
  x0 = tf.random.stateless_normal([2, size, size, 5], seed=[4, 2])
  conv.build(x0.shape)

  def loss_and_gradients(reuse):
    reusing = (
      conv.reuse_kernel(speed_paths.CONVOLUTIONS_ONLY)
      if reuse
      else contextlib.nullcontext()
    )
    with tf.GradientTape() as tape, reusing:
      tape.watch(x0)
      h = x0
      for _ in range(3):
        h = tf.tanh(conv(h))
      loss = tf.reduce_sum(tf.sin(h))
    return loss, tape.gradient(loss, [x0] + conv.trainable_variables)

  counts, results = [], []
  for reuse in (False, True):
    fn = tf.function(lambda reuse=reuse: loss_and_gradients(reuse))
    ops = ["StridedSliceGrad", "Conv2DBackpropFilter"]
    counts.append(graphs.op_counts(fn.get_concrete_function(), ops))
    results.append(tf.nest.flatten(fn()))
  slices = 1 if size == 1 else 0
  assert counts == [
    {"StridedSliceGrad": 3 * slices, "Conv2DBackpropFilter": 3},
    {"StridedSliceGrad": slices, "Conv2DBackpropFilter": 1},
  ]
  for a, b in zip(*results):
    # One filter gradient over the stacked steps sums in another order than
    # three added up: float32 rounding of the largest entries (~40) reaches
    # near-zero ones, so atol scales with the tensor.
    atol = 1e-6 * max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol)
  assert conv._shared is None  # nothing kept after the block


def test_conv2d_keeps_the_plain_path_for_strides_and_valid_padding():
  x = tf.ones([1, 1, 1, 2])
  for conv in (
    layers.Conv2D(3, 3, padding="valid"),
    layers.Conv2D(3, 3, strides=2, padding="same"),
    layers.Conv2D(3, 1, padding="same"),
  ):
    assert not conv._center_tap_only(x.shape)
  assert layers.Conv2D(3, 3, padding="same")._center_tap_only(x.shape)
