"""Tests of the hierarchical VRNN: ELBO, KL, gradients, sampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model.vrnn import HierarchicalVRNN

SEED = tf.constant([3, 7])


def random_video(config, batch_size=2, seed=0):
  return tf.random.stateless_uniform(
    [
      batch_size,
      config.sequence_length,
      config.image_size,
      config.image_size,
      config.channels,
    ],
    seed=[seed, 1],
  )


def randomize_heads(model, scale=0.3):
  """The heads' GroupNorm scale starts at 0 (prior ~= posterior ~= N(0, 0.69));
  give them real weights."""
  rng = np.random.default_rng(0)
  for kind in ("prior", "posterior"):
    for net in model.latents.networks[kind]:
      kernel = net.head.kernel
      kernel.assign(rng.normal(0, scale, kernel.shape).astype(np.float32))
      net.head_norm.gamma.assign(tf.ones_like(net.head_norm.gamma))


@pytest.fixture
def model_and_config(tiny_config, request):
  """The tiny model; `request.param` (indirect) sets decoder_skips."""
  config = tiny_config(decoder_skips=getattr(request, "param", False))
  model = HierarchicalVRNN(config)
  model.initialize()
  return model, config


def test_initialize_builds_without_symbolic_traces(tiny_config, monkeypatch):
  """Keras 3 traces an unbuilt composite layer's call() symbolically before
  running it, at every level of nesting, unless the layer has a build()."""
  traced = []
  trace = keras.src.backend.compute_output_spec
  monkeypatch.setattr(
    keras.src.backend,
    "compute_output_spec",
    lambda fn, *a, **k: traced.append(fn) or trace(fn, *a, **k),
  )
  model = HierarchicalVRNN(tiny_config())
  model.initialize()
  assert model.trainable_variables and not traced, traced


def test_elbo_shapes_and_values(model_and_config):
  model, config = model_and_config
  randomize_heads(model)
  out = model.elbo(random_video(config), SEED, beta=0.5)
  b, f, s = 2, config.future_frames, config.image_size
  assert out.nll.shape == [b] and out.kl.shape == [b]
  assert out.reconstruction.shape == [b, f, s, s, 1]
  assert [k.shape.as_list() for k in out.kl_per_level] == [
    [b, f, r, r, z]
    for r, z in zip(config.latent_resolutions, config.latent_channels)
  ]
  assert np.isfinite(out.loss.numpy())
  for kl in out.kl_per_level:
    assert np.all(kl.numpy() >= -1e-6)
  np.testing.assert_allclose(
    out.kl,
    tf.add_n([tf.reduce_sum(k, [1, 2, 3, 4]) for k in out.kl_per_level]),
    rtol=1e-5,
  )
  np.testing.assert_allclose(
    out.loss, np.mean(out.nll + 0.5 * out.kl), rtol=1e-5
  )


def test_heads_start_at_the_same_normal_so_kl_starts_near_zero(
  model_and_config,
):
  """Head shifts ~ N(0, 1e-3) on ~500 latent elements: KL ~ 1e-3, not 0."""
  model, config = model_and_config
  out = model.elbo(random_video(config), SEED)
  assert np.all(out.kl.numpy() < 1e-2)


def test_kl_is_zero_when_posterior_equals_prior(model_and_config):
  """Same weights and, for a static video, the same inputs: q == p exactly."""
  model, config = model_and_config
  randomize_heads(model)
  for prior, posterior in zip(
    model.latents.networks["prior"], model.latents.networks["posterior"]
  ):
    for p_var, q_var in zip(prior.weights, posterior.weights):
      q_var.assign(p_var)
  static = tf.repeat(random_video(config)[:, :1], config.sequence_length, 1)
  np.testing.assert_allclose(model.elbo(static, SEED).kl, 0.0, atol=1e-4)
  assert np.all(model.elbo(random_video(config), SEED).kl.numpy() > 1e-2)


def test_gradients_reach_every_variable(model_and_config):
  model, config = model_and_config
  randomize_heads(model)
  variables = model.trainable_variables
  with tf.GradientTape() as tape:
    loss = model.elbo(random_video(config), SEED).loss
  gradients = tape.gradient(loss, variables)
  reached = {
    id(v)
    for v, g in zip(variables, gradients)
    if g is not None and np.any(g.numpy())
  }
  parts = (
    model.latents.networks["prior"]
    + model.latents.networks["posterior"]
    + [model.decoder, model.encoder]
  )
  for part in parts:
    assert part.trainable_variables
    unreached = [
      v.path for v in part.trainable_variables if id(v) not in reached
    ]
    assert not unreached, f"{part.name}: no gradient for {unreached}"


@pytest.mark.parametrize(
  "model_and_config", [False, True], ids=["paper", "skips"], indirect=True
)
def test_stepwise_pass_equals_full_sequence_pass(model_and_config):
  model, config = model_and_config
  randomize_heads(model)
  video = random_video(config)
  full = model.elbo(video, SEED)
  stepwise = model.elbo(video, SEED, stepwise=True)
  np.testing.assert_allclose(
    full.reconstruction, stepwise.reconstruction, atol=1e-5
  )
  for a, b in zip(full.kl_per_level, stepwise.kl_per_level):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(full.loss, stepwise.loss, rtol=1e-5)


@pytest.mark.parametrize(
  "model_and_config", [False, True], ids=["paper", "skips"], indirect=True
)
def test_sample_shape_range_and_seeding(model_and_config):
  model, config = model_and_config
  randomize_heads(model)
  context = random_video(config)[:, : config.context_frames]
  a = model.sample(context, 4, 3, tf.constant([1, 2]))
  b = model.sample(context, 4, 3, tf.constant([1, 2]))
  c = model.sample(context, 4, 3, tf.constant([1, 3]))
  assert a.shape == [2, 3, 4, 16, 16, 1]
  assert np.all((a.numpy() >= 0) & (a.numpy() <= 1))
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).max() > 1e-3
  # The samples of one context differ from each other.
  assert np.abs(a[:, 0] - a[:, 1]).max() > 1e-3


def test_a_seed_per_sequence_samples_it_as_if_alone(model_and_config):
  model, config = model_and_config
  randomize_heads(model)
  # One context twice: the rows differ only by their seeds.
  context = tf.repeat(random_video(config, 1)[:, : config.context_frames], 2, 0)
  seeds = tf.constant([[1, 2], [5, 6]])
  both = model.sample(context, 3, 2, seeds)
  for row in (0, 1):
    alone = model.sample(context[row : row + 1], 3, 2, seeds[row])
    np.testing.assert_allclose(both[row : row + 1], alone, atol=1e-5)
  assert np.abs(both[0] - both[1]).max() > 1e-3


def test_sampling_cost_is_linear_in_the_number_of_frames(
  model_and_config, monkeypatch
):
  """Each frame is encoded and decoded once: O(F) work, not O(F^2)."""
  model, config = model_and_config
  encoded, decoded = [], []

  def counting(layer, log, frames_of):
    call = layer.call
    monkeypatch.setattr(
      layer, "call", lambda x, *a: log.append(frames_of(x)) or call(x, *a)
    )

  counting(model.encoder, encoded, lambda x: x.shape[0])
  counting(model.decoder, decoded, lambda x: x[1].shape[0] * x[1].shape[1])
  tf.config.run_functions_eagerly(True)
  try:
    for num_future in (3, 6, 12):
      encoded.clear()
      decoded.clear()
      model.sample(random_video(config, 1)[:, :2], num_future, 2, SEED)
      assert sum(encoded) == 2 * (config.context_frames + num_future)
      assert decoded == [2] * num_future
  finally:
    tf.config.run_functions_eagerly(False)
