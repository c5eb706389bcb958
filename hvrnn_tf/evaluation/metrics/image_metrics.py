"""Per-frame SSIM and PSNR of sampled futures against the ground truth.

Shapes: truth [B, T, H, W, C], samples [B, N, T, H, W, C], both float in
[0, 1] (N samples per sequence); results [B, N, T].

Two SSIMs: `ssim_per_frame` is tf.image.ssim (Gaussian 11x11 window, sigma
1.5, dynamic range 1), as SAVP and most video-prediction papers report;
`ssim_svg_per_frame` is what SVG's released evaluation computes (scikit-image
0.14's `compare_ssim` with its defaults on float frames: 7x7 uniform window,
sample covariance, dynamic range 2), about 0.05 higher on the same frames.
The paper's SM-MNIST table follows SVG's procedure.
"""

import tensorflow as tf


def check_video_pair(truth, samples):
  """Validates and returns (truth, samples) as float32 tensors.

  Raises:
    ValueError: ranks are not 5 / 6, or frame shapes / B / T differ.
  """
  truth = tf.convert_to_tensor(truth, tf.float32)
  samples = tf.convert_to_tensor(samples, tf.float32)
  if truth.shape.rank != 5 or samples.shape.rank != 6:
    raise ValueError(
      "expected truth [B, T, H, W, C] and samples [B, N, T, H, W, C], got "
      f"shapes {truth.shape} and {samples.shape}"
    )
  if truth.shape[0] != samples.shape[0] or truth.shape[1:] != samples.shape[2:]:
    raise ValueError(
      f"truth {truth.shape} and samples {samples.shape} disagree on B, T or "
      "frame shape"
    )
  return truth, samples


def ssim_per_frame(truth, samples, filter_size: int = 11) -> tf.Tensor:
  """SSIM of every sampled frame (tf.image.ssim, Gaussian 11x11, sigma 1.5).

  Frames must be at least `filter_size` pixels on each side. Returns [B, N, T].
  """
  truth, samples = check_video_pair(truth, samples)
  if min(truth.shape[2:4]) < filter_size:
    raise ValueError(
      f"SSIM needs frames of at least {filter_size}x"
      f"{filter_size}, got {truth.shape[2:4]}"
    )
  return tf.image.ssim(
    truth[:, None], samples, max_val=1.0, filter_size=filter_size
  )


SVG_WINDOW = 7
SVG_DATA_RANGE = 2.0  # scikit-image's default for float images: -1 .. 1.


def ssim_svg_per_frame(truth, samples) -> tf.Tensor:
  """SSIM as SVG's evaluation computes it (see the module docstring). [B, N, T].

  Per channel: local means and sample (co)variances over a uniform 7x7 window,
  SSIM with K1 = 0.01, K2 = 0.03, L = 2, averaged over the window positions
  that fit in the frame (scikit-image's 3-pixel border crop) and the channels.
  """
  truth, samples = check_video_pair(truth, samples)
  if min(truth.shape[2:4]) < SVG_WINDOW:
    raise ValueError(
      f"SSIM needs frames of at least {SVG_WINDOW}x"
      f"{SVG_WINDOW}, got {truth.shape[2:4]}"
    )
  x = tf.broadcast_to(truth[:, None], tf.shape(samples))
  frame = tf.shape(samples)[-3:]
  x, y = (tf.reshape(v, tf.concat([[-1], frame], 0)) for v in (x, samples))
  mean = lambda v: tf.nn.avg_pool2d(v, SVG_WINDOW, 1, "VALID")
  mu_x, mu_y = mean(x), mean(y)
  n = SVG_WINDOW**2
  unbias = n / (n - 1)
  var_x = unbias * (mean(x * x) - mu_x * mu_x)
  var_y = unbias * (mean(y * y) - mu_y * mu_y)
  cov = unbias * (mean(x * y) - mu_x * mu_y)
  c1, c2 = (0.01 * SVG_DATA_RANGE) ** 2, (0.03 * SVG_DATA_RANGE) ** 2
  ssim_map = (
    (2 * mu_x * mu_y + c1)
    * (2 * cov + c2)
    / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
  )
  return tf.reshape(tf.reduce_mean(ssim_map, [1, 2, 3]), tf.shape(samples)[:3])


def psnr_per_frame(truth, samples) -> tf.Tensor:
  """PSNR in dB of every sampled frame (+inf for an exact match). [B, N, T]."""
  truth, samples = check_video_pair(truth, samples)
  return tf.image.psnr(truth[:, None], samples, max_val=1.0)
