"""LPIPS v0.1 (AlexNet or VGG) in TensorFlow: Zhang et al., "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.

Each net needs two files from the official PyTorch releases (URLs in `NETS`),
read without torch by `torch_weights.load_state_dict` (a converted ``.npz``
works too):

- the linear calibration weights, ``lpips/weights/v0.1/{alex,vgg}.pth`` of
  github.com/richzhang/PerceptualSimilarity (also inside the ``lpips`` pip
  wheel); keys ``lin{0..4}.model.1.weight`` of shape [1, C_l, 1, 1];
- the torchvision ImageNet weights they were calibrated on,
  ``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``; keys
  ``features.{i}.weight`` / ``.bias``.

'alex' (used by SAVP and most video-prediction papers) rebuilds torchvision's
``alexnet.features`` with PyTorch's explicit symmetric padding, so feature maps
have PyTorch's sizes. 'vgg' is keras.applications.VGG16 with the torchvision
weights: Keras' own ImageNet VGG16 weights are a different network (ported from
Caffe) whose channels do not line up with the calibration weights. Images
[0, 1] are mapped to [-1, 1], then LPIPS's scaling layer (x - shift) / scale;
the five tapped ReLU outputs (alex relu1..relu5, vgg relu{1_2,2_2,3_3,4_3,5_3})
are unit-normalised over channels, their squared differences weighted per
channel, averaged over space and summed over the five layers.
"""

from collections.abc import Callable
import os
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from hvrnn_tf.evaluation.metrics import image_metrics
from hvrnn_tf.evaluation.metrics import torch_weights

_LIN_URL = (
  "https://github.com/richzhang/PerceptualSimilarity/raw/master/"
  "lpips/weights/v0.1/{}.pth"
)
LIN_WEIGHTS_URL = _LIN_URL.format("vgg")
VGG16_WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
ALEX_LIN_WEIGHTS_URL = _LIN_URL.format("alex")
ALEXNET_WEIGHTS_URL = (
  "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
)

_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
_EPS = 1e-10
# Keras VGG16 layers giving relu1_2 ... relu5_3.
_VGG_TAPS = (
  "block1_conv2",
  "block2_conv2",
  "block3_conv3",
  "block4_conv3",
  "block5_conv3",
)
# torchvision vgg16.features indices of the 13 convolutions, in order.
_VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# torchvision alexnet.features convolutions: index -> (out, kernel, stride,
# padding); a 3x3 stride-2 max pool precedes the second and third.
_ALEX_CONVS = {
  0: (64, 11, 4, 2),
  3: (192, 5, 1, 2),
  6: (384, 3, 1, 1),
  8: (256, 3, 1, 1),
  10: (256, 3, 1, 1),
}


def _load_convs(convs, state, indices, title):
  """Sets Keras Conv2D layers `convs` from torchvision ``features.{i}``."""
  for conv, i in zip(convs, indices):
    arrays = []
    for suffix in ("weight", "bias"):
      if f"features.{i}.{suffix}" not in state:
        raise ValueError(
          f"{title} weights lack 'features.{i}.{suffix}': not "
          f"a torchvision {title} state_dict"
        )
      arrays.append(np.asarray(state[f"features.{i}.{suffix}"], np.float32))
    kh, kw, cin, cout = conv.kernel.shape
    expected = (cout, cin, kh, kw)
    if arrays[0].shape != expected:
      raise ValueError(
        f"features.{i}.weight has shape {arrays[0].shape}, "
        f"{title} expects {expected}: not {title} weights"
      )
    # [out, in, kh, kw] -> HWIO.
    conv.set_weights([arrays[0].transpose(2, 3, 1, 0), arrays[1]])


def _vgg16(state):
  """Keras model of VGG16's relu{1_2,...,5_3} with torchvision weights."""
  vgg = keras.applications.VGG16(
    include_top=False, weights=None, input_shape=(None, None, 3)
  )
  convs = [c for c in vgg.layers if isinstance(c, keras.layers.Conv2D)]
  _load_convs(convs, state, _VGG_CONVS, "VGG16")
  return keras.Model(vgg.input, [vgg.get_layer(n).output for n in _VGG_TAPS])


def _alexnet(state):
  """Keras model of torchvision AlexNet's relu1...relu5 with its weights."""
  x = inputs = keras.Input((None, None, 3))
  convs, taps = [], []
  for i, (filters, kernel, stride, padding) in enumerate(_ALEX_CONVS.values()):
    if i in (1, 2):
      x = keras.layers.MaxPooling2D(3, 2)(x)
    x = keras.layers.ZeroPadding2D(padding)(x)
    convs.append(
      keras.layers.Conv2D(filters, kernel, stride, activation="relu")
    )
    x = convs[-1](x)
    taps.append(x)
  model = keras.Model(inputs, taps)
  _load_convs(convs, state, _ALEX_CONVS, "AlexNet")
  return model


class Net(NamedTuple):
  """One LPIPS backbone: its weight URLs, taps and input limits."""

  title: str
  lin_url: str
  backbone_url: str
  channels: tuple  # of the five tapped ReLUs
  min_size: int  # smallest image side giving a relu5 map
  build: Callable  # torchvision state_dict -> Keras model of the five ReLUs


NETS = {
  # conv1 (k11 s4 p2) and two 3x3 s2 pools: relu5 is 1x1 at 31x31.
  "alex": Net(
    "AlexNet",
    ALEX_LIN_WEIGHTS_URL,
    ALEXNET_WEIGHTS_URL,
    (64, 192, 384, 256, 256),
    31,
    _alexnet,
  ),
  # Four 2x2 poolings before relu5_3.
  "vgg": Net(
    "VGG",
    LIN_WEIGHTS_URL,
    VGG16_WEIGHTS_URL,
    (64, 128, 256, 512, 512),
    16,
    _vgg16,
  ),
}


