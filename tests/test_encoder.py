"""Tests of the ResNet frame encoder."""

import pytest
import tensorflow as tf

from hvrnn_tf.encoder import FrameEncoder, pyramid_resolutions


@pytest.mark.parametrize("size,expected", [
    (64, (64, 32, 16, 8, 4, 1)), (128, (128, 64, 32, 16, 8, 4, 1)),
    (16, (16, 8, 4, 1))])
def test_pyramid_resolutions(size, expected):
  assert pyramid_resolutions(size) == expected


def test_feature_pyramid_shapes_match_the_paper_layout():
  encoder = FrameEncoder(64, n_hid=4, channel_multipliers=(1, 2, 4, 8, 8, 8))
  features = encoder(tf.zeros([3, 64, 64, 3]))
  assert {r: f.shape.as_list() for r, f in features.items()} == {
      64: [3, 64, 64, 4], 32: [3, 32, 32, 8], 16: [3, 16, 16, 16],
      8: [3, 8, 8, 32], 4: [3, 4, 4, 32], 1: [3, 1, 1, 32]}
  assert encoder.channels == {r: f.shape[-1] for r, f in features.items()}
