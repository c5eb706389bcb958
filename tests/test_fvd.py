"""Fréchet distance and the FVD pipeline, with a random stand-in for I3D.

The stand-in has I3D's TF-Hub interface ("default" signature, float32
[B, T, 224, 224, 3] in [-1, 1] -> {"default": [B, 400]}) and is loaded from a
SavedModel through the same hub.load path as the real handle. Its FVD values
mean nothing; only their properties are checked.
"""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.evaluation.metrics import fvd


class RandomI3D(tf.Module):
  """Strided 3D conv -> ReLU -> global mean -> 400 logits, random weights."""

  def __init__(self):
    super().__init__()
    rng = tf.random.Generator.from_seed(0)
    self.kernel = tf.Variable(rng.normal([1, 8, 8, 3, 32]) * 0.1)
    self.dense = tf.Variable(rng.normal([32, 400]) * 0.3)

  @tf.function(
    input_signature=[
      tf.TensorSpec([None, None, fvd.I3D_SIZE, fvd.I3D_SIZE, 3], tf.float32)
    ]
  )
  def __call__(self, videos):
    h = tf.nn.relu(tf.nn.conv3d(videos, self.kernel, [1, 1, 8, 8, 1], "VALID"))
    return {"default": tf.reduce_mean(h, axis=[1, 2, 3]) @ self.dense}


@pytest.fixture(scope="module")
def i3d_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("i3d"))
  module = RandomI3D()
  tf.saved_model.save(module, path, signatures={"default": module.__call__})
  return path


def _videos(seed, n=12, t=4, size=16):
  return (
    np.random.default_rng(seed)
    .uniform(size=(n, t, size, size, 3))
    .astype(np.float32)
  )


def _random_gaussian(rng, d):
  a = rng.normal(size=(d, d))
  return rng.normal(size=d), a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_closed_form_for_commuting_covariances():
  rng = np.random.default_rng(0)
  d = 6
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # shared eigenvectors
  ev1, ev2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
  m1, m2 = rng.normal(size=d), rng.normal(size=d)
  expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(ev1) - np.sqrt(ev2)) ** 2)
  got = fvd.frechet_distance(
    m1, q @ np.diag(ev1) @ q.T, m2, q @ np.diag(ev2) @ q.T
  )
  np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_frechet_distance_matches_an_eigenvalue_reference():
  rng = np.random.default_rng(1)
  (m1, c1), (m2, c2) = _random_gaussian(rng, 20), _random_gaussian(rng, 20)
  # Tr sqrt(C1 C2) = sum of sqrt of the (real, >= 0) eigenvalues of C1 C2.
  trace_sqrt = np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
  expected = (
    np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
  )
  np.testing.assert_allclose(
    fvd.frechet_distance(m1, c1, m2, c2), expected, rtol=1e-9
  )


def test_one_dimensional_case():
  # (m1 - m2)^2 + (s1 - s2)^2 for N(1, 2^2) and N(4, 3^2).
  np.testing.assert_allclose(
    fvd.frechet_distance([1.0], [[4.0]], [4.0], [[9.0]]), 10.0
  )


def test_fit_gaussian_and_input_errors():
  features = np.random.default_rng(2).normal(size=(50, 3))
  mean, cov = fvd.fit_gaussian(features)
  np.testing.assert_allclose(cov, np.cov(features.T))
  assert mean.dtype == cov.dtype == np.float64
  with pytest.raises(ValueError, match="N >= 2"):
    fvd.fit_gaussian(features[:1])
  with pytest.raises(ValueError, match="mismatched Gaussians"):
    fvd.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_preprocess_resizes_like_tf1_bilinear_and_maps_to_minus_one_one():
  # 2x2 grey frame [[0, 1], [0, 1]]: without half-pixel centres output column j
  # samples input column j * 2 / 224, so column 56 is halfway (0.5 -> 0.0).
  frame = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)[None, None, :, :, None]
  out = fvd.preprocess(frame).numpy()
  assert out.shape == (1, 1, 224, 224, 3)
  np.testing.assert_allclose(
    out[0, 0, 0, [0, 56, 112, 223], 0], [-1.0, 0.0, 1.0, 1.0], atol=1e-6
  )
  np.testing.assert_array_equal(out[..., 0], out[..., 2])
  with pytest.raises(ValueError, match=r"\[B, T, H, W, 1 or 3\]"):
    fvd.preprocess(np.zeros((2, 16, 16, 3)))


def test_features_do_not_depend_on_the_batching(i3d_dir):
  videos = _videos(0, n=6)
  batched = fvd.I3DFeatures(i3d_dir, batch_size=4)(videos)  # 4 + 2 padded
  single = fvd.I3DFeatures(i3d_dir, batch_size=1)(videos)
  assert batched.shape == (6, 400) and batched.dtype == np.float64
  np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


def test_fvd_is_zero_for_equal_populations_and_grows_with_noise(i3d_dir):
  i3d = fvd.I3DFeatures(i3d_dir, batch_size=8)
  real = _videos(1, n=16)
  noise = np.random.default_rng(3).normal(size=real.shape).astype(np.float32)
  real_features = i3d(real)
  distances = [
    fvd.fvd(real_features, i3d(np.clip(real + s * noise, 0, 1)))
    for s in (0.0, 0.05, 0.2)
  ]
  # sqrt of the covariance's ~0 eigenvalues (N < D) costs ~1e-7 relative.
  scale = np.trace(np.cov(real_features, rowvar=False))
  assert abs(distances[0]) < 1e-5 * scale < distances[1] < distances[2]


def test_a_module_without_the_i3d_signature_is_rejected(tmp_path):
  module = tf.Module()
  module.v = tf.Variable(1.0)
  tf.saved_model.save(module, str(tmp_path))
  with pytest.raises(ValueError, match="no 'default' signature"):
    fvd.I3DFeatures(str(tmp_path))
