"""Tests of the SavedModel export for TF Serving."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from hvrnn_tf.serving import saved_model
from hvrnn_tf.serving import warmup
from hvrnn_tf.serving.config import ExportConfig
from hvrnn_tf.testing import serving_json

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = str(pathlib.Path(sys.executable).parent / "saved_model_cli")
F, N = 5, 3  # export.num_future, export.num_samples


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
  result = _export_binary(
    workdir, f"export.num_future = {F}", f"export.num_samples = {N}"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  return model, str(workdir / "export" / "7")


@pytest.fixture(scope="module")
def loaded(exported):
  """The exported SavedModel, loaded once for the tests that only call it."""
  return tf.saved_model.load(exported[1])


def _context(batch_size, seed=0):
  return tf.random.stateless_uniform([batch_size, 2, 16, 16, 1], seed=[seed, 0])


def test_each_row_samples_like_the_model_alone(exported, loaded):
  model, _ = exported
  context = _context(2)
  seeds = tf.constant([[4, 2], [4, 3]])
  serve = loaded.signatures["serving_default"]
  both = serve(context=context, seed=seeds)
  assert both["frames"].shape == [2, N, F, 16, 16, 1]
  for row in (0, 1):
    rows = slice(row, row + 1)
    expected = model.sample(context[rows], F, N, seeds[row])
    np.testing.assert_allclose(both["frames"][rows], expected, atol=1e-5)
    # Batched with another row or alone: the same frames.
    alone = serve(context=context[rows], seed=seeds[rows])
    np.testing.assert_allclose(both["frames"][rows], alone["frames"], atol=1e-5)
  np.testing.assert_array_equal(
    both["frames_uint8"], saved_model.to_uint8(both["frames"])
  )


def test_uint8_signature_answers_uint8(exported, loaded):
  model, _ = exported
  as_uint8 = saved_model.to_uint8(_context(2))
  seeds = tf.constant([[1, 1], [2, 2]])
  answer = loaded.signatures["serving_uint8"](context=as_uint8, seed=seeds)
  assert list(answer) == ["frames_uint8"]
  expected = saved_model.to_uint8(
    model.sample(tf.cast(as_uint8, tf.float32) / 255, F, N, seeds)
  )
  # At most one level apart where rounding meets float noise.
  diff = np.abs(answer["frames_uint8"].numpy().astype(int) - expected.numpy())
  assert diff.max() <= 1 and diff.mean() < 0.01


def test_warmup_requests_run_on_the_signatures(exported, loaded):
  _, path = exported
  records = list(
    tf.data.TFRecordDataset(os.path.join(path, warmup.PATH)).as_numpy_iterator()
  )
  assert [r[0] for r in records] == [6 << 3 | 2] * 2  # PredictionLog field 6
  logs = [warmup.messages()["PredictionLog"].FromString(r) for r in records]
  requests = [log.predict_log.request for log in logs]
  assert [r.model_spec.signature_name for r in requests] == list(
    saved_model.SIGNATURES
  )
  for request in requests:
    inputs = {
      name: tf.make_ndarray(
        tensor_pb2.TensorProto.FromString(tensor.SerializeToString())
      )
      for name, tensor in request.inputs.items()
    }
    assert sorted(inputs) == ["context", "seed"]
    signature = loaded.signatures[request.model_spec.signature_name]
    answer = signature(**inputs)
    assert answer["frames_uint8"].shape == [1, N, F, 16, 16, 1]


def _documented_rest_body():
  """The docs' `rest_body` function (json and numpy only)."""
  text = (REPO_ROOT / "docs" / "EVALUATION.md").read_text()
  (block,) = [
    b
    for b in re.findall(r"```python\n(.*?)```", text, re.S)
    if "def rest_body" in b
  ]
  namespace = {}
  exec(block, namespace)  # pylint: disable=exec-used
  return namespace["rest_body"]


@pytest.mark.parametrize("signature", saved_model.SIGNATURES)
def test_documented_rest_body_runs_on_the_export(exported, loaded, signature):
  model, _ = exported
  context = _context(2, seed=1)
  if signature == "serving_uint8":
    context = saved_model.to_uint8(context)
  seeds = [[0, 1], [0, 2]]
  body = _documented_rest_body()(context.numpy(), seeds, signature)
  assert len(json.loads(body)["instances"]) == 2
  name, inputs = serving_json.decode(body, loaded.signatures)
  assert name == signature
  answer = loaded.signatures[name](**inputs)
  expected = model.sample(
    tf.cast(context, tf.float32) / (255 if context.dtype == tf.uint8 else 1),
    F,
    N,
    tf.constant(seeds),
  )
  diff = np.abs(
    answer["frames_uint8"].numpy().astype(int)
    - saved_model.to_uint8(expected).numpy()
  )
  assert diff.max() <= 1
  # The columnar format ("inputs") decodes to the same tensors.
  columnar = json.dumps(
    {
      "signature_name": signature,
      "inputs": {"context": context.numpy().tolist(), "seed": seeds},
    }
  )
  for key, tensor in serving_json.decode(columnar, loaded.signatures)[
    1
  ].items():
    np.testing.assert_array_equal(tensor, inputs[key])


