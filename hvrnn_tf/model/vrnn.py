"""The hierarchical VRNN: ELBO under teacher forcing, and ancestral sampling.

Shapes: videos are float32 [B, T, S, S, C] in [0, 1]; the first
`config.context_frames` frames are the context, the rest are predicted.
"""

import dataclasses

import tensorflow as tf
import tensorflow_probability as tfp

from hvrnn_tf.model import initialization
from hvrnn_tf.model import layers
from hvrnn_tf.model import losses
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.decoder import Decoder
from hvrnn_tf.model.encoder import FrameEncoder
from hvrnn_tf.model.latents import LatentHierarchy
from hvrnn_tf.ops import shapes

tfd = tfp.distributions


def fold_in(seed, data):
  """A new stateless seed from `seed` and `data`, the same with and without XLA.

  Philox explicitly: the automatic algorithm choice differs under XLA.
  """
  return tf.random.experimental.stateless_fold_in(seed, data, alg="philox")


@dataclasses.dataclass
class ElboOutputs:
  """What one ELBO pass returns (F = number of predicted frames).

  loss: scalar, mean over the batch of neg_elbo.
  neg_elbo: [B] nll + beta * kl per sequence (losses.negative_elbo).
  nll: [B] reconstruction loss per sequence (see losses.reconstruction_nll).
  kl: [B] KL per sequence, summed over levels, steps and latent elements.
  kl_per_level: per level, top first, [B, F, r, r, z] element-wise KL.
  reconstruction: [B, F, S, S, C] posterior reconstruction in [0, 1].
  posteriors, priors: per level, top first, the Normals [B, F, r, r, z]
    (the priors conditioned on the posterior samples of the levels above).
  """

  loss: tf.Tensor
  neg_elbo: tf.Tensor
  nll: tf.Tensor
  kl: tf.Tensor
  kl_per_level: list
  reconstruction: tf.Tensor
  posteriors: list
  priors: list


def _concat_steps(normals) -> tfd.Normal:
  """One Normal [B, F, ...] from per-step Normals [B, 1, ...]."""
  return tfd.Normal(
    tf.concat([n.loc for n in normals], axis=1),
    tf.concat([n.scale for n in normals], axis=1),
  )


