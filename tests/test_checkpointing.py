"""Tests of loading a trained model back from a workdir."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf import checkpointing
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.model import HierarchicalVRNN


def save_run(workdir, config_text, step=7):
  """Writes what a training run leaves: operative config + a checkpoint."""
  gin.parse_config(config_text)
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  for v in model.trainable_variables:
    v.assign(tf.random.stateless_normal(v.shape, seed=[len(v.path), 0]) * 0.1)
  (workdir / checkpointing.OPERATIVE_CONFIG).write_text(gin.operative_config_str())
  ckpt = checkpointing.checkpoint(model, step=tf.Variable(step, dtype=tf.int64))
  ckpt.save(str(workdir / checkpointing.CHECKPOINT_DIR / "ckpt"))
  gin.clear_config()
  return model


CONFIG = """
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


def test_restore_gives_the_same_model(tmp_path):
  saved = save_run(tmp_path, CONFIG)
  restored, step = checkpointing.restore_model(str(tmp_path))
  assert step == 7 and restored.config == saved.config
  for a, b in zip(saved.trainable_variables, restored.trainable_variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  context = tf.random.stateless_uniform([1, 2, 16, 16, 1], seed=[0, 0])
  np.testing.assert_allclose(saved.sample(context, 2, 1, tf.constant([1, 1])),
                             restored.sample(context, 2, 1, tf.constant([1, 1])),
                             atol=1e-6)


def test_missing_pieces_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="operative_config.gin"):
    checkpointing.restore_model(str(tmp_path))
  (tmp_path / checkpointing.OPERATIVE_CONFIG).write_text(CONFIG)
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    checkpointing.restore_model(str(tmp_path))


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
  save_run(tmp_path, CONFIG)
  with pytest.raises(ValueError, match="does not match the configured model"):
    checkpointing.restore_model(
        str(tmp_path), gin_params=["model.ModelConfig.n_hid = 8"])


def test_bad_override_names_the_binding(tmp_path):
  save_run(tmp_path, CONFIG)
  with pytest.raises(ValueError, match="n_hidd"):
    checkpointing.restore_model(
        str(tmp_path), gin_params=["model.ModelConfig.n_hidd = 8"])
