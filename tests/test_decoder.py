"""Tests of the ConvLSTM decoder."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model import convlstm
from hvrnn_tf.model.decoder import Decoder
from hvrnn_tf.model.encoder import FrameEncoder


def inputs(config, decoder, channels, steps=2):
  previous = {
    r: tf.random.stateless_normal([2, steps, r, r, c], seed=[r, 1])
    for r, c in channels.items()
  }
  latents = {
    r: tf.random.stateless_normal([2, steps, r, r, z], seed=[r, 2])
    for r, z in zip(config.latent_resolutions, config.latent_channels)
  }
  context = {
    r: tf.random.stateless_normal([2, 2, r, r, c], seed=[r, 3])
    for r, c in channels.items()
  }
  return previous, latents, decoder.initial_state(context)


@pytest.mark.parametrize("num_convlstm", [1, 3, 4])
def test_stage_types_and_output_shape(tiny_config, num_convlstm):
  config = tiny_config(decoder_convlstm_layers=num_convlstm)
  channels = FrameEncoder(16, 4, config.channel_multipliers).channels
  decoder = Decoder(config, channels)
  previous, latents, states = inputs(config, decoder, channels)
  logits, new_states = decoder(previous, latents, states)
  assert logits.shape == [2, 2, 16, 16, 1] and logits.dtype == tf.float32
  kinds = [isinstance(s, convlstm.ConvLSTM) for s in decoder.stages]
  assert kinds == [i < num_convlstm for i in range(4)]
  assert len(new_states) == num_convlstm


def test_every_latent_level_changes_the_output(tiny_config):
  config = tiny_config()
  channels = FrameEncoder(16, 4, config.channel_multipliers).channels
  decoder = Decoder(config, channels)
  previous, latents, states = inputs(config, decoder, channels)
  base, _ = decoder(previous, latents, states)
  for r in config.latent_resolutions:
    moved = {**latents, r: latents[r] + 1.0}
    assert np.abs(decoder(previous, moved, states)[0] - base).max() > 1e-5


@pytest.mark.parametrize("skips", [False, True])
def test_skips_feed_the_previous_frame_at_every_resolution(tiny_config, skips):
  """Without skips only the 1x1 encoding of x_{t-1} reaches the decoder (the
  paper); with them every finer stage also reads x_{t-1}'s features there."""
  config = tiny_config(decoder_skips=skips)
  channels = FrameEncoder(16, 4, config.channel_multipliers).channels
  decoder = Decoder(config, channels)
  previous, latents, states = inputs(config, decoder, channels)
  base, _ = decoder(previous, latents, states)
  for r in channels:
    moved = {**previous, r: previous[r] + 1.0}
    changed = np.abs(decoder(moved, latents, states)[0] - base).max() > 1e-5
    assert changed == (r == 1 or skips)
  latent = dict(zip(config.latent_resolutions, config.latent_channels))
  for i, (stage, r) in enumerate(zip(decoder.stages, decoder.resolutions)):
    skip = channels[r] if skips and i > 0 else 0
    assert stage.input_conv.kernel.shape[2] == channels[r] + skip + latent.get(
      r, 0
    )


def test_width_multiplier_widens_stages(tiny_config):
  config = tiny_config(decoder_width_multiplier=2.0)
  channels = FrameEncoder(16, 4, config.channel_multipliers).channels
  decoder = Decoder(config, channels)
  assert [s.filters for s in decoder.stages] == [
    2 * channels[r] for r in (1, 4, 8, 16)
  ]


def test_plain_convlstm_at_1x1_and_where_each_level_enters(tiny_config):
  """The release's render net: plain ConvLSTM at 1x1, normalised elsewhere;
  level r's sample is concatenated to the input of the r x r ConvLSTM; the
  4x4 initial-state net mixes with a 3x3 conv, the others with 1x1."""
  config = tiny_config()
  channels = FrameEncoder(16, 4, config.channel_multipliers).channels
  decoder = Decoder(config, channels)
  decoder(*inputs(config, decoder, channels))
  assert [s.normalized for s in decoder.stages] == [False, True, True, True]
  latent = dict(zip(config.latent_resolutions, config.latent_channels))
  for stage, r in zip(decoder.stages, decoder.resolutions):
    assert stage.input_conv.kernel.shape[2] == channels[r] + latent.get(r, 0)
  assert [net.mix.conv.kernel.shape[0] for net in decoder.initial_states] == [
    1,
    3,
    1,
    1,
  ]
