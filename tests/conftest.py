"""Shared fixtures: a tiny model configuration and clean gin state."""

import os

import gin
import pytest
import tensorflow as tf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hvrnn_tf import checkpointing  # pylint: disable=g-import-not-at-top
from hvrnn_tf.config import ModelConfig  # pylint: disable=g-import-not-at-top
from hvrnn_tf.model import HierarchicalVRNN  # pylint: disable=g-import-not-at-top


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


TINY_GIN = """
model.ModelConfig.image_size = 16
model.ModelConfig.channels = 1
model.ModelConfig.context_frames = 2
model.ModelConfig.future_frames = 2
model.ModelConfig.n_hid = 4
model.ModelConfig.channel_multipliers = (1, 2, 2, 2)
model.ModelConfig.latent_resolutions = (1, 4)
model.ModelConfig.latent_channels = (2, 2)
model.ModelConfig.decoder_convlstm_layers = 2
"""


@pytest.fixture(scope="session")
def make_workdir():
  """Factory writing what a training run leaves: operative config + checkpoint.

  make_workdir(path, gin_text=TINY_GIN, step=7) builds the model `gin_text` configures,
  gives it random non-trivial weights and returns it.
  """

  def make(workdir, config_text=TINY_GIN, step=7):
    gin.parse_config(config_text)
    model = HierarchicalVRNN(ModelConfig())
    model.initialize()
    for v in model.trainable_variables:
      v.assign(tf.random.stateless_normal(v.shape, seed=[len(v.path), 0]) * 0.1)
    (workdir / checkpointing.OPERATIVE_CONFIG).write_text(
        gin.operative_config_str())
    ckpt = checkpointing.checkpoint(model,
                                    step=tf.Variable(step, dtype=tf.int64))
    ckpt.save(str(workdir / checkpointing.CHECKPOINT_DIR / "ckpt"))
    gin.clear_config()
    return model

  return make
