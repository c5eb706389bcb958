"""Weight initialisation: PyTorch's defaults (the release's) or Keras's.

Every result of the paper was trained from PyTorch's defaults, which the
release never overrides except in its latent heads:
  Conv2d, ConvTranspose2d: weight and bias uniform within +-1/sqrt(fan_in)
    (kaiming_uniform with a = sqrt(5) for the weight), fan_in computed from
    the weight as PyTorch lays it out: in * k * k for a convolution, but
    out * k * k for a transposed convolution ([in, out, k, k]);
  GroupNorm: scale 1, shift 0 (Keras's default too);
  latent heads' last GroupNorm: scale 0, shift ~ N(0, 1e-3) (set at
    construction in latents.py, under both schemes).
Keras's defaults (Glorot-uniform kernels, zero biases) give a 3x3 512 -> 512
convolution a bound of 0.0255 instead of 0.0147.

In Keras layout a kernel is [k, k, in, out] (convolution) or [k, k, out, in]
(transposed), so PyTorch's fan_in is the product of all dimensions but the
last in both. The plain ConvLSTM splits the release's one convolution over
concat(x, h) into two (convlstm.ConvLSTM); both halves take its fan_in.
"""

import math

import keras

from hvrnn_tf.model import convlstm

SCHEMES = ("pytorch", "keras")


def torch_bound(fan_in: int) -> float:
  """PyTorch's default weight and bias bound for a layer with `fan_in` inputs."""
  return 1.0 / math.sqrt(fan_in)


def _fan_in(conv) -> int:
  return math.prod(conv.kernel.shape[:-1])


def convolutions(root):
  """[(conv layer, PyTorch fan_in)] for every convolution under `root`."""
  found, shared = [], {}
  for layer in root._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
    if isinstance(layer, convlstm.ConvLSTM) and not layer.normalized:
      pair = (layer.input_conv, layer.hidden_conv)
      for conv in pair:
        shared[id(conv)] = sum(_fan_in(c) for c in pair)
    elif isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
      found.append((layer, shared.get(id(layer)) or _fan_in(layer)))
  return found


def initialize(root, scheme: str) -> None:
  """Re-draws `root`'s built convolutions' weights under `scheme`.

  "keras" keeps the weights Keras drew at build time. "pytorch" draws every
  kernel and bias from U(-b, b), b = 1/sqrt(fan_in), with Keras's global
  seed generator (keras.utils.set_random_seed makes it reproducible).
  """
  if scheme not in SCHEMES:
    raise ValueError(f"Unknown initialization {scheme!r}; expected {SCHEMES}")
  if scheme == "keras":
    return
  for conv, fan_in in convolutions(root):
    bound = torch_bound(fan_in)
    for variable in (conv.kernel, conv.bias):
      if variable is not None:
        variable.assign(
          keras.random.uniform(
            variable.shape, -bound, bound, dtype=variable.dtype
          )
        )
