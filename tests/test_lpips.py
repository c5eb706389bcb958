"""LPIPS (AlexNet and VGG) with randomly initialised backbone and calibration
weights.

Random weights check the computation, never the metric's values: real LPIPS
needs the official files (see hvrnn_tf/evaluation/metrics/lpips.py).
"""

import numpy as np
import pytest

from hvrnn_tf.evaluation.metrics import lpips

# torchvision {alexnet,vgg16}.features conv index -> (in, out, kernel).
_CONVS = {
  "alex": {
    0: (3, 64, 11),
    3: (64, 192, 5),
    6: (192, 384, 3),
    8: (384, 256, 3),
    10: (256, 256, 3),
  },
  "vgg": {
    0: (3, 64, 3),
    2: (64, 64, 3),
    5: (64, 128, 3),
    7: (128, 128, 3),
    10: (128, 256, 3),
    12: (256, 256, 3),
    14: (256, 256, 3),
    17: (256, 512, 3),
    19: (512, 512, 3),
    21: (512, 512, 3),
    24: (512, 512, 3),
    26: (512, 512, 3),
    28: (512, 512, 3),
  },
}


def random_states(seed=0, net="vgg"):
  """(lin_state, backbone_state) with random values, in the official
  layouts."""
  rng = np.random.default_rng(seed)
  backbone = {}
  for i, (cin, cout, k) in _CONVS[net].items():
    backbone[f"features.{i}.weight"] = rng.normal(
      scale=np.sqrt(2.0 / (k * k * cin)), size=(cout, cin, k, k)
    )
    backbone[f"features.{i}.bias"] = rng.normal(scale=0.01, size=cout)
  lin = {
    f"lin{level}.model.1.weight": rng.uniform(size=(1, c, 1, 1))
    for level, c in enumerate(lpips.NETS[net].channels)
  }
  return lin, backbone


@pytest.fixture(scope="module", params=["alex", "vgg"])
def metric(request):
  return lpips.LPIPS(*random_states(net=request.param), net=request.param)


@pytest.fixture(scope="module")
def alex():
  return lpips.LPIPS(*random_states(net="alex"), net="alex")


def _images(seed, n=3, size=32, c=3):
  return (
    np.random.default_rng(seed)
    .uniform(size=(n, size, size, c))
    .astype(np.float32)
  )


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
  small, large = (
    metric(x, np.clip(x + s * noise, 0, 1)).numpy() for s in (0.02, 0.2)
  )
  assert (small < large).all()


def test_per_frame_scores_every_sample_against_its_sequence(metric):
  rng = np.random.default_rng(3)
  size = lpips.NETS[metric.net].min_size
  truth = rng.uniform(size=(2, 3, size, size, 1)).astype(np.float32)
  samples = rng.uniform(size=(2, 2, 3, size, size, 1)).astype(np.float32)
  samples[1, 0] = truth[1]
  scores = metric.per_frame(truth, samples).numpy()
  assert scores.shape == (2, 2, 3)
  np.testing.assert_array_equal(scores[1, 0], 0.0)
  np.testing.assert_allclose(
    scores[0, 1], metric(truth[0], samples[0, 1]), rtol=1e-5
  )


def test_weights_load_from_files(tmp_path, metric):
  lin, backbone = random_states(net=metric.net)
  np.savez(tmp_path / "lin.npz", **lin)
  np.savez(tmp_path / "backbone.npz", **backbone)
  loaded = lpips.load_lpips(
    str(tmp_path / "lin.npz"), str(tmp_path / "backbone.npz"), net=metric.net
  )
  assert loaded.net == metric.net
  x, y = _images(4), _images(5)
  np.testing.assert_allclose(loaded(x, y), metric(x, y), rtol=1e-6)


def _torch_size(n, kernel, stride=1, padding=0):
  """Output side of a PyTorch Conv2d / MaxPool2d (floor mode)."""
  return (n + 2 * padding - kernel) // stride + 1


@pytest.mark.parametrize("size", [31, 64, 100])
def test_alex_feature_sizes_match_pytorch(alex, size):
  relu1 = _torch_size(size, 11, 4, 2)
  relu2 = _torch_size(_torch_size(relu1, 3, 2), 5, 1, 2)
  relu3 = _torch_size(_torch_size(relu2, 3, 2), 3, 1, 1)
  features = alex.features(np.zeros((2, size, size, 3), np.float32))
  assert [tuple(f.shape) for f in features] == [
    (2, s, s, c)
    for s, c in zip(
      (relu1, relu2, relu3, relu3, relu3), (64, 192, 384, 256, 256)
    )
  ]


def test_wrong_weights_and_inputs_give_clear_errors(metric):
  lin, vgg = random_states()
  with pytest.raises(ValueError, match="lin4.model.1.weight"):
    lpips.LPIPS({k: v for k, v in lin.items() if not k.startswith("lin4")}, vgg)
  with pytest.raises(ValueError, match="not VGG LPIPS weights"):
    lpips.LPIPS({**lin, "lin0.model.1.weight": np.ones((1, 32, 1, 1))}, vgg)
  with pytest.raises(ValueError, match="features.28.bias"):
    lpips.LPIPS(lin, {k: v for k, v in vgg.items() if k != "features.28.bias"})
  with pytest.raises(ValueError, match="'squeeze'"):
    lpips.LPIPS(lin, vgg, net="squeeze")
  size = lpips.NETS[metric.net].min_size
  with pytest.raises(ValueError, match=f"at least {size}x{size}"):
    metric(np.zeros((1, size - 1, 64, 3)), np.zeros((1, size - 1, 64, 3)))
  with pytest.raises(ValueError, match=r"\[N, H, W, 1 or 3\]"):
    metric(np.zeros((1, 32, 32, 2)), np.zeros((1, 32, 32, 2)))
  with pytest.raises(FileNotFoundError, match="missing.pth"):
    lpips.load_lpips("missing.pth", "missing.pth", net=metric.net)


def test_weights_of_the_other_net_are_refused():
  vgg_lin, vgg = random_states(net="vgg")
  alex_lin, alex = random_states(net="alex")
  with pytest.raises(
    ValueError,
    match="lin1.model.1.weight has 128 channels, "
    "AlexNet has 192: these are not AlexNet LPIPS weights",
  ):
    lpips.LPIPS(vgg_lin, alex, net="alex")
  with pytest.raises(ValueError, match="not VGG LPIPS weights"):
    lpips.LPIPS(alex_lin, vgg, net="vgg")
  with pytest.raises(
    ValueError,
    match=r"features.0.weight has shape \(64, 3, "
    r"3, 3\), AlexNet expects \(64, 3, 11, 11\)",
  ):
    lpips.LPIPS(alex_lin, vgg, net="alex")
  with pytest.raises(
    ValueError,
    match=r"features.0.weight has shape \(64, 3, "
    r"11, 11\), VGG16 expects \(64, 3, 3, 3\)",
  ):
    lpips.LPIPS(vgg_lin, alex, net="vgg")
  with pytest.raises(ValueError, match="features.10.bias"):
    lpips.LPIPS(
      alex_lin,
      {k: v for k, v in alex.items() if k != "features.10.bias"},
      net="alex",
    )
