"""ResNet frame encoder producing a feature pyramid (paper sec. 4.2; the
release's s2s_big_hier_v4 / s2s_big_hier_128 encoders)."""

import keras
import tensorflow as tf

from hvrnn_tf.model import layers
from hvrnn_tf.ops import speed_paths


def pyramid_resolutions(image_size: int) -> tuple[int, ...]:
  """Resolutions of the encoder pyramid, finest first: image_size, ..., 8, 4, 1."""
  resolutions = []
  size = image_size
  while size >= 4:
    resolutions.append(size)
    size //= 2
  return tuple(resolutions) + (1,)


def block_widths(widths: list[int]) -> list[list[int]]:
  """Output widths of the ResBlocks of each stage, from the stage widths.

  The first stage has one block, every later stage two (the release's). A
  stage that widens does so in its first block, except the one that reaches
  the widest width, which widens in its second (64x64 model: 4n, 8n at 8x8;
  128x128: at 16x16); both release encoders follow this rule.
  """
  blocks = [[widths[0]]]
  for previous, width in zip(widths, widths[1:]):
    late = width == max(widths) and width != previous
    blocks.append([previous, width] if late else [width, width])
  return blocks


class FrameEncoder(layers.Layer):
  """Encodes frames [N, S, S, C] into features at every pyramid resolution.

  conv1x1(C -> w_S), then per resolution S, S/2, ..., 4 its ResBlocks (one at
  S, two elsewhere; see block_widths), 2x2 max pooling between them, a 4x4
  max pool (stride 1) from 4x4 to 1x1 and two ResBlocks at 1x1 (GroupNorm
  with 1 group). For S = 64, n = 64 and channel_multipliers (1, 2, 4, 8, 8, 8)
  the pyramid is 64: n, 32: 2n, 16: 4n, 8: 8n, 4: 8n, 1: 8n channels, the
  output of each resolution's last block. exact_groups: see
  layers.num_groups; speed: ModelConfig.speed_paths.
  """

  def __init__(
    self,
    image_size: int,
    n_hid: int,
    channel_multipliers: tuple[int, ...],
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    self.resolutions = pyramid_resolutions(image_size)
    widths = [n_hid * m for m in channel_multipliers]
    self.channels = dict(zip(self.resolutions, widths))
    self.stem = keras.layers.Conv2D(widths[0], 1)
    self.stages = [
      [
        layers.ResBlock(w, 1 if r == 1 else 4, exact_groups, speed)
        for w in stage
      ]
      for r, stage in zip(self.resolutions, block_widths(widths))
    ]

  def call(self, frames):
    """frames [N, S, S, C] -> {resolution: features [N, r, r, channels[r]]}."""
    features = {}
    x = self.stem(frames)
    for resolution, blocks in zip(self.resolutions, self.stages):
      if resolution == 1:
        x = tf.nn.max_pool2d(x, 4, 1, "VALID")
      elif resolution != self.resolutions[0]:
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
      for block in blocks:
        x = block(x)
      features[resolution] = x
    return features
