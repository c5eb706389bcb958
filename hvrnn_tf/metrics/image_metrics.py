"""Per-frame SSIM and PSNR of sampled futures against the ground truth.

Shapes: truth [B, T, H, W, C], samples [B, N, T, H, W, C], both float in
[0, 1] (N samples per sequence); results [B, N, T].
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
        f"shapes {truth.shape} and {samples.shape}")
  if truth.shape[0] != samples.shape[0] or truth.shape[1:] != samples.shape[2:]:
    raise ValueError(
        f"truth {truth.shape} and samples {samples.shape} disagree on B, T or "
        "frame shape")
  return truth, samples


def ssim_per_frame(truth, samples, filter_size: int = 11) -> tf.Tensor:
  """SSIM of every sampled frame (tf.image.ssim, Gaussian 11x11, sigma 1.5).

  Frames must be at least `filter_size` pixels on each side. Returns [B, N, T].
  """
  truth, samples = check_video_pair(truth, samples)
  if min(truth.shape[2:4]) < filter_size:
    raise ValueError(f"SSIM needs frames of at least {filter_size}x"
                     f"{filter_size}, got {truth.shape[2:4]}")
  return tf.image.ssim(truth[:, None], samples, max_val=1.0,
                       filter_size=filter_size)


def psnr_per_frame(truth, samples) -> tf.Tensor:
  """PSNR in dB of every sampled frame (+inf for an exact match). [B, N, T]."""
  truth, samples = check_video_pair(truth, samples)
  return tf.image.psnr(truth[:, None], samples, max_val=1.0)
