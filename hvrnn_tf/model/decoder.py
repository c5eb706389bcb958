"""ConvLSTM likelihood network p(x_t | x_{<t}, z_{<=t}) (paper sec. 4.2; the
release's "render" net of s2s_big_hier_v4).

Stages at resolutions 1, 4, 8, ..., S with the encoder's widths there. Stage 0
takes the 1x1 encoding of x_{t-1}; every later stage first upsamples the
previous stage's output with a DcUpConv. x_{t-1}'s encoder features of the
stage's resolution (only with `decoder_skips`, not in the paper) and the
latent sample of the stage's resolution, if there is a level there, are
concatenated, then the stage runs its ConvLSTM: plain at 1x1, normalised
elsewhere. The first `decoder_convlstm_layers` stages are ConvLSTMs, the rest
(ablation) a 3x3 DcConv. A 3x3 DcConv and a 3x3 conv give the logits.
"""

import keras
import tensorflow as tf

from hvrnn_tf.model import convlstm
from hvrnn_tf.model import layers
from hvrnn_tf.model.config import ModelConfig


class Decoder(layers.Layer):
  """Maps x_{t-1}'s encodings + latents to logits [B, T, S, S, C].

  States: one (h, c) per ConvLSTM stage, in stage order, each from an
  initial-state net over the context features of its resolution. That net's
  DcConv is 3x3 at resolution max(4, S / 16) and 1x1 elsewhere: the release
  puts its 3x3 at 4x4 in the 64x64 model and at 8x8 in the 128x128 one (both
  its 'layer_13').
  """

  def __init__(
    self, config: ModelConfig, feature_channels: dict[int, int], **kwargs
  ):
    super().__init__(**kwargs)
    self.resolutions = tuple(reversed(config.resolutions))
    widths = [
      max(1, round(feature_channels[r] * config.decoder_width_multiplier))
      for r in self.resolutions
    ]
    self.num_recurrent = config.decoder_convlstm_layers
    self.skips = config.decoder_skips
    self.exact_groups = config.release_group_counts
    self.speed = config.speed_paths
    wide_kernel_at = max(4, config.image_size // 16)
    self.stages = [
      self._stage(i, r, w, config.kernel_size)
      for i, (r, w) in enumerate(zip(self.resolutions, widths))
    ]
    self.initial_states = [
      layers.InitialState(
        w,
        kernel_size=3 if r == wide_kernel_at else 1,
        exact_groups=self.exact_groups,
        speed=self.speed,
        name=f"init_{r}x{r}",
      )
      for r, w in zip(self.resolutions[: self.num_recurrent], widths)
    ]
    self.upsamplers = [
      layers.DcUpConv(
        w, exact_groups=self.exact_groups, speed=self.speed, name=f"up_{r}x{r}"
      )
      for r, w in zip(self.resolutions[1:], widths[1:])
    ]
    self.out_block = layers.DcConv(
      widths[-1], 3, exact_groups=self.exact_groups, speed=self.speed
    )
    self.out_conv = keras.layers.Conv2D(config.channels, 3, padding="same")

  def _stage(self, index, resolution, width, kernel_size):
    name = f"{resolution}x{resolution}"
    if index >= self.num_recurrent:
      return layers.DcConv(
        width,
        3,
        exact_groups=self.exact_groups,
        speed=self.speed,
        name=f"conv_{name}",
      )
    return convlstm.ConvLSTM(
      width,
      kernel_size,
      normalized=resolution != 1,
      exact_groups=self.exact_groups,
      speed=self.speed,
      name=f"convlstm_{name}",
    )

  def initial_state(self, context_features):
    """context_features {r: [B, c, r, r, C_r]} -> states of the ConvLSTM stages."""
    return [
      net(context_features[r])
      for net, r in zip(self.initial_states, self.resolutions)
    ]

  def call(self, previous, latents, states):
    """Decodes a sequence (T = 1 is one generation step).

    Args:
      previous: {resolution: [B, T, r, r, C_r]} encoder features of the
        previous frames (only the 1x1 ones are used without skips).
      latents: {resolution: [B, T, r, r, z]} latent samples.
      states: list of (h, c) per ConvLSTM stage.
    Returns:
      (logits [B, T, S, S, C], new states).
    """
    x = previous[1]
    new_states = []
    for i, (resolution, stage) in enumerate(zip(self.resolutions, self.stages)):
      if i > 0:
        x = layers.time_distributed(self.upsamplers[i - 1], x)
        if self.skips:
          x = tf.concat([x, tf.cast(previous[resolution], x.dtype)], axis=-1)
      if resolution in latents:
        x = tf.concat([x, tf.cast(latents[resolution], x.dtype)], axis=-1)
      if i < self.num_recurrent:
        x, state = stage(x, states[i])
        new_states.append(state)
      else:
        x = layers.time_distributed(stage, x)
    logits = layers.time_distributed(
      lambda h: self.out_conv(self.out_block(h)), x
    )
    return layers.at_least_float32(logits), new_states
