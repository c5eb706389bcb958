"""The authors' O(T^2) sampling scheme, as bench.sampling's baseline.

For every new frame it re-encodes the whole sequence so far and re-runs the
prior and the decoder over it from the initial states.
"""

import tensorflow as tf

from hvrnn_tf.model import vrnn
from hvrnn_tf.model.vrnn import HierarchicalVRNN


def _one_frame(model, context, generated, seed, rows):
  """Re-runs everything over context + generated; returns the next frame."""
  config = model.config
  c = config.context_frames
  resolutions = config.latent_resolutions
  size, channels = config.image_size, config.channels
  video = tf.concat([context, generated], axis=1)
  features = model.encode(video)
  states = model._initial_states(  # pylint: disable=protected-access
    {
      r: tf.ensure_shape(f[:, :c], [rows, c] + f.shape[2:])
      for r, f in features.items()
    },
    ("prior",),
  )
  previous = {r: f[:, c - 1 :] for r, f in features.items()}
  num_steps = tf.shape(generated)[1] + 1

  def step(k, states, logits):
    del logits
    inputs = {r: f[:, k][:, None] for r, f in previous.items()}
    noise = model.noise(vrnn.fold_in(seed, k), rows, 1)
    hidden, prior_states = model.latents.recur("prior", inputs, states["prior"])
    _, samples = model.latents.sample("prior", hidden, noise)
    logits, decoder_states = model.decoder(
      inputs, dict(zip(resolutions, samples)), states["decoder"]
    )
    return k + 1, {"prior": prior_states, "decoder": decoder_states}, logits

  logits = tf.zeros([rows, 1, size, size, channels])
  _, _, logits = tf.while_loop(
    lambda k, *_: k < num_steps, step, (tf.constant(0), states, logits)
  )
  return tf.sigmoid(logits[:, 0])


def make_naive_sampler(model: HierarchicalVRNN):
  """The O(T^2) baseline: re-runs the network over the whole sequence per new frame.

  Returns a tf.function(context [B, c, S, S, C], num_future (int32 scalar),
  num_samples (Python int), seed int32 [2]) -> [B, N, F, S, S, C] with the
  same per-step noise as `model.sample`, hence the same frames. Only
  the last frame of each re-run is kept, as in the authors' release.
  """
  size, channels = model.config.image_size, model.config.channels

  @tf.function
  def naive_sample(context, num_future, num_samples, seed):
    batch_size = context.shape[0]
    rows = batch_size * num_samples
    context = tf.repeat(context, num_samples, axis=0)
    frames = tf.TensorArray(
      tf.float32, size=num_future, element_shape=[rows, size, size, channels]
    )

    def body(t, frames):
      generated = tf.transpose(frames.gather(tf.range(t)), [1, 0, 2, 3, 4])
      return t + 1, frames.write(
        t, _one_frame(model, context, generated, seed, rows)
      )

    _, frames = tf.while_loop(
      lambda t, _: t < num_future, body, (tf.constant(0), frames)
    )
    frames = tf.transpose(frames.stack(), [1, 0, 2, 3, 4])
    return tf.reshape(
      frames, [batch_size, num_samples, -1, size, size, channels]
    )

  return naive_sample
