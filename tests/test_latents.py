"""Tests of the latent hierarchy: dense connectivity and level conditioning."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model.encoder import FrameEncoder
from hvrnn_tf.model.latents import LatentHierarchy


def build(config):
  channels = FrameEncoder(
    config.image_size, config.n_hid, config.channel_multipliers
  ).channels
  hierarchy = LatentHierarchy(config, channels)
  features = {
    r: tf.random.stateless_normal([2, 3, r, r, c], seed=[r, 0])
    for r, c in channels.items()
  }
  states = hierarchy.initial_states({r: f[:, :2] for r, f in features.items()})
  hidden, _ = hierarchy.recur("posterior", features, states["posterior"])
  noise = [
    tf.zeros(h.shape[:-1] + [z]) for h, z in zip(hidden, config.latent_channels)
  ]
  _, samples = hierarchy.sample("posterior", hidden, noise)
  hierarchy.prior_given(hidden, samples)  # builds the prior heads too
  return hierarchy, hidden


@pytest.mark.parametrize("dense", [True, False])
def test_dense_connectivity_sets_what_each_level_sees(tiny_config, dense):
  config = tiny_config(dense=dense)
  hierarchy, _ = build(config)
  z = config.latent_channels
  expected = [0, z[0], z[0] + z[1]] if dense else [0, z[0], z[1]]
  for kind in ("prior", "posterior"):
    seen = [
      net.head.kernel.shape[2] - net.lstm.filters
      for net in hierarchy.networks[kind]
    ]
    assert seen == expected


@pytest.mark.parametrize("dense", [True, False])
def test_top_level_reaches_the_bottom_only_when_dense(tiny_config, dense):
  """Changing only the level-0 sample changes level 2's distribution iff dense,
  with level 1 held fixed."""
  config = tiny_config(dense=dense)
  hierarchy, hidden = build(config)
  for net in hierarchy.networks["prior"]:
    net.head.kernel.assign(
      tf.random.stateless_normal(net.head.kernel.shape, seed=[1, 2])
    )
    net.head_norm.gamma.assign(tf.ones_like(net.head_norm.gamma))
  samples = [
    tf.random.stateless_normal(h.shape[:-1] + [z], seed=[i, 9])
    for i, (h, z) in enumerate(zip(hidden, config.latent_channels))
  ]
  base = hierarchy.prior_given(hidden, samples)[2].loc
  changed = hierarchy.prior_given(hidden, [samples[0] + 1.0] + samples[1:])[
    2
  ].loc
  assert (np.abs(base - changed).max() > 1e-4) == dense


def test_samples_have_level_shapes(tiny_config):
  config = tiny_config()
  hierarchy, hidden = build(config)
  noise = [
    tf.ones(h.shape[:-1] + [z]) for h, z in zip(hidden, config.latent_channels)
  ]
  distributions, samples = hierarchy.sample("posterior", hidden, noise)
  for dist, sample, r, z in zip(
    distributions, samples, config.latent_resolutions, config.latent_channels
  ):
    assert sample.shape == [2, 3, r, r, z]
    np.testing.assert_allclose(sample, dist.loc + dist.scale, rtol=1e-6)
    assert np.all(dist.scale.numpy() > 0)