class HierarchicalVRNN(layers.Layer):
  """Encoder + latent hierarchy + decoder (Castrejon et al., ICCV 2019)."""

  def __init__(
    self, config: ModelConfig, jit_compile_sampling: bool = False, **kwargs
  ):
    super().__init__(**kwargs)
    self.config = config
    self.sample = tf.function(self._sample, jit_compile=jit_compile_sampling)
    self.encoder = FrameEncoder(
      config.image_size,
      config.n_hid,
      config.channel_multipliers,
      exact_groups=config.release_group_counts,
      speed=config.speed_paths,
    )
    self.latents = LatentHierarchy(config, self.encoder.channels)
    self.decoder = Decoder(config, self.encoder.channels)

  def initialize(self):
    """Creates every variable with a dummy pass (needed before restoring),
    initialised as `config.initialization` says."""
    c = self.config
    self.elbo(
      tf.zeros(
        [1, c.context_frames + 1, c.image_size, c.image_size, c.channels]
      ),
      seed=tf.constant([0, 0]),
    )
    initialization.initialize(self, c.initialization)
    self.built = True

  def encode(self, video):
    """video [B, T, S, S, C] -> {resolution: [B, T, r, r, C_r]}."""
    features = self.encoder(layers.merge_time(video))
    batch_size = shapes.dims(video)[0]
    return {
      r: layers.split_time(f, batch_size, video.shape[1])
      for r, f in features.items()
    }

  def _initial_states(self, context_features, kinds):
    states = self.latents.initial_states(context_features, kinds)
    states["decoder"] = self.decoder.initial_state(context_features)
    return states

  def noise(self, seed, batch_size, num_steps):
    """Standard-normal noise per latent level, [batch_size, num_steps, r, r, z].

    Stateless and deterministic per seed, but XLA draws different numbers than
    TensorFlow's kernels for the same seed: generate it outside jit-compiled
    code where the two must agree.
    """
    return [
      tf.random.stateless_normal(
        [batch_size, num_steps, r, r, z],
        seed=fold_in(seed, level),
        alg="philox",
      )
      for level, (r, z) in enumerate(
        zip(self.config.latent_resolutions, self.config.latent_channels)
      )
    ]

  def _teacher_forced(self, previous, current, states, noise):
    """Teacher-forced pass over F >= 1 steps, every ConvLSTM over all F at once.

    Args:
      previous, current: {r: [B, F, r, r, C_r]} features of x_{t-1} and x_t.
      states: {"prior", "posterior", "decoder"} recurrent states.
      noise: per-level posterior noise [B, F, r, r, z].
    Returns:
      (logits [B, F, S, S, C], per-level posteriors and priors (Normals
      [B, F, r, r, z]), new states).
    """
    prior_hidden, prior_states = self.latents.recur(
      "prior", previous, states["prior"]
    )
    posterior_hidden, posterior_states = self.latents.recur(
      "posterior", current, states["posterior"]
    )
    posteriors, samples = self.latents.sample(
      "posterior", posterior_hidden, noise
    )
    priors = self.latents.prior_given(prior_hidden, samples)
    logits, decoder_states = self.decoder(
      previous,
      dict(zip(self.config.latent_resolutions, samples)),
      states["decoder"],
    )
    new_states = {
      "prior": prior_states,
      "posterior": posterior_states,
      "decoder": decoder_states,
    }
    return logits, (posteriors, priors), new_states

  def elbo(self, video, seed=None, beta=1.0, stepwise=False, noise=None):
    """Negative ELBO of the predicted frames given the context.

    Args:
      video: [B, c + F, S, S, C] in [0, 1].
      seed: int32 [2], seeds the posterior noise (stateless); or
      noise: the posterior noise itself, as returned by `noise`.
      beta: KL weight.
      stepwise: run one step at a time, carrying states, instead of each
        ConvLSTM over the whole sequence. Same result; exists to check that.
    Returns:
      ElboOutputs.
    """
    c = self.config.context_frames
    features = self.encode(video)
    context = {r: f[:, :c] for r, f in features.items()}
    previous = {r: f[:, c - 1 : -1] for r, f in features.items()}
    current = {r: f[:, c:] for r, f in features.items()}
    batch_size, num_future = tf.shape(video)[0], video.shape[1] - c
    states = self._initial_states(context, ("prior", "posterior"))
    if noise is None:
      noise = self.noise(seed, batch_size, num_future)
    if stepwise:
      step = lambda x, t: {r: f[:, t : t + 1] for r, f in x.items()}
      logits, dists = [], []
      for t in range(num_future):
        step_logits, step_dists, states = self._teacher_forced(
          step(previous, t),
          step(current, t),
          states,
          [n[:, t : t + 1] for n in noise],
        )
        logits.append(step_logits)
        dists.append(step_dists)
      logits = tf.concat(logits, axis=1)
      posteriors, priors = [
        [_concat_steps(level) for level in zip(*kind)] for kind in zip(*dists)
      ]
    else:
      logits, (posteriors, priors), _ = self._teacher_forced(
        previous, current, states, noise
      )
    kl = [tfd.kl_divergence(q, p) for q, p in zip(posteriors, priors)]
    nll = losses.reconstruction_nll(
      logits, video[:, c:], self.config.reconstruction_loss
    )
    kl_total = tf.add_n([tf.reduce_sum(k, axis=[1, 2, 3, 4]) for k in kl])
    neg_elbo = losses.negative_elbo(nll, kl_total, beta)
    return ElboOutputs(
      loss=tf.reduce_mean(neg_elbo),
      neg_elbo=neg_elbo,
      nll=nll,
      kl=kl_total,
      kl_per_level=kl,
      reconstruction=tf.sigmoid(logits),
      posteriors=posteriors,
      priors=priors,
    )

  def _step_noise(self, seed, t, rows, num_samples):
    """Step t's noise for `_sample`'s rows (each sequence num_samples times)."""
    if seed.shape.rank == 1:
      return self.noise(fold_in(seed, t), rows, 1)
    # One draw per sequence from its own seed (docs/design/serving-signature.md).
    per_sequence = tf.map_fn(
      lambda s: self.noise(fold_in(s, t), num_samples, 1),
      seed,
      fn_output_signature=[tf.float32] * len(self.config.latent_channels),
    )
    return [tf.reshape(n, [-1, *n.shape[2:]]) for n in per_sequence]

  def _sample(self, context, num_future, num_samples, seed):
    """Ancestral sampling from the prior, O(num_future) network evaluations.

    Called as `model.sample(...)`, a tf.function (XLA-compiled when the model
    was built with jit_compile_sampling=True).

    Each step draws the levels top-first from the prior, decodes the frame and
    feeds it back; every ConvLSTM carries its (h, c) state from step to step.

    Args:
      context: [B, c, S, S, C] in [0, 1].
      num_future: number of frames to generate (int or int32 scalar).
      num_samples: futures per context sequence (int).
      seed: int32 [2]; the same seed gives the same samples. Or int32 [B, 2],
        a seed per sequence: each sequence's samples are then those it gets
        sampled alone with its seed, whatever else is in the batch.
    Returns:
      [B, num_samples, num_future, S, S, C] in [0, 1].
    """
    seed = tf.convert_to_tensor(seed)
    batch_size = tf.shape(context)[0]
    context = tf.repeat(context, num_samples, axis=0)
    features = self.encode(context)
    states = self._initial_states(features, ("prior",))
    previous = {r: f[:, -1:] for r, f in features.items()}
    rows = batch_size * num_samples

    def body(t, previous, states, frames):
      noise = self._step_noise(seed, t, rows, num_samples)
      hidden, prior_states = self.latents.recur(
        "prior", previous, states["prior"]
      )
      _, samples = self.latents.sample("prior", hidden, noise)
      logits, decoder_states = self.decoder(
        previous,
        dict(zip(self.config.latent_resolutions, samples)),
        states["decoder"],
      )
      frame = tf.sigmoid(logits)
      states = {"prior": prior_states, "decoder": decoder_states}
      return t + 1, self.encode(frame), states, frames.write(t, frame[:, 0])

    frames = tf.TensorArray(tf.float32, size=num_future)
    _, _, _, frames = tf.while_loop(
      lambda t, *_: t < num_future,
      body,
      (tf.constant(0), previous, states, frames),
    )
    frames = tf.transpose(frames.stack(), [1, 0, 2, 3, 4])
    return tf.reshape(
      frames,
      tf.concat([[batch_size, num_samples], tf.shape(frames)[1:]], axis=0),
    )
