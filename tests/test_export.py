"""Tests of the SavedModel export for TF Serving."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf import export

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = str(pathlib.Path(sys.executable).parent / "saved_model_cli")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, make_workdir):
  workdir = tmp_path_factory.mktemp("workdir")
  model = make_workdir(workdir)
  return model, export.export(model, str(workdir / "export"), 7)


def test_reloaded_savedmodel_samples_like_the_model(exported):
  model, path = exported
  assert path.endswith(os.path.join("export", "7"))
  loaded = tf.saved_model.load(path)
  context = tf.random.stateless_uniform([2, 2, 16, 16, 1], seed=[0, 0])
  args = dict(num_future=tf.constant(5), num_samples=tf.constant(3),
              seed=tf.constant([4, 2]))
  frames = loaded.signatures["serving_default"](context=context, **args)
  expected = model.sample(context, 5, 3, tf.constant([4, 2]))
  assert frames["frames"].shape == [2, 3, 5, 16, 16, 1]
  np.testing.assert_allclose(frames["frames"], expected, atol=1e-6)
  as_uint8 = tf.cast(tf.round(context * 255), tf.uint8)
  frames_uint8 = loaded.signatures["serving_uint8"](context=as_uint8, **args)
  expected = model.sample(tf.cast(as_uint8, tf.float32) / 255, 5, 3,
                          tf.constant([4, 2]))
  np.testing.assert_allclose(frames_uint8["frames"], expected, atol=1e-6)


def test_saved_model_cli_shows_and_runs_it(exported):
  _, path = exported
  shown = subprocess.run([CLI, "show", "--all", "--dir", path],
                         capture_output=True, text=True, timeout=120)
  assert shown.returncode == 0, shown.stderr
  for text in ("serving_default", "serving_uint8", "num_future",
               "num_samples", "seed", "frames"):
    assert text in shown.stdout
  # Both signatures' context: [B, c, S, S, C], not of unknown rank.
  assert shown.stdout.count("shape: (-1, 2, 16, 16, 1)") == 2
  inputs = dict(context=np.zeros([1, 2, 16, 16, 1], np.float32),
                num_future=np.int32(3), num_samples=np.int32(2),
                seed=np.array([1, 2], np.int32))
  ran = _cli_run(path, "serving_default", inputs)
  assert ran.returncode == 0, ran.stderr[-2000:]
  frames = np.load(pathlib.Path(path).parent / "outputs" / "frames.npy")
  assert frames.shape == (1, 2, 3, 16, 16, 1)
  assert np.all((frames >= 0) & (frames <= 1))
  inputs["context"] = np.zeros([1, 2, 32, 32, 1], np.uint8)
  ran = _cli_run(path, "serving_uint8", inputs)
  assert ran.returncode != 0
  assert "for Tensor serving_uint8_context:0" in ran.stderr


def _cli_run(path, signature, inputs):
  """`saved_model_cli run` of `signature` on `inputs`, written as .npy files."""
  folder = pathlib.Path(path).parent
  for name, value in inputs.items():
    np.save(folder / f"{name}.npy", value)
  return subprocess.run(
      [CLI, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
       signature, "--inputs",
       ";".join(f"{name}={folder / name}.npy" for name in inputs),
       "--outdir", str(folder / "outputs")],
      capture_output=True, text=True, timeout=120)


def test_signatures_declare_the_context_shape(exported):
  _, path = exported
  loaded = tf.saved_model.load(path)
  for name, dtype in (("serving_default", tf.float32),
                      ("serving_uint8", tf.uint8)):
    _, inputs = loaded.signatures[name].structured_input_signature
    assert inputs["context"] == tf.TensorSpec([None, 2, 16, 16, 1], dtype,
                                              "context")


def test_bad_inputs_are_clear_errors(exported):
  _, path = exported
  signatures = tf.saved_model.load(path).signatures
  serve = signatures["serving_default"]
  good = dict(num_future=tf.constant(2), num_samples=tf.constant(1),
              seed=tf.constant([0, 0]))
  shape_error = (r"tensor context \[.*\] is not compatible with expected "
                 r"shape \[\?,2,16,16,1\]")
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    serve(context=tf.zeros([1, 2, 32, 32, 1]), **good)
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    serve(context=tf.zeros([2, 16, 16, 1]), **good)
  with pytest.raises(tf.errors.InvalidArgumentError, match=shape_error):
    signatures["serving_uint8"](
        context=tf.zeros([1, 2, 32, 32, 1], tf.uint8), **good)
  with pytest.raises(tf.errors.InvalidArgumentError, match="num_future"):
    serve(context=tf.zeros([1, 2, 16, 16, 1]),
          **{**good, "num_future": tf.constant(0)})


def test_binary_writes_a_version_and_never_overwrites(tmp_path, make_workdir):
  make_workdir(tmp_path)
  command = [sys.executable, "-m", "hvrnn_tf.export", f"--workdir={tmp_path}",
             f"--export_dir={tmp_path / 'out'}"]
  env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
  first = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-2000:]
  assert (tmp_path / "out" / "7" / "saved_model.pb").exists()
  again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
  assert again.returncode != 0
  assert "hvrnn_tf.export: error:" in again.stderr
  assert "already exists" in again.stderr
  assert [p.name for p in (tmp_path / "out").iterdir()] == ["7"]
