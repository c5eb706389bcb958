"""Tests of the ResNet frame encoder."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model.encoder import FrameEncoder
from hvrnn_tf.model.encoder import block_widths
from hvrnn_tf.model.encoder import pyramid_resolutions


@pytest.mark.parametrize(
  "size,expected",
  [
    (64, (64, 32, 16, 8, 4, 1)),
    (128, (128, 64, 32, 16, 8, 4, 1)),
    (16, (16, 8, 4, 1)),
  ],
)
def test_pyramid_resolutions(size, expected):
  assert pyramid_resolutions(size) == expected


def test_feature_pyramid_shapes_match_the_paper_layout():
  encoder = FrameEncoder(64, n_hid=4, channel_multipliers=(1, 2, 4, 8, 8, 8))
  features = encoder(tf.zeros([3, 64, 64, 3]))
  assert {r: f.shape.as_list() for r, f in features.items()} == {
    64: [3, 64, 64, 4],
    32: [3, 32, 32, 8],
    16: [3, 16, 16, 16],
    8: [3, 8, 8, 32],
    4: [3, 4, 4, 32],
    1: [3, 1, 1, 32],
  }
  assert encoder.channels == {r: f.shape[-1] for r, f in features.items()}


def test_block_layout_is_the_releases():
  """One block at S, two elsewhere; the stage reaching the widest width
  widens in its second block (64x64: 4n, 8n at 8x8; 128x128: at 16x16)."""
  n = 64
  assert block_widths([n * m for m in (1, 2, 4, 8, 8, 8)]) == [
    [n],
    [2 * n, 2 * n],
    [4 * n, 4 * n],
    [4 * n, 8 * n],
    [8 * n, 8 * n],
    [8 * n, 8 * n],
  ]
  assert block_widths([n * m for m in (1, 2, 4, 8, 8, 8, 8)])[3] == [
    4 * n,
    8 * n,
  ]


def test_max_pools_down_to_1x1_where_groupnorm_has_one_group():
  encoder = FrameEncoder(16, n_hid=4, channel_multipliers=(1, 2, 4, 4))
  frames = tf.random.stateless_uniform([2, 16, 16, 1], seed=[1, 2])
  features = encoder(frames)
  assert [b.norm1.groups for b in encoder.stages[-1]] == [1, 1]
  # Elsewhere GroupNorm(4), fewer groups where that leaves < 4 channels each.
  assert [b.norm1.groups for b in encoder.stages[1]] == [1, 2]
  assert encoder.stem.kernel.shape == [1, 1, 1, 4]
  # 4x4 -> 1x1 is a max pool (no weights), then the 1x1 blocks.
  pooled = tf.reduce_max(features[4], axis=[1, 2], keepdims=True)
  x = pooled
  for block in encoder.stages[-1]:
    x = block(x)
  np.testing.assert_allclose(x, features[1], atol=1e-6)
