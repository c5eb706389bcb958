"""Tests of hvrnn_tf.utils.filesystems, and of workdirs that only tf.io.gfile
can open: train -> resume -> sample -> eval -> export on TF's in-memory
ram:// filesystem (one process) and on file:// URIs (the binaries)."""

import os
import subprocess
import sys
import uuid

from conftest import TINY_GIN
import pytest
import tensorflow as tf

import gin
from hvrnn_tf.evaluation import evaluate
from hvrnn_tf.evaluation import samples
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.evaluation.config import SampleConfig
from hvrnn_tf.serving import saved_model
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import task
from hvrnn_tf.training import workdir as workdir_lib
from hvrnn_tf.utils import filesystems
from hvrnn_tf.utils import gin_parsing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# No credentials and no metadata server: GCS cannot be reached.
OFFLINE = {
  "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/credentials.json",
  "NO_GCE_CHECK": "true",
  "TF_CPP_MIN_LOG_LEVEL": "2",
}
TRAIN = ("train.num_steps = 1",)
# Eval without FVD's I3D and LPIPS's weights (downloads), on 2 sequences.
EVAL = EvalConfig(
  num_samples=2,
  max_sequences=2,
  batch_size=2,
  i3d_handle="",
  lpips_weights="",
  num_visualized=1,
)
EVAL_PARAMS = [
  f"eval.{name} = {getattr(EVAL, name)!r}"
  for name in (
    "num_samples",
    "max_sequences",
    "batch_size",
    "i3d_handle",
    "lpips_weights",
    "num_visualized",
  )
]


def _files(directory):
  """The names of the files under `directory` (via gfile), relative to it."""
  return {
    os.path.relpath(os.path.join(d, name), directory)
    for d, _, names in tf.io.gfile.walk(directory)
    for name in names
  }


def test_unwritable_workdir_is_a_clear_error(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(OSError, match="workdir .*a_file/run: is not writable"):
    filesystems.check_writable(str(blocker / "run"))


def test_gcs_without_credentials_or_network_is_one_line(monkeypatch):
  for name, value in OFFLINE.items():
    monkeypatch.setenv(name, value)
  with pytest.raises(OSError) as error:
    filesystems.check_writable("gs://hvrnn-tf-test-no-bucket/run")
  assert str(error.value).startswith(
    "workdir gs://hvrnn-tf-test-no-bucket/run: cannot reach Google Cloud "
    "Storage (no credentials or network?): "
  )
  assert "\n" not in str(error.value)


def test_error_line_names_the_failure_of_other_filesystems():
  error = tf.errors.PermissionDeniedError(None, None, "read-only\nfile system")
  assert (
    filesystems.error_line("file:///x", error, "is not writable")
    == "file:///x: is not writable: read-only file system"
  )


def _train(workdir, *bindings):
  gin.clear_config()
  gin_parsing.parse_gin([TINY_GIN], [*TRAIN, *bindings])
  outcome = task.train(workdir)
  gin.clear_config()
  return outcome.step


def test_ram_workdir_trains_resumes_samples_evaluates_and_exports():
  workdir = f"ram://{uuid.uuid4().hex}/run"
  assert _train(workdir) == 1
  assert _train(workdir, "train.num_steps = 2") == 2
  checkpoints = os.path.join(workdir, checkpointing.CHECKPOINT_DIR)
  assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-2")
  assert tf.io.gfile.glob(os.path.join(workdir, "train", "events.out.*"))
  assert tf.io.gfile.exists(
    os.path.join(workdir, checkpointing.OPERATIVE_CONFIG)
  )

  output_dir, paths = samples.run(workdir, SampleConfig(1, 1))
  assert output_dir == os.path.join(workdir, "samples", "step_2")
  assert _files(output_dir) == {"sample_0.gif", "sample_0.png"}
  assert all(p.startswith("ram://") for p in paths)

  metrics = evaluate.run(workdir, EVAL)
  assert metrics["protocol"]["workdir"] == workdir
  assert {"metrics.json", "per_timestep.png", "sequence_0.gif"} <= _files(
    os.path.join(workdir, "eval")
  )

  model, step = workdir_lib.load_model(workdir)
  target = saved_model.export(
    model,
    os.path.join(workdir, "export"),
    step,
    num_future=model.config.future_frames,
    num_samples=1,
  )
  assert target == os.path.join(workdir, "export", "2")
  assert "saved_model.pb" in _files(target)
  assert tf.saved_model.load(target).signatures["serving_default"]


def _binary(name, workdir, *args):
  result = subprocess.run(
    [sys.executable, "-m", f"hvrnn_tf.{name}", f"--workdir={workdir}", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, **OFFLINE, "PYTHONPATH": REPO},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.mark.slow
def test_file_uri_workdir_across_the_binaries(tmp_path):
  workdir = f"file://{tmp_path}/run"
  train = [f"--gin_file={TINY_GIN}", *(f"--gin_param={b}" for b in TRAIN)]
  _binary("train", workdir, *train)
  _binary("train", workdir, *train, "--gin_param=train.num_steps = 2")
  assert "ckpt-2.index" in os.listdir(tmp_path / "run" / "checkpoints")
  _binary("sample", workdir, "--gin_param=sample.num_sequences = 1")
  _binary("eval", workdir, *(f"--gin_param={p}" for p in EVAL_PARAMS))
  _binary("export", workdir)
  assert {
    "operative_config.gin",
    "samples/step_2/sample_0.gif",
    "eval/metrics.json",
    "export/2/saved_model.pb",
  } <= _files(workdir)


def test_binaries_say_in_one_line_that_gcs_cannot_be_reached():
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "hvrnn_tf.sample",
      "--workdir=gs://hvrnn-tf-test-no-bucket/run",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    env={**os.environ, **OFFLINE, "PYTHONPATH": REPO},
  )
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(
    "hvrnn_tf.sample: error: workdir gs://hvrnn-tf-test-no-bucket/run: "
    "cannot reach Google Cloud Storage (no credentials or network?):"
  ), result.stderr[-2000:]
