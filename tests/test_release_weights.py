"""The release's state-dict layout against our variables (no torch needed).

tests/data/release_manifest_<model>.json: the names and shapes of the
release's state dicts at the paper's width (RGB, 2 context frames),
written by
  python bench/parity_torch_driver.py manifest --release_dir=runs/improved_vrnn \
      --image_size={64,128} --channels=3 --context_frames=2 --n_hid=64 \
      --out=tests/data/release_manifest_{s2s_big_hier_v4,s2s_big_hier_128}.json
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model import release_weights
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.utils import gin_parsing

DATA = os.path.join(os.path.dirname(__file__), "data")


def _manifest(model_name):
  with open(os.path.join(DATA, f"release_manifest_{model_name}.json")) as f:
    return json.load(f)


def _gin_model(gin_file):
  gin_parsing.parse_gin([gin_file], skip_unknown=True)
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  return model


@pytest.mark.parametrize(
  "gin_file, release_model",
  [("bair.gin", "s2s_big_hier_v4"), ("cityscapes.gin", "s2s_big_hier_128")],
)
def test_every_release_tensor_but_the_unused_module_fills_one_variable(
  gin_file, release_model
):
  model = _gin_model(gin_file)
  release = _manifest(release_model)
  used = {
    k: v
    for k, v in release.items()
    if not k.startswith(release_weights.UNUSED_PREFIX)
  }
  assert release_weights.manifest(model) == used
  targets = [
    t.variable for ts in release_weights.mapping(model).values() for t in ts
  ]
  assert len({id(v) for v in targets}) == len(targets)
  assert {id(v) for v in targets} == {id(v) for v in model.trainable_variables}


def _state_for(model, seed=0):
  """A random state dict in the release's layout for `model`."""
  rng = np.random.default_rng(seed)
  state = {
    k: rng.standard_normal(s).astype(np.float32)
    for k, s in release_weights.manifest(model).items()
  }
  state["det_init_net.1.model.weight"] = np.zeros((4, 4, 1, 1), np.float32)
  return state


def _small_model(tiny_config):
  model = HierarchicalVRNN(tiny_config(release_group_counts=False))
  model.initialize()
  return model


def test_assign_lays_out_convolutions_and_splits_the_plain_convlstm(
  tiny_config,
):
  model = _small_model(tiny_config)
  state = _state_for(model)
  skipped = release_weights.assign(
    model, {f"module.{k}": v for k, v in state.items()}
  )
  assert skipped == ["det_init_net.1.model.weight"]
  stem = state["emb_net.0.weight"]  # [out, in, 1, 1]
  np.testing.assert_array_equal(
    model.encoder.stem.kernel.numpy(), stem.transpose(2, 3, 1, 0)
  )
  lstm = model.decoder.stages[0]  # plain ConvLSTM over concat(x, h)
  gates = state["render_net.0.model.gates.weight"]
  inputs = lstm.input_conv.kernel.shape[2]
  np.testing.assert_array_equal(
    lstm.hidden_conv.kernel.numpy(), gates[:, inputs:].transpose(2, 3, 1, 0)
  )
  up = model.decoder.upsamplers[0].conv  # ConvTranspose2d: [in, out, k, k]
  np.testing.assert_array_equal(
    up.kernel.numpy(),
    state["render_net.1.main.0.weight"].transpose(2, 3, 1, 0),
  )


def test_keras_layout_slices_input_channels_then_transposes():
  value = np.arange(4 * 5 * 3 * 3, dtype=np.float32).reshape(4, 5, 3, 3)
  first = release_weights.Target(object(), slice(0, 2))
  rest = release_weights.Target(object(), slice(2, None))
  a, b = release_weights.keras_layout([first, rest], value)
  np.testing.assert_array_equal(a, value[:, :2].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(b, value[:, 2:].transpose(2, 3, 1, 0))
  (bias,) = release_weights.keras_layout(
    [release_weights.Target(None)], value[0, 0, 0]
  )
  np.testing.assert_array_equal(bias, value[0, 0, 0])


def test_a_transposed_convolution_computes_pytorchs_after_assign():
  """ConvTranspose2d(4, 2, 1) as the release has it, in numpy, against ours."""
  from hvrnn_tf.model import layers  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(1)
  x = rng.standard_normal((1, 3, 3, 2)).astype(np.float32)
  weight = rng.standard_normal((2, 5, 4, 4)).astype(np.float32)  # [in, out]
  up = layers.DcUpConv(5)
  up(tf.constant(x))
  up.conv.kernel.assign(weight.transpose(2, 3, 1, 0))
  up.conv.bias.assign(np.zeros(5, np.float32))
  full = np.zeros((1, 8, 8, 5), np.float32)  # stride 2 scatter, then crop 1
  for i in range(3):
    for j in range(3):
      full[0, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += np.einsum(
        "c,cokl->klo", x[0, i, j], weight
      )
  np.testing.assert_allclose(
    up.conv(tf.constant(x)).numpy(), full[:, 1:7, 1:7], rtol=1e-5, atol=1e-5
  )


@pytest.mark.parametrize(
  "edit, named",
  [
    (lambda s: s.pop("emb_net.0.bias"), "emb_net.0.bias"),
    (
      lambda s: s.update(
        {"render_net.0.model.gates.bias": np.zeros(3, np.float32)}
      ),
      "render_net.0.model.gates.bias",
    ),
    (lambda s: s.update({"extra.weight": np.zeros(1)}), "extra.weight"),
  ],
)
def test_a_mismatch_names_the_tensor_and_changes_nothing(
  tiny_config, edit, named
):
  model = _small_model(tiny_config)
  before = [v.numpy() for v in model.trainable_variables]
  state = _state_for(model)
  edit(state)
  with pytest.raises(release_weights.ConversionError, match=named):
    release_weights.assign(model, state)
  for old, v in zip(before, model.trainable_variables):
    np.testing.assert_array_equal(old, v.numpy())


def test_encoder_indices_follow_the_releases_emb_net():
  gin_parsing.parse_gin(["bair.gin"], skip_unknown=True)
  config = ModelConfig()
  model = HierarchicalVRNN(config)
  last, blocks = release_weights.encoder_indices(model.encoder)
  assert last == {64: 1, 32: 4, 16: 7, 8: 10, 4: 13, 1: 16}
  assert [i for i, _ in blocks] == [1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16]
