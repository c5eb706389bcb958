"""Shared fixtures: a tiny model configuration and clean gin state."""

import os

import gin
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hvrnn_tf.config import ModelConfig  # pylint: disable=g-import-not-at-top


TINY_CONFIG = dict(image_size=16, channels=1, context_frames=2, future_frames=3,
                   n_hid=4, channel_multipliers=(1, 2, 2, 2),
                   latent_resolutions=(1, 4, 8), latent_channels=(2, 3, 2),
                   decoder_convlstm_layers=4, reconstruction_loss="l1")


@pytest.fixture
def tiny_config():
  """Factory of 16x16, three-level (1, 4, 8) configs: every code path, little compute."""
  return lambda **overrides: ModelConfig(**{**TINY_CONFIG, **overrides})


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()
