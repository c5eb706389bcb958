"""ResNet frame encoder producing a feature pyramid (paper sec. 4.2)."""

import keras
import tensorflow as tf

from hvrnn_tf import layers


def pyramid_resolutions(image_size: int) -> tuple[int, ...]:
  """Resolutions of the encoder pyramid, finest first: image_size, ..., 8, 4, 1."""
  resolutions = []
  size = image_size
  while size >= 4:
    resolutions.append(size)
    size //= 2
  return tuple(resolutions) + (1,)


class FrameEncoder(layers.Layer):
  """Encodes frames [N, S, S, C] into features at every pyramid resolution.

  Stages at S, S/2, ..., 4 are a ResBlock each (followed by 2x2 max pooling);
  a final 4x4 valid convolution maps 4x4 to 1x1. For S = 64 and
  channel_multipliers (1, 2, 4, 8, 8, 8) the pyramid is 64, 32, 16, 8, 4, 1
  with n_hid x (1, 2, 4, 8, 8, 8) channels. Every scale is returned.
  """

  def __init__(self, image_size: int, n_hid: int,
               channel_multipliers: tuple[int, ...], **kwargs):
    super().__init__(**kwargs)
    self.resolutions = pyramid_resolutions(image_size)
    self.channels = {r: n_hid * m
                     for r, m in zip(self.resolutions, channel_multipliers)}
    self.stem = keras.layers.Conv2D(self.channels[image_size], 3, padding="same")
    self.blocks = [layers.ResBlock(self.channels[r])
                   for r in self.resolutions[:-1]]
    self.top_norm = keras.layers.GroupNormalization(
        layers.num_groups(self.channels[4]))
    self.top_conv = keras.layers.Conv2D(self.channels[1], 4, padding="valid")

  def call(self, frames):
    """frames [N, S, S, C] -> {resolution: features [N, r, r, channels[r]]}."""
    features = {}
    x = self.stem(frames)
    for resolution, block in zip(self.resolutions[:-1], self.blocks):
      x = block(x)
      features[resolution] = x
      if resolution > 4:
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
    features[1] = self.top_conv(layers.leaky_relu(self.top_norm(x)))
    return features
