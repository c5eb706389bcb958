"""Shared fixtures: a tiny model configuration, a written workdir, clean gin state."""

import dataclasses
import os

import pytest
import tensorflow as tf

import gin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hvrnn_tf.model.config import ModelConfig  # pylint: disable=g-import-not-at-top
from hvrnn_tf.model.vrnn import HierarchicalVRNN  # pylint: disable=g-import-not-at-top
from hvrnn_tf.testing import configs  # pylint: disable=g-import-not-at-top
from hvrnn_tf.testing.disks import small_disk  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
from hvrnn_tf.testing.fixtures import clean_gin  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
from hvrnn_tf.training import checkpointing  # pylint: disable=g-import-not-at-top
from hvrnn_tf.utils import gin_parsing  # pylint: disable=g-import-not-at-top

# "tiny": gin/tiny.gin at 16x16 with levels (1, 4, 8), 4 decoder ConvLSTMs,
# 2 -> 3 frames and an L1 likelihood.
TINY_CONFIG = configs.model_config("tiny")


@pytest.fixture
def tiny_config():
  """Factory of 16x16, three-level (1, 4, 8) configs: every code path, little compute."""
  return lambda **overrides: dataclasses.replace(TINY_CONFIG, **overrides)


# make_workdir's model: gin/tiny.gin at 16x16 with levels (1, 4).
TINY_GIN = "tiny.gin"
TINY_WORKDIR_BINDINGS = (
  "model.ModelConfig.image_size = 16",
  "model.ModelConfig.channel_multipliers = (1, 2, 2, 2)",
  "model.ModelConfig.latent_resolutions = (1, 4)",
)


@pytest.fixture(scope="session")
def make_workdir():
  """Factory writing what a training run leaves: operative config + checkpoint.

  make_workdir(path, step=7) builds the TINY_GIN model (with
  TINY_WORKDIR_BINDINGS), gives it random non-trivial weights and returns it.
  """

  def make(workdir, step=7):
    gin_parsing.parse_gin([TINY_GIN], TINY_WORKDIR_BINDINGS, skip_unknown=True)
    model = HierarchicalVRNN(ModelConfig())
    model.initialize()
    for v in model.trainable_variables:
      v.assign(tf.random.stateless_normal(v.shape, seed=[len(v.path), 0]) * 0.1)
    (workdir / checkpointing.OPERATIVE_CONFIG).write_text(
      gin.operative_config_str()
    )
    ckpt = checkpointing.checkpoint(
      model, step=tf.Variable(step, dtype=tf.int64)
    )
    ckpt.save(str(workdir / checkpointing.CHECKPOINT_DIR / "ckpt"))
    gin.clear_config()
    return model

  return make
