"""PyTorch's default initialisation (the release's) and Keras's."""

import json
import os

import keras
import numpy as np

from hvrnn_tf.model import initialization
from hvrnn_tf.model import release_weights
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN

# Per-tensor statistics of a freshly built release model (s2s_big_hier_v4 at
# n_hid 16, 1 channel, 5 context frames), written by `python -m bench.parity`.
STATS = os.path.join(
  os.path.dirname(__file__), "data", "release_init_stats.json"
)
# Below this size a tensor's sample std strays by more than a percent or so.
MIN_ELEMENTS = 2048


def _model(scheme):
  keras.utils.set_random_seed(0)
  n = 16
  model = HierarchicalVRNN(
    ModelConfig(
      channels=1,
      context_frames=5,
      n_hid=n,
      latent_channels=(8 * n, 8 * n, 2 * n),
      release_group_counts=True,
      initialization=scheme,
    )
  )
  model.initialize()
  return model


def _std_ratios(model):
  """{release name: our std / the release's} over tensors of MIN_ELEMENTS+."""
  with open(STATS) as f:
    release = json.load(f)
  ratios = {}
  for name, targets in release_weights.mapping(model).items():
    if np.prod(release[name]["shape"]) < MIN_ELEMENTS:
      continue
    values = np.concatenate([np.ravel(t.variable.numpy()) for t in targets])
    ratios[name] = values.std() / release[name]["std"]
  return ratios


def test_pytorch_init_matches_the_releases_per_tensor_std():
  ratios = _std_ratios(_model("pytorch"))
  assert len(ratios) > 80
  off = {k: r for k, r in ratios.items() if abs(r - 1) > 0.05}
  assert not off


def test_keras_init_does_not():
  ratios = _std_ratios(_model("keras"))
  assert sum(abs(r - 1) > 0.05 for r in ratios.values()) > len(ratios) / 2


def test_biases_and_the_split_convlstm_use_pytorchs_fan_in():
  model = _model("pytorch")
  lstm = model.decoder.stages[0]  # plain: the release's conv over concat(x, h)
  fan_in = 9 * (lstm.input_conv.kernel.shape[2] + lstm.filters)
  bound = initialization.torch_bound(fan_in)
  for variable in (lstm.input_conv.kernel, lstm.hidden_conv.kernel):
    values = np.abs(variable.numpy())
    assert values.max() <= bound and values.max() > 0.99 * bound
  up = model.decoder.upsamplers[1].conv  # transposed: fan_in = out * k * k
  bias = np.abs(up.bias.numpy())
  bound = initialization.torch_bound(16 * up.filters)
  assert bias.max() <= bound and bias.max() > 0.9 * bound


def test_group_norms_and_latent_heads_keep_their_init():
  model = _model("pytorch")
  head = model.latents.networks["prior"][1].head_norm
  assert not head.gamma.numpy().any()
  assert 0 < head.beta.numpy().std() < 1e-2
  norm = model.encoder.stages[0][0].norm1
  np.testing.assert_array_equal(norm.gamma.numpy(), 1.0)
  np.testing.assert_array_equal(norm.beta.numpy(), 0.0)
