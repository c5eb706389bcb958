"""Fréchet Video Distance (Unterthiner et al., 2018) with I3D from TF-Hub.

Follows the reference FVD code: frames bilinearly resized to 224x224 (TF1
``resize_bilinear``, no half-pixel centres), values mapped to [-1, 1], the
400 Kinetics logits of I3D as features, and the Fréchet distance between
Gaussians fitted to the two feature sets, here in float64 with
``scipy.linalg.sqrtm``. Unlike the reference (batches of exactly 16) any
number of videos is accepted: the last I3D batch is padded.

Offline use: pass a local directory holding the I3D module (a copy of the
TF-Hub download, or of ``$TFHUB_CACHE_DIR/<hash>``) as the handle.
"""

import numpy as np
import scipy.linalg
import tensorflow as tf
import tensorflow_hub as hub

I3D_HANDLE = "https://tfhub.dev/deepmind/i3d-kinetics-400/1"
I3D_SIZE = 224
I3D_BATCH_SIZE = 16


def preprocess(videos) -> tf.Tensor:
  """Videos [B, T, H, W, C] in [0, 1] (C = 1 or 3) -> [B, T, 224, 224, 3]
  in [-1, 1], resized as the reference FVD code does."""
  videos = tf.convert_to_tensor(videos, tf.float32)
  if videos.shape.rank != 5 or videos.shape[-1] not in (1, 3):
    raise ValueError(f"videos must be [B, T, H, W, 1 or 3], got {videos.shape}")
  b, t, h, w, c = videos.shape
  frames = tf.raw_ops.ResizeBilinear(
    images=tf.reshape(videos, [b * t, h, w, c]),
    size=[I3D_SIZE, I3D_SIZE],
    align_corners=False,
    half_pixel_centers=False,
  )
  if c == 1:
    frames = tf.repeat(frames, 3, axis=-1)
  return tf.reshape(frames * 2.0 - 1.0, [b, t, I3D_SIZE, I3D_SIZE, 3])


class I3DFeatures:
  """I3D logits of videos, loaded from a TF-Hub handle or SavedModel dir.

  The module must have a "default" signature mapping float32
  [B, T, 224, 224, 3] in [-1, 1] to {"default": [B, 400]}, as
  deepmind/i3d-kinetics-400/1 does.
  """

  def __init__(
    self, handle: str = I3D_HANDLE, batch_size: int = I3D_BATCH_SIZE
  ):
    module = hub.load(handle)
    if "default" not in module.signatures:
      raise ValueError(
        f"{handle}: no 'default' signature; expected the I3D "
        "interface [B, T, 224, 224, 3] -> {'default': [B, 400]}"
      )
    self._signature = module.signatures["default"]
    self._module = module  # keeps the signature's variables alive
    self.batch_size = batch_size

  def __call__(self, videos) -> np.ndarray:
    """Videos [B, T, H, W, C] in [0, 1], B >= 1 -> float64 features [B, D].

    Resizing happens per I3D batch, so memory does not grow with B.
    """
    videos = tf.convert_to_tensor(videos, tf.float32)
    if videos.shape.rank != 5 or videos.shape[0] == 0:
      raise ValueError(
        f"videos must be [B, T, H, W, C], B >= 1, got {videos.shape}"
      )
    features = []
    for start in range(0, videos.shape[0], self.batch_size):
      batch = videos[start : start + self.batch_size]
      num = batch.shape[0]
      if num < self.batch_size:
        batch = tf.concat(
          [batch, tf.zeros([self.batch_size - num, *batch.shape[1:]])], 0
        )
      features.append(
        self._signature(preprocess(batch))["default"][:num].numpy()
      )
    return np.concatenate(features).astype(np.float64)


def fit_gaussian(features):
  """features [N, D] (N >= 2) -> float64 (mean [D], covariance [D, D])."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(
      f"need features [N, D] with N >= 2 to fit a Gaussian, got "
      f"{features.shape}"
    )
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
  """||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) for two Gaussians."""
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  if (
    mean1.shape != mean2.shape
    or cov1.shape != cov2.shape
    or cov1.shape != (mean1.size, mean1.size)
  ):
    raise ValueError(
      f"mismatched Gaussians: means {mean1.shape}, "
      f"{mean2.shape}; covariances {cov1.shape}, {cov2.shape}"
    )
  covmean = scipy.linalg.sqrtm(cov1 @ cov2)
  if not np.isfinite(covmean).all():
    raise ValueError("sqrtm(C1 C2) is not finite: degenerate covariances")
  # The product of two PSD matrices has real eigenvalues; drop round-off.
  trace = np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean).real
  return float(np.sum((mean1 - mean2) ** 2) + trace)


def fvd(real_features, generated_features) -> float:
  """FVD between two feature sets [N1, D] and [N2, D]."""
  return frechet_distance(
    *fit_gaussian(real_features), *fit_gaussian(generated_features)
  )
