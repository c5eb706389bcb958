"""hvrnn_tf.training.checkpointing: loading a trained model back from a
workdir; crash-safe saves, fallback restores (docs/RELIABILITY.md)."""

import glob
import os
import pathlib
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.testing import disks
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
  with pytest.raises(ValueError, match="does not match"):
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


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

CHECKPOINT_WRITER = """
import sys
import tensorflow as tf
from hvrnn_tf.training import checkpointing
directory = sys.argv[1]
objects = dict(weights=tf.Variable(tf.zeros([20_000_000])),
               step=tf.Variable(0, dtype=tf.int64))
latest, _ = checkpointing.restore_training_state(objects, directory,
                                                 required=("weights", "step"))
for path in checkpointing.remove_partial_checkpoints(directory):
  print("removed", path, flush=True)
manager = tf.train.CheckpointManager(tf.train.Checkpoint(**objects), directory,
                                     max_to_keep=2)
print("resumed", int(objects["step"].numpy()), flush=True)
while True:
  step = int(objects["step"].assign_add(1).numpy())
  objects["weights"].assign(tf.fill([20_000_000], float(step)))
  print("saving", step, flush=True)
  checkpointing.save(manager, step)
  print("saved", step, flush=True)
"""


@pytest.mark.slow  # fault injection: kills training processes
def test_sigkill_during_checkpoint_writes_never_leaves_a_partial_latest(
  tmp_path,
):
  """80 MB checkpoints written back to back; each run is killed at a random
  moment inside a write (timed from the previous writes)."""
  seed = random.SystemRandom().randrange(2**32)
  rng = random.Random(seed)
  directory = tmp_path / "checkpoints"
  leftovers, previous_step, kills_inside_a_write = [], 0, 0
  for _ in range(3):
    process = subprocess.Popen(
      [sys.executable, "-c", CHECKPOINT_WRITER, str(directory)],
      cwd=REPO_ROOT,
      env=ENV,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    try:
      removed = []
      for line in process.stdout:
        if line.startswith("removed"):
          removed.append(line.split()[1])
        if line.startswith("resumed"):
          break
      assert int(line.split()[1]) == previous_step, (seed, line)
      assert sorted(removed) == sorted(leftovers), (seed, removed, leftovers)
      durations, started = [], None
      for line in process.stdout:
        kind, step = line.split()
        if kind == "saving":
          started = time.time()
          if len(durations) >= 2:
            time.sleep(rng.uniform(0, 0.9 * min(durations)))
            process.kill()
            break
        else:
          durations.append(time.time() - started)
      process.wait()
    finally:
      if process.poll() is None:
        process.kill()
      process.communicate()
    latest = tf.train.latest_checkpoint(directory)
    number = checkpointing.checkpoint_number(latest)
    assert number in (int(step) - 1, int(step)), (seed, latest, step)
    registered = {
      os.path.basename(p)
      for p in checkpointing.registered_checkpoints(directory)
    }
    leftovers = sorted(
      str(directory / name)
      for name in os.listdir(directory)
      if name != "checkpoint" and name.split(".")[0] not in registered
    )
    # The latest checkpoint is complete: every value restores, checksummed.
    weights = tf.Variable(tf.zeros([20_000_000]))
    tf.train.Checkpoint(weights=weights).restore(latest).expect_partial()
    assert (
      float(tf.reduce_min(weights)) == float(tf.reduce_max(weights)) == number
    )
    previous_step = number
    kills_inside_a_write += bool(leftovers)
  assert kills_inside_a_write, (
    f"no kill landed inside a checkpoint write (seed {seed})"
  )


def test_unreadable_latest_checkpoint_falls_back_to_the_previous(tmp_path):
  value = tf.Variable(0.0)
  objects = dict(model=value, optimizer=tf.Variable(0), step=tf.Variable(0))
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(**objects), tmp_path, 3
  )
  for step in (1, 2):
    value.assign(float(step))
    checkpointing.save(manager, step)
  data = glob.glob(str(tmp_path / "ckpt-2.data-*"))[0]
  with open(data, "r+b") as f:  # a disk error truncated the newest checkpoint
    f.truncate(os.path.getsize(data) // 2)
  value.assign(-1.0)
  path, restored = checkpointing.restore_training_state(objects, str(tmp_path))
  assert path.endswith("ckpt-1") and float(value.numpy()) == 1.0
  assert restored == {"model", "optimizer", "step"}
  with open(glob.glob(str(tmp_path / "ckpt-1.index"))[0], "r+b") as f:
    f.write(b"garbage")
  with pytest.raises(ValueError, match="(?s)ckpt-2.*ckpt-1"):
    checkpointing.restore_training_state(objects, str(tmp_path))


def test_data_position_of_another_pipeline_is_skipped(tmp_path):
  iterator = iter(tf.data.Dataset.range(10).batch(2))
  next(iterator)
  objects = dict(
    model=tf.Variable(1.0),
    optimizer=tf.Variable(0),
    step=tf.Variable(0),
    data=iterator,
  )
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(**objects), tmp_path, 3
  )
  checkpointing.save(manager, 1)
  same = iter(tf.data.Dataset.range(10).batch(2))
  path, restored = checkpointing.restore_training_state(
    {**objects, "data": same}, str(tmp_path)
  )
  assert "data" in restored and list(next(same).numpy()) == [2, 3]
  # Data settings changed: the weights still restore, the data state not.
  other = iter(tf.data.Dataset.range(10).shuffle(3).batch(3))
  path, restored = checkpointing.restore_training_state(
    {**objects, "data": other}, str(tmp_path)
  )
  assert path.endswith("ckpt-1") and restored == {"model", "optimizer", "step"}


def test_checkpoint_of_other_shapes_is_a_clear_error(tmp_path):
  objects = dict(
    model=tf.Variable(tf.zeros([3])),
    optimizer=tf.Variable(0),
    step=tf.Variable(0),
  )
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(**objects), tmp_path, 3
  )
  checkpointing.save(manager, 1)
  objects["model"] = tf.Variable(tf.zeros([4]))
  with pytest.raises(ValueError, match="ckpt-1"):
    checkpointing.restore_training_state(objects, str(tmp_path))


def test_failed_checkpoint_writes_keep_the_previous_checkpoint(small_disk):
  directory = small_disk / "checkpoints"
  value = tf.Variable(tf.zeros([1_000_000]))  # 4 MB
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(model=value), directory, 3
  )
  checkpointing.save(manager, 1)
  disks.fill(small_disk)
  with pytest.raises(checkpointing.CheckpointWriteError) as error:
    checkpointing.save(manager, 2)
  message = str(error.value)
  assert "cannot write checkpoint ckpt-2" in message
  assert "No space left on device" in message and "function_node" not in message
  assert f"{directory}/ckpt-1 is intact" in message
  assert sorted(os.listdir(directory)) == [
    "checkpoint",
    "ckpt-1.data-00000-of-00001",
    "ckpt-1.index",
  ]
  os.remove(small_disk / "filler")
  disks.read_only(directory)
  with pytest.raises(
    checkpointing.CheckpointWriteError,
    match="(?s)ckpt-3.*ckpt-1",
  ):
    checkpointing.save(manager, 3)
  assert tf.train.latest_checkpoint(directory) == str(directory / "ckpt-1")
