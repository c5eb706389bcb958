"""Named model configurations of the tests and the benchmarks.

"bair_*" are the paper's BAIR models (64x64 RGB, 2 context + 10 predicted
frames, n_hid 64, the release's s2s_big_hier_v4 architecture); "tiny" (every
code path, little compute: the tests' tiny_config) and "micro" (the smallest
valid model: 8x8, one level, one decoder ConvLSTM; smoke tests) shrink
gin/tiny.gin.
"""

import dataclasses
import functools

import gin
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.utils import gin_parsing

# name: (gin file, ModelConfig overrides).
CONFIGS = {
  "tiny": (
    "tiny.gin",
    dict(
      image_size=16,
      future_frames=3,
      channel_multipliers=(1, 2, 2, 2),
      latent_resolutions=(1, 4, 8),
      latent_channels=(2, 3, 2),
      decoder_convlstm_layers=4,
      reconstruction_loss="l1",
    ),
  ),
  "micro": (
    "tiny.gin",
    dict(
      image_size=8,
      future_frames=1,
      channel_multipliers=(1, 1, 1),
      latent_resolutions=(1,),
      latent_channels=(2,),
      decoder_convlstm_layers=1,
      reconstruction_loss="l1",
    ),
  ),
  "smmnist_quick": ("smmnist_quick.gin", {}),
  "bair_h3": ("bair.gin", {}),
  "bair_h1": ("ablations/table2_hierarchy_1.gin", {}),
  "bair_h1_d1": ("ablations/table1_decoder_1convlstm.gin", {}),
}

DESCRIPTIONS = {
  "tiny": "gin/tiny.gin at 16x16: levels [1,4,8], 4 ConvLSTMs, 2+3 frames",
  "micro": "gin/tiny.gin at 8x8: level [1], 1 ConvLSTM, 2+1 frames",
  "smmnist_quick": "gin/smmnist_quick.gin: 32x32x1, n_hid 8, [1,8] (64,64), "
  "decoder skips, 5 ConvLSTMs, 2+6 frames",
  "bair_h3": "gin/bair.gin: BAIR 64x64x3, n_hid 64, [1,8,32] (512,512,128), "
  "6 ConvLSTMs, 2+10 frames",
  "bair_h1": "gin/ablations/table2_hierarchy_1.gin: BAIR 64x64x3, n_hid 64, "
  "[1] (512), 6 ConvLSTMs, 2+10 frames",
  "bair_h1_d1": "gin/ablations/table1_decoder_1convlstm.gin: BAIR 64x64x3, "
  "n_hid 64, [1] (512), 1 ConvLSTM, 2+10 frames",
}


@functools.cache
def gin_model_config(gin_file: str) -> ModelConfig:
  """The ModelConfig a gin file of gin/ binds (its other bindings are not
  read). Clears gin's bindings: call before parsing any."""
  gin.clear_config()
  try:
    gin_parsing.parse_gin([gin_file], skip_unknown=True)
    return ModelConfig()
  finally:
    gin.clear_config()


def model_config(name: str, **overrides) -> ModelConfig:
  """The named config of CONFIGS, with `overrides`."""
  if name not in CONFIGS:
    raise ValueError(f"Unknown config {name!r}; known: {sorted(CONFIGS)}")
  gin_file, changes = CONFIGS[name]
  return dataclasses.replace(
    gin_model_config(gin_file), **{**changes, **overrides}
  )
