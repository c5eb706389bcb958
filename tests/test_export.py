"""Tests of the SavedModel export for TF Serving."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.serving.config import ExportConfig

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = str(pathlib.Path(sys.executable).parent / "saved_model_cli")


def _export_binary(workdir, *gin_params):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "hvrnn_tf.export",
      f"--workdir={workdir}",
      *(f"--gin_param={p}" for p in gin_params),
    ],
    cwd=REPO_ROOT,
    env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    capture_output=True,
    text=True,
    timeout=300,
  )


@pytest.fixture(scope="module")
def exported(tmp_path_factory, make_workdir):
  """(model, path): make_workdir's model (step 7) exported by the binary to
  its default WORKDIR/export, once for all the tests (each export traces both
  signatures' samplers)."""
  workdir = tmp_path_factory.mktemp("workdir")
  model = make_workdir(workdir)
  result = _export_binary(workdir)
  assert result.returncode == 0, result.stderr[-2000:]
  return model, str(workdir / "export" / "7")


@pytest.fixture(scope="module")
def loaded(exported):
  """The exported SavedModel, loaded once for the tests that only call it."""
  return tf.saved_model.load(exported[1])


def test_reloaded_savedmodel_samples_like_the_model(exported, loaded):
  model, _ = exported
  context = tf.random.stateless_uniform([2, 2, 16, 16, 1], seed=[0, 0])
  args = dict(
    num_future=tf.constant(5),
    num_samples=tf.constant(3),
    seed=tf.constant([4, 2]),
  )
  frames = loaded.signatures["serving_default"](context=context, **args)
  expected = model.sample(context, 5, 3, tf.constant([4, 2]))
  assert frames["frames"].shape == [2, 3, 5, 16, 16, 1]
  np.testing.assert_allclose(frames["frames"], expected, atol=1e-6)
  as_uint8 = tf.cast(tf.round(context * 255), tf.uint8)
  frames_uint8 = loaded.signatures["serving_uint8"](context=as_uint8, **args)
  expected = model.sample(
    tf.cast(as_uint8, tf.float32) / 255, 5, 3, tf.constant([4, 2])
  )
  np.testing.assert_allclose(frames_uint8["frames"], expected, atol=1e-6)


def test_saved_model_cli_shows_and_runs_it(exported, tmp_path):
  _, path = exported
  inputs = dict(
    context=np.zeros([1, 2, 16, 16, 1], np.float32),
    num_future=np.int32(3),
    num_samples=np.int32(2),
    seed=np.array([1, 2], np.int32),
  )
  # Three CLI processes at once: each spends most of its time importing
  # TensorFlow.
  shown = subprocess.Popen(
    [CLI, "show", "--all", "--dir", path],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  ran = _cli_run(path, "serving_default", inputs, tmp_path / "float32")
  bad = _cli_run(
    path,
    "serving_uint8",
    {**inputs, "context": np.zeros([1, 2, 32, 32, 1], np.uint8)},
    tmp_path / "uint8",
  )
  (shown_out, shown_err), (_, ran_err), (_, bad_err) = [
    p.communicate(timeout=120) for p in (shown, ran, bad)
  ]
  assert shown.returncode == 0, shown_err
  for text in (
    "serving_default",
    "serving_uint8",
    "num_future",
    "num_samples",
    "seed",
    "frames",
  ):
    assert text in shown_out
  # Both signatures' context: [B, c, S, S, C], not of unknown rank.
  assert shown_out.count("shape: (-1, 2, 16, 16, 1)") == 2
  assert ran.returncode == 0, ran_err[-2000:]
  frames = np.load(tmp_path / "float32" / "outputs" / "frames.npy")
  assert frames.shape == (1, 2, 3, 16, 16, 1)
  assert np.all((frames >= 0) & (frames <= 1))
  assert bad.returncode != 0
  assert "for Tensor serving_uint8_context:0" in bad_err


def _cli_run(path, signature, inputs, folder):
  """Starts `saved_model_cli run` of `signature` on `inputs`, written as .npy
  files in `folder`; its outputs go to folder/outputs."""
  folder.mkdir()
  for name, value in inputs.items():
    np.save(folder / f"{name}.npy", value)
  return subprocess.Popen(
    [
      CLI,
      "run",
      "--dir",
      path,
      "--tag_set",
      "serve",
      "--signature_def",
      signature,
      "--inputs",
      ";".join(f"{name}={folder / name}.npy" for name in inputs),
      "--outdir",
      str(folder / "outputs"),
    ],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def test_signatures_declare_the_context_shape(loaded):
  for name, dtype in (
    ("serving_default", tf.float32),
    ("serving_uint8", tf.uint8),
  ):
    _, inputs = loaded.signatures[name].structured_input_signature
    assert inputs["context"] == tf.TensorSpec(
      [None, 2, 16, 16, 1], dtype, "context"
    )


def test_bad_inputs_are_clear_errors(loaded):
  signatures = loaded.signatures
  serve = signatures["serving_default"]
  good = dict(
    num_future=tf.constant(2),
    num_samples=tf.constant(1),
    seed=tf.constant([0, 0]),
  )
  shape_error = (
    r"tensor context \[.*\] is not compatible with expected "
    r"shape \[\?,2,16,16,1\]"
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    serve(context=tf.zeros([1, 2, 32, 32, 1]), **good)
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    serve(context=tf.zeros([2, 16, 16, 1]), **good)
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    signatures["serving_uint8"](
      context=tf.zeros([1, 2, 32, 32, 1], tf.uint8), **good
    )
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_future"):
    serve(
      context=tf.zeros([1, 2, 16, 16, 1]),
      **{**good, "num_future": tf.constant(0)},
    )


def test_binary_writes_a_version_and_never_overwrites(exported):
  _, path = exported
  export_dir = pathlib.Path(path).parent
  assert (export_dir / "7" / "saved_model.pb").exists()
  again = _export_binary(
    export_dir.parent, f"export.export_dir = '{export_dir}'"
  )
  assert again.returncode != 0
  assert "hvrnn_tf.export: error:" in again.stderr
  assert "already exists" in again.stderr
  assert [p.name for p in export_dir.iterdir()] == ["7"]


@pytest.mark.parametrize(
  "setting,value", [("version", -1), ("version", "3"), ("export_dir", "")]
)
def test_bad_settings_name_the_setting(setting, value):
  with pytest.raises(ValueError, match=f"export.{setting}"):
    ExportConfig(**{setting: value})


def test_export_dir_defaults_to_the_workdir_s():
  assert ExportConfig().directory("runs/x") == os.path.join("runs/x", "export")
  assert ExportConfig(export_dir="e").directory("runs/x") == "e"
