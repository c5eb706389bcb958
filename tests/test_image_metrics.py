"""Per-frame SSIM / PSNR of samples against the ground truth."""

import numpy as np
import pytest

from hvrnn_tf.evaluation.metrics import image_metrics


def _videos(seed=0, b=2, n=3, t=4, size=16, c=3):
  rng = np.random.default_rng(seed)
  truth = rng.uniform(size=(b, t, size, size, c)).astype(np.float32)
  samples = rng.uniform(size=(b, n, t, size, size, c)).astype(np.float32)
  return truth, samples


def test_identical_frames_have_ssim_one_and_infinite_psnr():
  truth, _ = _videos()
  samples = np.repeat(truth[:, None], 3, axis=1)
  ssim = image_metrics.ssim_per_frame(truth, samples).numpy()
  psnr = image_metrics.psnr_per_frame(truth, samples).numpy()
  assert ssim.shape == psnr.shape == (2, 3, 4)
  np.testing.assert_allclose(ssim, 1.0, atol=1e-5)
  assert np.isposinf(psnr).all()


def test_psnr_matches_closed_form_for_a_constant_offset():
  truth = np.full((1, 2, 16, 16, 1), 0.5, np.float32)
  samples = (truth + 0.1)[:, None]  # MSE = 0.01 -> PSNR = 20 dB
  np.testing.assert_allclose(
    image_metrics.psnr_per_frame(truth, samples).numpy(), 20.0, atol=1e-3
  )


def test_each_sample_is_scored_against_its_own_sequence():
  truth, samples = _videos(n=2)
  samples[1, 0] = truth[1]  # sample 0 of sequence 1 is perfect
  ssim = image_metrics.ssim_per_frame(truth, samples).numpy()
  np.testing.assert_allclose(ssim[1, 0], 1.0, atol=1e-5)
  assert (ssim[0] < 0.5).all() and (ssim[1, 1] < 0.5).all()


def test_ssim_decreases_with_noise():
  truth, _ = _videos(n=1)
  noise = np.random.default_rng(1).normal(size=truth.shape).astype(np.float32)
  samples = np.stack([np.clip(truth + s * noise, 0, 1) for s in (0.05, 0.3)], 1)
  ssim = image_metrics.ssim_per_frame(truth, samples).numpy()
  assert (ssim[:, 0] > ssim[:, 1]).all()


@pytest.mark.parametrize(
  "truth_shape,samples_shape,match",
  [
    ((2, 4, 16, 16, 3), (2, 4, 16, 16, 3), "expected truth"),
    ((2, 4, 16, 16, 3), (3, 1, 4, 16, 16, 3), "disagree"),
    ((2, 4, 16, 16, 3), (2, 1, 5, 16, 16, 3), "disagree"),
    ((2, 4, 8, 8, 3), (2, 1, 4, 8, 8, 3), "at least 11x11"),
  ],
)
def test_bad_shapes_are_rejected(truth_shape, samples_shape, match):
  with pytest.raises(ValueError, match=match):
    image_metrics.ssim_per_frame(np.zeros(truth_shape), np.zeros(samples_shape))


@pytest.mark.parametrize("c", [1, 3])
def test_svg_ssim_matches_scikit_image_compare_ssim_defaults(c):
  from skimage import metrics  # pylint: disable=g-import-not-at-top

  truth, samples = _videos(seed=3, c=c, size=20)
  # Related frames, so that SSIM is far from 0: noisy copies.
  samples = 0.3 * samples + 0.7 * truth[:, None]
  ours = image_metrics.ssim_svg_per_frame(truth, samples).numpy()
  # scikit-image 0.14's compare_ssim defaults on float frames (SVG's call).
  reference = np.array(
    [
      [
        [
          np.mean(
            [
              metrics.structural_similarity(
                truth[b, t, ..., k],
                samples[b, n, t, ..., k],
                win_size=7,
                gaussian_weights=False,
                use_sample_covariance=True,
                data_range=2.0,
              )
              for k in range(c)
            ]
          )
          for t in range(4)
        ]
        for n in range(3)
      ]
      for b in range(2)
    ]
  )
  assert ours.shape == (2, 3, 4)
  np.testing.assert_allclose(ours, reference, atol=1e-5)
  assert 0.2 < reference.mean() < 0.95


def test_svg_ssim_is_one_for_identical_frames_and_reads_above_tf_ssim():
  truth, samples = _videos(seed=4, c=1, size=32)
  same = image_metrics.ssim_svg_per_frame(truth, truth[:, None]).numpy()
  np.testing.assert_allclose(same, 1.0, atol=1e-5)
  near = np.clip(truth[:, None] + 0.2 * (samples - 0.5), 0, 1)
  svg = image_metrics.ssim_svg_per_frame(truth, near).numpy()
  tf_ssim = image_metrics.ssim_per_frame(truth, near).numpy()
  # L = 2 quadruples the stabilising constants: SVG's SSIM reads higher.
  assert svg.mean() > tf_ssim.mean()
