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
