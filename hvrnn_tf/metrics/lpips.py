"""LPIPS v0.1 (VGG) in TensorFlow: Zhang et al., "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.

The metric needs two files from the official PyTorch releases, read without
torch by `torch_weights.load_state_dict` (a converted ``.npz`` works too):

- the linear calibration weights, ``lpips/weights/v0.1/vgg.pth`` of
  github.com/richzhang/PerceptualSimilarity (also inside the ``lpips`` pip
  wheel); keys ``lin{0..4}.model.1.weight`` of shape [1, C_l, 1, 1];
- the torchvision VGG16 ImageNet weights they were calibrated on,
  ``vgg16-397923af.pth``; keys ``features.{i}.weight`` / ``.bias``.

The backbone is keras.applications.VGG16 with those torchvision weights. Keras'
own ImageNet VGG16 weights are a different network (ported from Caffe): its
channels do not line up with the calibration weights, so using it would not be
LPIPS. Images [0, 1] are mapped to [-1, 1], then LPIPS's scaling layer
(x - shift) / scale; features relu{1_2,2_2,3_3,4_3,5_3} are unit-normalised
over channels, their squared differences weighted per channel, averaged over
space and summed over the five layers.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from hvrnn_tf.metrics import image_metrics
from hvrnn_tf.metrics import torch_weights

LIN_WEIGHTS_URL = ("https://github.com/richzhang/PerceptualSimilarity/raw/"
                   "master/lpips/weights/v0.1/vgg.pth")
VGG16_WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# Keras VGG16 layers giving relu1_2 ... relu5_3, and their channels.
_TAPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
         "block5_conv3")
_TAP_CHANNELS = (64, 128, 256, 512, 512)
# torchvision vgg16.features indices of the 13 convolutions, in order.
_TORCH_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_EPS = 1e-10
MIN_SIZE = 16  # four 2x2 poolings before relu5_3


def _vgg16_kernels(vgg_state):
  """torchvision ``features.*`` arrays -> Keras [kernel, bias] list."""
  weights = []
  for i in _TORCH_CONVS:
    for suffix in ("weight", "bias"):
      if f"features.{i}.{suffix}" not in vgg_state:
        raise ValueError(f"VGG16 weights lack 'features.{i}.{suffix}': not a "
                         "torchvision vgg16 state_dict")
    kernel = np.asarray(vgg_state[f"features.{i}.weight"], np.float32)
    weights += [kernel.transpose(2, 3, 1, 0),  # [out, in, kh, kw] -> HWIO
                np.asarray(vgg_state[f"features.{i}.bias"], np.float32)]
  return weights


def _lin_weights(lin_state):
  """LPIPS ``lin{l}.model.1.weight`` [1, C_l, 1, 1] -> five [C_l] arrays."""
  weights = []
  for l, channels in enumerate(_TAP_CHANNELS):
    key = f"lin{l}.model.1.weight"
    if key not in lin_state:
      raise ValueError(f"LPIPS weights lack {key!r}: expected the v0.1 VGG "
                       f"release (keys: {sorted(lin_state)})")
    w = np.asarray(lin_state[key], np.float32).reshape(-1)
    if w.shape != (channels,):
      raise ValueError(f"{key} has {w.size} channels, VGG16 has {channels}: "
                       "these are not VGG LPIPS weights")
    weights.append(w)
  return weights


class LPIPS:
  """LPIPS-VGG distance between images in [0, 1] (lower = more similar)."""

  def __init__(self, lin_state, vgg_state):
    """Args: the two state_dicts (name -> array, PyTorch layout) above."""
    self._lin = [tf.constant(w) for w in _lin_weights(lin_state)]
    vgg = keras.applications.VGG16(include_top=False, weights=None,
                                   input_shape=(None, None, 3))
    vgg.set_weights(_vgg16_kernels(vgg_state))
    self._net = keras.Model(vgg.input,
                            [vgg.get_layer(name).output for name in _TAPS])
    self._features = tf.function(self._features_impl, reduce_retracing=True)

  def _features_impl(self, images):
    x = (images * 2.0 - 1.0 - _SHIFT) / _SCALE
    return [f / (tf.sqrt(tf.reduce_sum(f * f, -1, keepdims=True)) + _EPS)
            for f in self._net(x, training=False)]

  def features(self, images):
    """Unit-normalised features of images [N, H, W, C] (C = 1 or 3).

    Returns five tensors [N, H_l, W_l, C_l]. Grey images are repeated to RGB.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"images must be [N, H, W, 1 or 3], got {images.shape}")
    if min(images.shape[1:3]) < MIN_SIZE:
      raise ValueError(f"LPIPS-VGG needs images of at least {MIN_SIZE}x"
                       f"{MIN_SIZE}, got {images.shape[1:3]}")
    if images.shape[-1] == 1:
      images = tf.repeat(images, 3, axis=-1)
    return self._features(images)

  def distance_from_features(self, features0, features1) -> tf.Tensor:
    """LPIPS from two lists of `features` (broadcastable batches). [N]."""
    return tf.add_n([
        tf.reduce_mean(tf.reduce_sum((f0 - f1)**2 * w, -1), axis=[1, 2])
        for f0, f1, w in zip(features0, features1, self._lin)])

  def __call__(self, images0, images1) -> tf.Tensor:
    """LPIPS between images [N, H, W, C] and [N, H, W, C] in [0, 1]. [N]."""
    return self.distance_from_features(self.features(images0),
                                       self.features(images1))

  def per_frame(self, truth, samples) -> tf.Tensor:
    """LPIPS of every sampled frame: truth [B, T, H, W, C], samples
    [B, N, T, H, W, C] in [0, 1] -> [B, N, T].

    The truth features are computed once; samples go through VGG one sample
    index at a time ([B * T] images per call) to bound memory.
    """
    truth, samples = image_metrics.check_video_pair(truth, samples)
    b, n, t = samples.shape[:3]
    frame = samples.shape[3:]
    truth_features = self.features(tf.reshape(truth, [b * t, *frame]))
    distances = [
        self.distance_from_features(
            truth_features,
            self.features(tf.reshape(samples[:, i], [b * t, *frame])))
        for i in range(n)]
    return tf.transpose(tf.reshape(tf.stack(distances), [n, b, t]), [1, 0, 2])


def _local_file(path_or_url: str, cache_subdir: str) -> str:
  """A local path for `path_or_url`, downloading URLs into the Keras cache."""
  if path_or_url.startswith(("http://", "https://")):
    return keras.utils.get_file(os.path.basename(path_or_url), path_or_url,
                                cache_subdir=cache_subdir)
  return path_or_url


def load_lpips(lin_weights: str = LIN_WEIGHTS_URL,
               vgg_weights: str = VGG16_WEIGHTS_URL) -> LPIPS:
  """LPIPS from weight files (paths or URLs; ``.pth`` or ``.npz``).

  URLs are downloaded once into ~/.keras/lpips. Raises an error naming the file
  when a file is missing, cannot be downloaded, or holds the wrong weights.
  """
  lin = torch_weights.load_state_dict(_local_file(lin_weights, "lpips"))
  vgg = torch_weights.load_state_dict(_local_file(vgg_weights, "lpips"))
  return LPIPS(lin, vgg)