def _net(net: str) -> Net:
  """The `NETS` entry of `net`, or an error naming the known nets."""
  if net not in NETS:
    raise ValueError(
      f"unknown LPIPS net {net!r}; expected one of {sorted(NETS)}"
    )
  return NETS[net]


def _lin_weights(lin_state, spec):
  """LPIPS ``lin{l}.model.1.weight`` [1, C_l, 1, 1] -> five [C_l] arrays."""
  weights = []
  for level, channels in enumerate(spec.channels):
    key = f"lin{level}.model.1.weight"
    if key not in lin_state:
      raise ValueError(
        f"LPIPS weights lack {key!r}: expected the v0.1 "
        f"{spec.title} release (keys: {sorted(lin_state)})"
      )
    w = np.asarray(lin_state[key], np.float32).reshape(-1)
    if w.shape != (channels,):
      raise ValueError(
        f"{key} has {w.size} channels, {spec.title} has "
        f"{channels}: these are not {spec.title} LPIPS weights"
      )
    weights.append(w)
  return weights


class LPIPS:
  """LPIPS distance between images in [0, 1] (lower = more similar)."""

  def __init__(self, lin_state, backbone_state, net: str = "vgg"):
    """Args: the two state_dicts (name -> array, PyTorch layout) of `net`."""
    self.net = net
    self._spec = _net(net)
    self._lin = [tf.constant(w) for w in _lin_weights(lin_state, self._spec)]
    self._backbone = self._spec.build(backbone_state)
    self._features = tf.function(self._features_impl, reduce_retracing=True)

  def _features_impl(self, images):
    x = (images * 2.0 - 1.0 - _SHIFT) / _SCALE
    return [
      f / (tf.sqrt(tf.reduce_sum(f * f, -1, keepdims=True)) + _EPS)
      for f in self._backbone(x, training=False)
    ]

  def features(self, images):
    """Unit-normalised features of images [N, H, W, C] (C = 1 or 3).

    Returns five tensors [N, H_l, W_l, C_l]. Grey images are repeated to RGB.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"images must be [N, H, W, 1 or 3], got {images.shape}")
    size = self._spec.min_size
    if min(images.shape[1:3]) < size:
      raise ValueError(
        f"LPIPS-{self._spec.title} needs images of at least "
        f"{size}x{size}, got {images.shape[1:3]}"
      )
    if images.shape[-1] == 1:
      images = tf.repeat(images, 3, axis=-1)
    return self._features(images)

  def distance_from_features(self, features0, features1) -> tf.Tensor:
    """LPIPS from two lists of `features` (broadcastable batches). [N]."""
    return tf.add_n(
      [
        tf.reduce_mean(tf.reduce_sum((f0 - f1) ** 2 * w, -1), axis=[1, 2])
        for f0, f1, w in zip(features0, features1, self._lin)
      ]
    )

  def __call__(self, images0, images1) -> tf.Tensor:
    """LPIPS between images [N, H, W, C] and [N, H, W, C] in [0, 1]. [N]."""
    return self.distance_from_features(
      self.features(images0), self.features(images1)
    )

  def per_frame(self, truth, samples) -> tf.Tensor:
    """LPIPS of every sampled frame: truth [B, T, H, W, C], samples
    [B, N, T, H, W, C] in [0, 1] -> [B, N, T].

    The truth features are computed once; samples go through the backbone one
    sample index at a time ([B * T] images per call) to bound memory.
    """
    truth, samples = image_metrics.check_video_pair(truth, samples)
    b, n, t = samples.shape[:3]
    frame = samples.shape[3:]
    truth_features = self.features(tf.reshape(truth, [b * t, *frame]))
    distances = [
      self.distance_from_features(
        truth_features,
        self.features(tf.reshape(samples[:, i], [b * t, *frame])),
      )
      for i in range(n)
    ]
    return tf.transpose(tf.reshape(tf.stack(distances), [n, b, t]), [1, 0, 2])


def _local_file(path_or_url: str, cache_subdir: str) -> str:
  """A local path for `path_or_url`, downloading URLs into the Keras cache."""
  if path_or_url.startswith(("http://", "https://")):
    return keras.utils.get_file(
      os.path.basename(path_or_url), path_or_url, cache_subdir=cache_subdir
    )
  return path_or_url


def weight_files(
  net: str, lin_weights: str | None = None, backbone_weights: str | None = None
) -> tuple[str, str]:
  """(calibration, backbone) weight paths or URLs; None: `net`'s official."""
  spec = _net(net)
  return lin_weights or spec.lin_url, backbone_weights or spec.backbone_url


def load_lpips(
  lin_weights: str | None = None,
  backbone_weights: str | None = None,
  net: str = "vgg",
) -> LPIPS:
  """LPIPS-`net` ('alex' or 'vgg') from weight files (paths or URLs; ``.pth``
  or ``.npz``); None means the official URL of `net` (`NETS`).

  URLs are downloaded once into ~/.keras/lpips. Raises an error naming the file
  when a file is missing, cannot be downloaded, or holds the wrong weights.
  """
  lin_file, backbone_file = weight_files(net, lin_weights, backbone_weights)
  lin = torch_weights.load_state_dict(_local_file(lin_file, "lpips"))
  backbone = torch_weights.load_state_dict(_local_file(backbone_file, "lpips"))
  return LPIPS(lin, backbone, net)
