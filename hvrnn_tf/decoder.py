"""ConvLSTM likelihood network p(x_t | x_{<t}, z_{<=t}) (paper sec. 4.2).

Stages at resolutions 1, 4, 8, ..., S. Stage i takes the previous stage's
output upsampled (stage 0: the 1x1 encoding of x_{t-1}), concatenated with the
latent sample of the same resolution if there is a level there, and runs a
ConvLSTM (the first `decoder_convlstm_layers` stages) or a residual block.
Transposed convolutions go 1 -> 4 -> 8 -> ... -> S; a 3x3 conv gives logits.
"""

import keras
import tensorflow as tf

from hvrnn_tf import layers
from hvrnn_tf.config import ModelConfig


class Decoder(layers.Layer):
  """Maps [B, T, 1, 1, C_top] encodings + latents to logits [B, T, S, S, C].

  States: one (h, c) per ConvLSTM stage, in stage order.
  """

  def __init__(self, config: ModelConfig, feature_channels: dict[int, int],
               **kwargs):
    super().__init__(**kwargs)
    self.resolutions = tuple(reversed(config.resolutions))
    widths = [max(1, round(feature_channels[r] * config.decoder_width_multiplier))
              for r in self.resolutions]
    self.num_recurrent = config.decoder_convlstm_layers
    self.latent_resolutions = config.latent_resolutions
    self.stages = [
        layers.ConvLSTM(w, config.kernel_size, name=f"convlstm_{r}x{r}")
        if i < self.num_recurrent else layers.ResBlock(w, name=f"res_{r}x{r}")
        for i, (r, w) in enumerate(zip(self.resolutions, widths))]
    self.initial_states = [layers.InitialState(w, name=f"init_{r}x{r}")
                           for r, w in zip(self.resolutions[:self.num_recurrent],
                                           widths)]
    self.upsamplers = [
        Upsample(w, stride=4 if r == 1 else 2)
        for r, w in zip(self.resolutions[:-1], widths[1:])]
    self.out_norm = keras.layers.GroupNormalization(layers.num_groups(widths[-1]))
    self.out_conv = keras.layers.Conv2D(config.channels, 3, padding="same")

  def initial_state(self, context_features):
    """context_features {r: [B, c, r, r, C_r]} -> states of the ConvLSTM stages."""
    return [net(context_features[r])
            for net, r in zip(self.initial_states, self.resolutions)]

  def call(self, top_features, latents, states):
    """Decodes a sequence (T = 1 is one generation step).

    Args:
      top_features: [B, T, 1, 1, C_1] encodings of the previous frames.
      latents: {resolution: [B, T, r, r, z]} latent samples.
      states: list of (h, c) per ConvLSTM stage.
    Returns:
      (logits [B, T, S, S, C], new states).
    """
    x = top_features
    new_states = []
    for i, (resolution, stage) in enumerate(zip(self.resolutions, self.stages)):
      if i > 0:
        x = layers.time_distributed(self.upsamplers[i - 1], x)
      if resolution in latents:
        x = tf.concat([x, tf.cast(latents[resolution], x.dtype)], axis=-1)
      if i < self.num_recurrent:
        x, state = stage(x, states[i])
        new_states.append(state)
      else:
        x = layers.time_distributed(stage, x)
    logits = layers.time_distributed(
        lambda h: self.out_conv(layers.leaky_relu(self.out_norm(h))), x)
    return tf.cast(logits, tf.float32), new_states


class Upsample(layers.Layer):
  """GroupNorm -> LeakyReLU -> transposed conv: [N, r, r, C] -> [N, r*stride, ..]."""

  def __init__(self, filters: int, stride: int, **kwargs):
    super().__init__(**kwargs)
    self.conv = keras.layers.Conv2DTranspose(
        filters, 4, strides=stride, padding="same")

  def build(self, input_shape):
    self.norm = keras.layers.GroupNormalization(
        layers.num_groups(input_shape[-1]))

  def call(self, x):
    return self.conv(layers.leaky_relu(self.norm(x)))

