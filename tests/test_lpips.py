"""LPIPS-VGG with randomly initialised backbone and calibration weights.

Random weights check the computation, never the metric's values: real LPIPS
needs the official files (see hvrnn_tf/metrics/lpips.py).
"""

import numpy as np
import pytest

from hvrnn_tf.metrics import lpips

# torchvision vgg16.features conv index -> (in, out) channels.
_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128),
          10: (128, 256), 12: (256, 256), 14: (256, 256), 17: (256, 512),
          19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512),
          28: (512, 512)}


def random_states(seed=0):
  """(lin_state, vgg_state) with random values, in the official layouts."""
  rng = np.random.default_rng(seed)
  vgg = {}
  for i, (cin, cout) in _CONVS.items():
    vgg[f"features.{i}.weight"] = rng.normal(
        scale=np.sqrt(2.0 / (9 * cin)), size=(cout, cin, 3, 3))
    vgg[f"features.{i}.bias"] = rng.normal(scale=0.01, size=cout)
  lin = {f"lin{l}.model.1.weight": rng.uniform(size=(1, c, 1, 1))
         for l, c in enumerate((64, 128, 256, 512, 512))}
  return lin, vgg


@pytest.fixture(scope="module")
def metric():
  return lpips.LPIPS(*random_states())


def _images(seed, n=3, size=32, c=3):
  return np.random.default_rng(seed).uniform(size=(n, size, size, c)).astype(
      np.float32)


def test_identical_images_are_at_distance_zero(metric):
  x = _images(0)
  np.testing.assert_array_equal(metric(x, x).numpy(), 0.0)


def test_distance_is_symmetric_and_positive(metric):
  x, y = _images(0), _images(1)
  d_xy, d_yx = metric(x, y).numpy(), metric(y, x).numpy()
  assert d_xy.shape == (3,) and (d_xy > 0).all()
  np.testing.assert_allclose(d_xy, d_yx, rtol=1e-5)


def test_distance_grows_with_distortion(metric):
  x = _images(0)
  noise = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
  small, large = (metric(x, np.clip(x + s * noise, 0, 1)).numpy()
                  for s in (0.02, 0.2))
  assert (small < large).all()


def test_per_frame_scores_every_sample_against_its_sequence(metric):
  rng = np.random.default_rng(3)
  truth = rng.uniform(size=(2, 3, 16, 16, 1)).astype(np.float32)
  samples = rng.uniform(size=(2, 2, 3, 16, 16, 1)).astype(np.float32)
  samples[1, 0] = truth[1]
  scores = metric.per_frame(truth, samples).numpy()
  assert scores.shape == (2, 2, 3)
  np.testing.assert_array_equal(scores[1, 0], 0.0)
  np.testing.assert_allclose(scores[0, 1], metric(truth[0], samples[0, 1]),
                             rtol=1e-5)


def test_weights_load_from_files(tmp_path, metric):
  lin, vgg = random_states()
  np.savez(tmp_path / "lin.npz", **lin)
  np.savez(tmp_path / "vgg.npz", **vgg)
  loaded = lpips.load_lpips(str(tmp_path / "lin.npz"),
                            str(tmp_path / "vgg.npz"))
  x, y = _images(4), _images(5)
  np.testing.assert_allclose(loaded(x, y), metric(x, y), rtol=1e-6)


def test_wrong_weights_and_inputs_give_clear_errors(metric):
  lin, vgg = random_states()
  with pytest.raises(ValueError, match="lin4.model.1.weight"):
    lpips.LPIPS({k: v for k, v in lin.items() if not k.startswith("lin4")}, vgg)
  with pytest.raises(ValueError, match="not VGG LPIPS weights"):
    lpips.LPIPS({**lin, "lin0.model.1.weight": np.ones((1, 32, 1, 1))}, vgg)
  with pytest.raises(ValueError, match="features.28.bias"):
    lpips.LPIPS(lin, {k: v for k, v in vgg.items() if k != "features.28.bias"})
  with pytest.raises(ValueError, match="at least 16x16"):
    metric(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))
  with pytest.raises(ValueError, match=r"\[N, H, W, 1 or 3\]"):
    metric(np.zeros((1, 16, 16, 2)), np.zeros((1, 16, 16, 2)))
  with pytest.raises(FileNotFoundError, match="missing.pth"):
    lpips.load_lpips("missing.pth", "missing.pth")
