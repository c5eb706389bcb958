"""hvrnn_tf.testing.configs: the named model configs of tests and benches."""

import gin
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.testing import configs


def test_configs_are_their_gin_files_models():
  # The paper's model is ModelConfig's default, and gin/bair.gin's.
  assert configs.model_config("bair_h3") == ModelConfig()
  assert configs.model_config("bair_h1").latent_resolutions == (1,)
  assert configs.model_config("bair_h1_d1").decoder_convlstm_layers == 1
  quick = configs.model_config("smmnist_quick")
  assert (
    quick.image_size,
    quick.n_hid,
    quick.latent_channels,
    quick.decoder_skips,
  ) == (32, 8, (64, 64), True)
  assert gin.config_str() == ""  # reading a gin file leaves no bindings


def test_tiny_and_micro_shrink_gin_tiny():
  tiny_gin = configs.gin_model_config("tiny.gin")
  for name, size in (("tiny", 16), ("micro", 8)):
    config = configs.model_config(name)
    assert config.image_size == size
    assert (config.n_hid, config.channels, config.context_frames) == (
      tiny_gin.n_hid,
      tiny_gin.channels,
      tiny_gin.context_frames,
    )
  assert configs.model_config("tiny", future_frames=5).future_frames == 5


def test_every_config_is_valid_and_described():
  for name in configs.CONFIGS:
    configs.model_config(name)
    assert name in configs.DESCRIPTIONS
