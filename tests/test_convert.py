"""hvrnn_tf.convert: a release state dict -> a workdir train/eval/sample/export accept."""

import os
import sys

import numpy as np
import pytest

from hvrnn_tf import convert
from hvrnn_tf.model import release_weights
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.training import checkpointing
from hvrnn_tf.utils import gin_parsing

# The release's s2s_big_hier_v4 at n_hid 16 with SM-MNIST's 1 channel and
# 5 context frames: what smmnist.gin converts at that width.
N_HID = 16


def _release_state(seed=0):
  """A random state dict with the release's names and shapes (n_hid 16)."""
  model = HierarchicalVRNN(
    ModelConfig(
      channels=1,
      context_frames=5,
      n_hid=N_HID,
      latent_channels=(128, 128, 32),
      release_group_counts=True,
    )
  )
  model.initialize()
  rng = np.random.default_rng(seed)
  return {
    f"module.{k}": 0.05 * rng.standard_normal(s).astype(np.float32)
    for k, s in release_weights.manifest(model).items()
  }


@pytest.fixture(scope="module")
def release_state():
  return _release_state()


def test_bindings_read_the_width_from_the_state_dict():
  gin_parsing.parse_gin(["smmnist.gin"], skip_unknown=True)
  state = {convert.STEM_KEY: np.zeros((24, 1, 1, 1))}
  assert convert.release_bindings(state) == [
    "model.ModelConfig.n_hid = 24",
    "model.ModelConfig.latent_channels = (192, 192, 48)",
    "model.ModelConfig.release_group_counts = True",
  ]
  with pytest.raises(release_weights.ConversionError, match=convert.STEM_KEY):
    convert.release_bindings({"other.weight": np.zeros(1)})


def test_converted_workdir_restores_with_the_release_weights(
  tmp_path, release_state
):
  workdir = str(tmp_path / "converted")
  path = convert.convert_state(release_state, workdir, ["smmnist.gin"])
  assert path.endswith("ckpt-0")
  assert sorted(os.listdir(tmp_path)) == ["converted"]  # no scratch left
  model, step = checkpointing.restore_model(workdir)
  assert step == 0
  assert model.config.n_hid == N_HID and model.config.release_group_counts
  stem = release_state["module.emb_net.0.weight"]
  np.testing.assert_array_equal(
    model.encoder.stem.kernel.numpy(), stem.transpose(2, 3, 1, 0)
  )


def test_a_state_dict_of_another_model_writes_nothing(tmp_path, release_state):
  workdir = tmp_path / "converted"
  # bair.gin: 3 channels and 2 context frames, not this state dict's 1 and 5.
  with pytest.raises(release_weights.ConversionError, match="emb_net.0.weight"):
    convert.convert_state(release_state, str(workdir), ["bair.gin"])
  assert not os.listdir(tmp_path)


def test_a_non_empty_workdir_is_refused(tmp_path, release_state):
  (tmp_path / "notes.txt").write_text("a run")
  with pytest.raises(FileExistsError, match="not empty"):
    convert.convert_state(release_state, str(tmp_path), ["smmnist.gin"])


def test_without_torch_one_line_says_how_to_install_it(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ImportError, match="pip install torch"):
    convert.load_state_dict(str(tmp_path / "model.pth"))


def test_a_truncated_pth_is_named(tmp_path, release_state):
  torch = pytest.importorskip(
    "torch", reason="reading .pth files needs torch (not a dependency)"
  )
  path = tmp_path / "model.pth"
  torch.save({k: torch.from_numpy(v) for k, v in release_state.items()}, path)
  state = convert.load_state_dict(str(path))
  assert set(state) == set(release_state)
  path.write_bytes(path.read_bytes()[:1000])
  with pytest.raises(ValueError, match="model.pth"):
    convert.load_state_dict(str(path))
