"""Tests of ModelConfig validation and gin binding."""

import pytest
import tensorflow as tf

import gin
from hvrnn_tf.model.config import ConfigError
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.ops import speed_paths


@pytest.mark.parametrize(
  "overrides,parameter",
  [
    (dict(image_size=48), "image_size"),
    (
      dict(latent_resolutions=(1, 12), latent_channels=(2, 2)),
      "latent_resolutions",
    ),
    (
      dict(latent_resolutions=(8, 1), latent_channels=(2, 2)),
      "latent_resolutions",
    ),
    (dict(latent_channels=(2, 2)), "latent_channels"),
    (dict(channel_multipliers=(1, 2)), "channel_multipliers"),
    (dict(decoder_convlstm_layers=7), "decoder_convlstm_layers"),
    (dict(reconstruction_loss="huber"), "reconstruction_loss"),
    (dict(context_frames=0), "context_frames"),
    (dict(patch_matmul_max_rows=(256, 128)), "patch_matmul_max_rows"),
    (dict(patch_matmul_max_rows=(-1, 0, 0)), "patch_matmul_max_rows"),
    (dict(group_norm_xla_gradient=1), "group_norm_xla_gradient"),
  ],
)
def test_invalid_settings_name_the_parameter(overrides, parameter):
  with pytest.raises(ConfigError, match=f"ModelConfig.{parameter}"):
    ModelConfig(**overrides)


def test_defaults_are_the_papers_bair_model():
  config = ModelConfig()
  assert config.resolutions == (64, 32, 16, 8, 4, 1)
  assert config.latent_resolutions == (1, 8, 32)
  assert config.sequence_length == 12


def test_gin_bindings_reach_the_config_as_tuples():
  gin.parse_config("""
      model.ModelConfig.image_size = 32
      model.ModelConfig.channel_multipliers = [1, 2, 4, 4, 4]
      model.ModelConfig.latent_resolutions = [1, 8]
      model.ModelConfig.latent_channels = [4, 4]
      model.ModelConfig.decoder_convlstm_layers = 5
  """)
  config = ModelConfig()
  assert config.image_size == 32
  assert config.latent_resolutions == (1, 8)
  assert isinstance(config.channel_multipliers, tuple)


def test_speed_paths_are_gin_bindable_and_reach_the_layers():
  gin.parse_config("""
      model.ModelConfig.group_norm_xla_gradient = False
      model.ModelConfig.patch_matmul_max_rows = [0, 0, 0]
  """)
  config = ModelConfig()
  assert config.patch_matmul_max_rows == (0, 0, 0)
  assert config.speed_paths.group_norm_xla_gradient is False
  assert config.speed_paths.patch_matmul_max_rows == (0, 0, 0)


def test_speed_paths_by_device_cpu_paths_only_without_a_gpu():
  gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
  assert speed_paths.by_device([]) == speed_paths.DEFAULT
  assert speed_paths.by_device([gpu]) == speed_paths.PLAIN
  assert speed_paths.PLAIN.group_norm_xla_gradient is False
  assert speed_paths.PLAIN.patch_matmul_max_rows == (0, 0, 0)
  visible = tf.config.get_visible_devices("GPU")
  assert speed_paths.by_device() == speed_paths.by_device(visible)


def test_unbound_speed_paths_follow_the_device_bound_ones_win():
  assert ModelConfig().speed_paths == speed_paths.by_device()
  config = ModelConfig(group_norm_xla_gradient=False)
  assert config.group_norm_xla_gradient is False
  assert (
    config.patch_matmul_max_rows
    == speed_paths.by_device().patch_matmul_max_rows
  )


def test_speed_paths_change_no_variable(tiny_config, tmp_path):
  """A checkpoint restores under any speed-path setting."""
  models = []
  for config in (
    tiny_config(),
    tiny_config(group_norm_xla_gradient=False, patch_matmul_max_rows=(0, 0, 0)),
  ):
    models.append(HierarchicalVRNN(config))
    models[-1].initialize()
  path = tf.train.Checkpoint(model=models[0]).save(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(model=models[1]).restore(path).assert_consumed()
