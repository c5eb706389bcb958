"""Tests of loading a trained model back from a workdir."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.training import checkpointing
from hvrnn_tf.utils import gin_parsing


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_workdir):
  """(model, workdir): one make_workdir for the file's tests, in
  <base>/runs/a (test_relative_workdir_restores_from_any_directory)."""
  workdir = tmp_path_factory.mktemp("base") / "runs" / "a"
  workdir.mkdir(parents=True)
  return make_workdir(workdir), workdir


def test_restore_gives_the_same_model(saved):
  model, workdir = saved
  restored, step = checkpointing.restore_model(str(workdir))
  assert step == 7 and restored.config == model.config
  for a, b in zip(model.trainable_variables, restored.trainable_variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  context = tf.random.stateless_uniform([1, 2, 16, 16, 1], seed=[0, 0])
  np.testing.assert_allclose(
    model.sample(context, 2, 1, tf.constant([1, 1])),
    restored.sample(context, 2, 1, tf.constant([1, 1])),
    atol=1e-6,
  )


def test_missing_pieces_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="operative_config.gin"):
    checkpointing.restore_model(str(tmp_path))
  (tmp_path / checkpointing.OPERATIVE_CONFIG).write_text("")
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    checkpointing.restore_model(str(tmp_path))


def test_checkpoint_of_another_architecture_is_rejected(saved):
  with pytest.raises(ValueError, match="does not match the configured model"):
    checkpointing.restore_model(
      str(saved[1]), gin_params=["model.ModelConfig.n_hid = 8"]
    )


def test_bad_override_names_the_binding(saved):
  with pytest.raises(ValueError) as error:
    checkpointing.restore_model(
      str(saved[1]), gin_params=["model.ModelConfig.n_hidd = 8"]
    )
  assert str(error.value) == (
    "unknown gin parameter 'n_hidd' of 'model.ModelConfig' in binding "
    "model.ModelConfig.n_hidd = 8"
  )


@pytest.mark.parametrize(
  "binding,message",
  [
    ("no_such.x = 3", "unknown gin configurable 'no_such'"),
    (
      "model.ModelConfig.n_hid = @no_such()",
      "unknown gin configurable reference '@no_such()'",
    ),
    (
      "model.ModelConfig.n_hid = (3",
      "gin syntax error: EOF in multi-line "
      "statement (unclosed bracket or quote?)",
    ),
    (
      "model.ModelConfig.n_hid = three",
      "gin syntax error: Failed to parse token 'three'",
    ),
    (
      "model.ModelConfig.n_hid 3",
      "gin syntax error: Couldn't parse statement, expected ':' or '='",
    ),
  ],
)
def test_bad_gin_binding_is_one_line_naming_it(binding, message):
  with pytest.raises(ValueError) as error:
    gin_parsing.parse_gin([], ["model.ModelConfig.n_hid = 3", binding])
  assert str(error.value) == f"{message} in binding {binding}"


def test_bad_gin_file_line_is_named(tmp_path):
  config = tmp_path / "bad.gin"
  config.write_text(
    "model.ModelConfig.n_hid = 3\nmodel.ModelConfig.n_hidd = 4\n"
  )
  with pytest.raises(ValueError) as error:
    gin_parsing.parse_gin([str(config)])
  assert str(error.value) == (
    f"unknown gin parameter 'n_hidd' of 'model.ModelConfig' in {config} "
    "line 2: model.ModelConfig.n_hidd = 4"
  )
  with pytest.raises(
    ValueError,
    match=r"^gin file 'no_such\.gin' not found "
    r"\(searched: the current directory, .*\)$",
  ):
    gin_parsing.parse_gin(["no_such.gin"])


def test_relative_workdir_restores_from_any_directory(saved, monkeypatch):
  monkeypatch.chdir(saved[1].parents[1])
  directory = "runs/a/checkpoints"
  [path] = checkpointing.registered_checkpoints(directory)
  assert path == "runs/a/checkpoints/ckpt-1"
  _, step = checkpointing.restore_model("runs/a")
  assert step == 7
  monkeypatch.chdir(saved[1].parent)
  assert checkpointing.restore_model("a")[1] == 7
