"""The hierarchy of latent levels: recurrent priors and posteriors (paper sec. 4).

Level l (0 = top, coarsest) at resolution r_l, with encoder features of
C_r channels there, has for each of the prior and the posterior the release's
network (s2s_big_hier_v4)

  features at r_l -> conv1x1(C_r -> C_r) -> GroupNorm -> NormConvLSTM(C_r)
    -> concat(samples of the levels above, nearest-upsampled to r_l)
    -> conv1x1(-> 2 z_l) -> GroupNorm (scale 0, shift ~ N(0, 1e-3))
    -> (mean, pre-variance); variance = softplus(pre-variance).

GroupNorms have 1 group at 1x1, else 16. The ConvLSTM's initial state comes
from the context frames' features (layers.InitialState). The prior reads the
features of x_{t-1}, the posterior those of x_t. The conditioning on the
levels above enters after the ConvLSTM, so under teacher forcing every
ConvLSTM runs over the whole sequence before any sampling.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from hvrnn_tf.model import convlstm
from hvrnn_tf.model import layers
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.ops import speed_paths

tfd = tfp.distributions

# The release's head init: GroupNorm scale 0 and shift ~ N(0, 1e-3), so every
# prior and posterior starts at N(~0, softplus(~0) = ~0.69).
HEAD_SHIFT_STDDEV = 1e-3
# Not in the release (log(softplus(x)) there): keeps log-densities finite
# where softplus underflows; 1e-8 is far below any variance seen in training.
MIN_VARIANCE = 1e-8


class LatentNetwork(layers.Layer):
  """Prior or posterior network of one latent level (see the module docstring).

  recur: features [B, T, r, r, C_r] -> hidden [B, T, r, r, C_r].
  distribution: hidden + conditioning [B, T, r, r, *] -> Normal [B, T, r, r, z].
  """

  def __init__(
    self,
    channels: int,
    latent_channels: int,
    resolution: int,
    kernel_size: int,
    exact_groups: bool = False,
    speed: speed_paths.SpeedPaths = speed_paths.DEFAULT,
    **kwargs,
  ):
    super().__init__(**kwargs)
    groups = 1 if resolution == 1 else 16
    self.project = keras.layers.Conv2D(channels, 1)
    self.norm = layers.group_norm(channels, groups, exact_groups, speed)
    self.lstm = convlstm.NormConvLSTM(
      channels, kernel_size, exact_groups=exact_groups, speed=speed
    )
    self.initial_state = layers.InitialState(
      channels, exact_groups=exact_groups, speed=speed
    )
    self.head = keras.layers.Conv2D(2 * latent_channels, 1)
    self.head_norm = layers.group_norm(
      2 * latent_channels,
      groups,
      exact_groups,
      speed,
      gamma_initializer="zeros",
      beta_initializer=keras.initializers.RandomNormal(
        stddev=HEAD_SHIFT_STDDEV
      ),
    )

  def recur(self, features, state):
    x = layers.time_distributed(lambda f: self.norm(self.project(f)), features)
    return self.lstm(x, state)

  def distribution(self, hidden, conditioning):
    x = tf.concat(
      [hidden] + [tf.cast(z, hidden.dtype) for z in conditioning], axis=-1
    )
    params = layers.time_distributed(lambda h: self.head_norm(self.head(h)), x)
    mean, pre_variance = tf.split(layers.at_least_float32(params), 2, axis=-1)
    variance = tf.nn.softplus(pre_variance) + MIN_VARIANCE
    return tfd.Normal(mean, tf.sqrt(variance))


class LatentHierarchy(layers.Layer):
  """All latent levels, with their prior and posterior networks.

  States are dicts {"prior": [(h, c) per level], "posterior": [...]}.
  """

  def __init__(
    self, config: ModelConfig, feature_channels: dict[int, int], **kwargs
  ):
    super().__init__(**kwargs)
    self.resolutions = config.latent_resolutions
    self.dense = config.dense

    def networks(kind):
      return [
        LatentNetwork(
          feature_channels[r],
          z,
          r,
          config.kernel_size,
          exact_groups=config.release_group_counts,
          speed=config.speed_paths,
          name=f"{kind}_{r}x{r}",
        )
        for r, z in zip(config.latent_resolutions, config.latent_channels)
      ]

    self.networks = {
      "prior": networks("prior"),
      "posterior": networks("posterior"),
    }

  def initial_states(self, context_features, kinds=("prior", "posterior")):
    """Initial states of the `kinds` ConvLSTMs from {r: [B, c, r, r, C_r]}."""
    return {
      kind: [
        net.initial_state(context_features[r])
        for net, r in zip(self.networks[kind], self.resolutions)
      ]
      for kind in kinds
    }

  def recur(self, kind, features, states):
    """Runs the `kind` ("prior"/"posterior") ConvLSTMs of every level.

    Args:
      features: {r: [B, T, r, r, C_r]} encoder features (x_{t-1} for the prior,
        x_t for the posterior).
      states: that kind's list of (h, c), one per level.
    Returns:
      (hidden [B, T, r_l, r_l, hidden_l] per level, new states per level).
    """
    outputs = [
      net.recur(features[r], state)
      for net, r, state in zip(self.networks[kind], self.resolutions, states)
    ]
    return [o[0] for o in outputs], [o[1] for o in outputs]

  def conditioning(self, level, samples):
    """The samples of the levels above `level` that condition it, upsampled."""
    sources = range(level) if self.dense else range(max(level - 1, 0), level)
    resolution = self.resolutions[level]
    return [
      layers.time_distributed(
        lambda z: layers.upsample_nearest(z, resolution), samples[k]
      )
      for k in sources
    ]

  def sample(self, kind, hidden, noise):
    """Draws every level top-first, each conditioned on its own kind's samples.

    Used for the posterior in training and for the prior in generation.
    Args:
      hidden: per-level ConvLSTM outputs [B, T, r, r, hidden].
      noise: per-level standard-normal noise [B, T, r, r, z].
    Returns:
      (distributions per level, samples [B, T, r, r, z] per level).
    """
    distributions, samples = [], []
    for level, net in enumerate(self.networks[kind]):
      dist = net.distribution(hidden[level], self.conditioning(level, samples))
      distributions.append(dist)
      samples.append(
        dist.loc + dist.scale * tf.cast(noise[level], dist.loc.dtype)
      )
    return distributions, samples

  def prior_given(self, hidden, samples):
    """Prior distributions per level, conditioned on given (posterior) samples."""
    return [
      net.distribution(hidden[level], self.conditioning(level, samples))
      for level, net in enumerate(self.networks["prior"])
    ]