def test_saved_model_cli_shows_and_runs_it(exported, tmp_path):
  _, path = exported
  inputs = dict(
    context=np.zeros([1, 2, 16, 16, 1], np.float32),
    seed=np.array([[1, 2]], np.int32),
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
  for text in ("serving_default", "serving_uint8", "frames_uint8"):
    assert text in shown_out
  # Every input of both signatures has a batch dimension.
  assert shown_out.count("shape: (-1, 2, 16, 16, 1)") == 2
  assert shown_out.count("shape: (-1, 2)") == 2
  assert ran.returncode == 0, ran_err[-2000:]
  frames = np.load(tmp_path / "float32" / "outputs" / "frames.npy")
  assert frames.shape == (1, N, F, 16, 16, 1)
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


def test_signatures_declare_batched_inputs(loaded):
  for name, dtype in (
    ("serving_default", tf.float32),
    ("serving_uint8", tf.uint8),
  ):
    _, inputs = loaded.signatures[name].structured_input_signature
    assert inputs == {
      "context": tf.TensorSpec([None, 2, 16, 16, 1], dtype, "context"),
      "seed": tf.TensorSpec([None, 2], tf.int32, "seed"),
    }


@pytest.mark.parametrize(
  "signature,context,seed,match",
  [
    ("serving_default", [1, 2, 32, 32, 1], [1, 2], r"tensor context \[1,2,32"),
    ("serving_default", [2, 16, 16, 1], [1, 2], r"tensor context \[2,16"),
    ("serving_uint8", [1, 2, 32, 32, 1], [1, 2], r"tensor context \[1,2,32"),
    ("serving_default", [1, 2, 16, 16, 1], [2], r"tensor seed \[2\]"),
    ("serving_default", [1, 2, 16, 16, 1], [1, 3], r"tensor seed \[1,3\]"),
    ("serving_uint8", [2, 2, 16, 16, 1], [1, 2], "seed needs one row"),
  ],
)
def test_wrong_rank_or_size_names_the_input(
  loaded, signature, context, seed, match
):
  spec = loaded.signatures[signature].structured_input_signature[1]["context"]
  with pytest.raises(tf.errors.InvalidArgumentError, match=match):
    loaded.signatures[signature](
      context=tf.zeros(context, spec.dtype), seed=tf.zeros(seed, tf.int32)
    )


@pytest.mark.parametrize(
  "signature,row,match",
  [
    ("serving_uint8", {"context": 0.5, "seed": [0, 1]}, "input context"),
    ("serving_uint8", {"context": 300, "seed": [0, 1]}, "input context"),
    ("serving_default", {"context": "a", "seed": [0, 1]}, "input context"),
    ("serving_default", {"context": 0.5, "seed": [0, 1.5]}, "input seed"),
    ("serving_default", {"context": 0.5, "seed": [[0], [1, 2]]}, "input seed"),
    ("serving_default", {"context": 0.5}, r"needs inputs \['context', 'seed'"),
  ],
)
def test_wrong_json_dtype_names_the_input(loaded, signature, row, match):
  if not isinstance(row["context"], str):
    row["context"] = np.full([2, 16, 16, 1], row["context"]).tolist()
  body = json.dumps({"signature_name": signature, "instances": [row]})
  with pytest.raises(ValueError, match=match):
    serving_json.decode(body, loaded.signatures)


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
  "setting,value",
  [
    ("version", -1),
    ("version", "3"),
    ("export_dir", ""),
    ("num_future", 0),
    ("num_samples", 0),
    ("num_samples", None),
  ],
)
def test_bad_settings_name_the_setting(setting, value):
  with pytest.raises(ValueError, match=f"export.{setting}"):
    ExportConfig(**{setting: value})


def test_export_dir_defaults_to_the_workdir_s():
  assert ExportConfig().directory("runs/x") == os.path.join("runs/x", "export")
  assert ExportConfig(export_dir="e").directory("runs/x") == "e"
