"""The training binary under faults: kills, signals, a full disk, divergence,
bad settings (docs/RELIABILITY.md; checkpointing's and summaries' own in
test_checkpointing.py, test_summaries.py).

Timings are random on purpose (kills land anywhere in a step or a checkpoint
write); the seed of each draw is in the assertion messages.
"""

import glob
import os
import pathlib
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

import gin
from hvrnn_tf import train
from hvrnn_tf.data import smmnist
from hvrnn_tf.testing import disks
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import task

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

# gin/tiny.gin with schedules that move every step (so a resumed run must
# continue them at the right position) and no image summaries or samples
# (they cost time and are not under test here); one latent level and one
# decoder ConvLSTM make each run's train step a third cheaper to trace.
TINY_GIN = str(REPO_ROOT / "gin" / "tiny.gin")
TINY = """
model.ModelConfig.latent_resolutions = (1,)
model.ModelConfig.latent_channels = (2,)
model.ModelConfig.decoder_convlstm_layers = 1
train.steps_per_epoch = 10
train.learning_rate = 2.5e-4
train.lr_reference_batch = 1
train.lr_warmup_epochs = 10
train.beta_warmup_epochs = 5
train.log_every = 1
train.summary_every = 1
train.image_summary_every = 0
"""
TINY_PARAMS = TINY.strip().splitlines()


def parse_tiny(bindings=""):
  gin.parse_config_files_and_bindings([TINY_GIN], TINY + bindings)


def rng_with_seed():
  seed = random.SystemRandom().randrange(2**32)
  return random.Random(seed), seed


def events(path, tag="loss"):
  """{step: value} of a scalar in ONE events file (one process's writes)."""
  values = {}
  records = tf.compat.v1.train.summary_iterator(str(path))
  while True:
    try:
      event = next(records)
    except (StopIteration, tf.errors.DataLossError):  # end, or cut by a kill
      return values
    for value in event.summary.value:
      if value.tag == tag:
        values[event.step] = float(tf.make_ndarray(value.tensor))


def _wait_for_event(workdir, step, timeout=30.0):
  """Returns once the newest events file holds `step`'s loss."""
  deadline = time.time() + timeout
  while step not in events(events_files(workdir)[-1]):
    if time.time() > deadline:
      raise AssertionError(f"no summaries of step {step} after {timeout} s")
    time.sleep(0.005)


def events_files(workdir):
  return sorted(
    glob.glob(os.path.join(workdir, "train", "events.out.*")),
    key=os.path.getmtime,
  )


class Process:
  """A training binary whose stderr is read line by line in the background."""

  def __init__(self, workdir, *params):
    args = [f"--gin_file={TINY_GIN}"] + [
      f"--gin_param={p}" for p in TINY_PARAMS + list(params)
    ]
    self.popen = subprocess.Popen(
      [sys.executable, "-m", "hvrnn_tf.train", f"--workdir={workdir}", *args],
      cwd=REPO_ROOT,
      env=ENV,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    self.lines, self.log = queue.Queue(), []
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self.popen.stderr:
      self.log.append(line)
      self.lines.put(line)
    self.lines.put(None)

  def wait_for(self, pattern, timeout=300):
    """The first match of `pattern` in a new log line."""
    deadline = time.time() + timeout
    while time.time() < deadline:
      try:
        line = self.lines.get(timeout=1)
      except queue.Empty:
        continue
      if line is None:
        break
      match = re.search(pattern, line)
      if match:
        return match
    raise AssertionError(
      f"no {pattern!r} in the log:\n" + "".join(self.log)[-3000:]
    )

  def send(self, signum):
    self.popen.send_signal(signum)
    return self.popen.wait(timeout=120)

  def close(self):
    if self.popen.poll() is None:
      self.popen.kill()
    self.popen.wait()

  def text(self):
    return "".join(self.log)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
  """Run 1 is SIGKILLed at a random moment after step 5; run 2 resumes and is
  stopped with SIGTERM a few steps later."""
  workdir = tmp_path_factory.mktemp("killed")
  rng, seed = rng_with_seed()
  result = {"workdir": workdir, "seed": seed}
  first = Process(
    workdir, "train.num_steps = 1000", "train.checkpoint_every = 3"
  )
  try:
    # Kill at a random moment of the step after step k = 1 (mod 3): after
    # checkpoint k - 1, with step k (at least) done, logged and its summaries
    # in the event file (they follow the log line), to be lost.
    times = {}
    while True:
      step = int(first.wait_for(r"step (\d+)/1000").group(1))
      times[step] = time.time()
      if step >= 4 and step % 3 == 1 and step - 1 in times:
        break
    _wait_for_event(workdir, step)
    time.sleep(rng.uniform(0, (times[step] - times[step - 1]) / 2))
    first.popen.kill()
    first.popen.wait()
  finally:
    first.close()
  result["first_log"] = first.text()
  result["first_events"] = events(events_files(workdir)[-1])
  result["first_lr"] = events(events_files(workdir)[-1], "learning_rate")
  result["killed_latest"] = tf.train.latest_checkpoint(workdir / "checkpoints")

  second = Process(
    workdir, "train.num_steps = 1000", "train.checkpoint_every = 3"
  )
  try:
    resumed = int(
      second.wait_for(r"Resumed from .*ckpt-(\d+) at step").group(1)
    )
    second.wait_for(rf"step {resumed + 3}/1000")
    sent = time.time()
    result["second_returncode"] = second.send(signal.SIGTERM)
    result["second_exit_seconds"] = time.time() - sent
  finally:
    second.close()
  result.update(resumed=resumed, second_log=second.text())
  files = events_files(workdir)
  result["second_events"] = events(files[-1])
  result["second_lr"] = events(files[-1], "learning_rate")
  result["second_beta"] = events(files[-1], "beta")
  return result


@pytest.mark.slow  # fault injection: kills training processes
def test_sigkill_resumes_from_the_last_checkpoint_on_the_same_curve(
  killed_and_resumed,
):
  r = killed_and_resumed
  context = f"(random seed {r['seed']})\n{r['second_log'][-3000:]}"
  first, second = r["first_events"], r["second_events"]
  killed_at = max(first)
  # It resumed from the checkpoint that was the latest when it was killed,
  # and that checkpoint was complete.
  assert r["killed_latest"].endswith(f"ckpt-{r['resumed']}"), context
  assert r["resumed"] % 3 == 0 and r["resumed"] < killed_at, context
  # The resumed run continued at the next step...
  assert min(second) == r["resumed"] + 1, context
  # ...and repeats the lost steps exactly: same weights, optimizer moments,
  # data batches, noise and schedule position as before the kill.
  overlap = sorted(set(first) & set(second))
  assert overlap and overlap[0] == r["resumed"] + 1, context
  for step in overlap:
    assert first[step] == second[step], (step, context)
    assert r["first_lr"][step] == r["second_lr"][step], (step, context)
  # The schedules moved (so position mattered): lr warms up over 100 steps.
  assert r["second_lr"][max(second)] > r["second_lr"][min(second)]
  assert 0 < r["second_beta"][min(second)] < 1


@pytest.mark.slow  # fault injection: kills training processes
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(killed_and_resumed):
  r = killed_and_resumed
  stopped_at = max(r["second_events"])
  assert r["second_returncode"] == 128 + signal.SIGTERM, r["second_log"][-3000:]
  # One step, a checkpoint, no teardown: well within a preemption's grace.
  assert r["second_exit_seconds"] < 60
  assert f"stopped by SIGTERM at step {stopped_at}" in r["second_log"]
  assert "Traceback" not in r["second_log"]
  latest = tf.train.latest_checkpoint(r["workdir"] / "checkpoints")
  assert latest.endswith(f"ckpt-{stopped_at}")
  assert tf.train.load_variable(latest, checkpointing.STEP_KEY) == stopped_at
  iterations = tf.train.load_variable(
    latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
  )
  assert iterations == stopped_at
  assert "data" in checkpointing.saved_objects(latest)


def run_main(workdir, *params, gin_files=(TINY_GIN,)):
  """train.main in this process, as the binary runs it; returns the exit message."""
  argv = (
    ["hvrnn_tf.train", f"--workdir={workdir}"]
    + [f"--gin_file={f}" for f in gin_files]
    + [f"--gin_param={p}" for p in params]
  )
  flags.FLAGS(argv)
  try:
    train.main(argv[:1])
  except SystemExit as e:
    return e.code
  finally:
    flags.FLAGS.unparse_flags()
  return None


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
  """A run whose batches hold NaNs at step 3 and from step 6 on."""
  workdir = tmp_path_factory.mktemp("diverged")
  gin.clear_config()
  try:
    message = run_main(
      workdir,
      *TINY_PARAMS,
      "train.num_steps = 20",
      "train.checkpoint_every = 2",
      "train.max_consecutive_nonfinite_steps = 3",
      "train.debug_nonfinite_steps = (3, 6, 7, 8, 9)",
    )
  finally:
    gin.clear_config()
  return workdir, message


def test_nonfinite_steps_are_skipped_and_a_streak_stops_the_run(diverged):
  workdir, message = diverged
  assert message.startswith(
    "hvrnn_tf.train: error: training diverged: steps 6-8 had a non-finite loss"
  ), message
  assert "max_consecutive_nonfinite_steps" in message
  # Step 6 was a checkpoint step, but inside the streak: not saved. The last
  # checkpoint is the last good state, and the message says so.
  latest = tf.train.latest_checkpoint(workdir / "checkpoints")
  assert (
    latest.endswith("ckpt-4") and f"{latest} (step 4), is intact" in message
  )
  # Step 3 was skipped: 4 steps, 3 updates.
  assert (
    tf.train.load_variable(
      latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    )
    == 3
  )
  assert (
    tf.train.load_variable(latest, "skipped_steps/.ATTRIBUTES/VARIABLE_VALUE")
    == 1
  )
  for name, _ in tf.train.list_variables(latest):
    if name.startswith("model/"):
      assert np.isfinite(tf.train.load_variable(latest, name)).all(), name
  files = events_files(workdir)
  skipped = events(files[-1], "skipped_nonfinite_steps")
  assert skipped[2] == 0 and skipped[3] == 1 and skipped[7] == 3
  losses = events(files[-1])
  assert np.isfinite(losses[4]) and np.isnan(losses[3])


@pytest.mark.slow  # fault injection: kills training processes
def test_same_seed_same_losses_in_another_process(killed_and_resumed, diverged):
  """The in-process run (diverged) and run 1 of killed_and_resumed, a separate
  process, share config and seed: their first steps agree exactly (CPU)."""
  mine = events(events_files(diverged[0])[-1])
  theirs = killed_and_resumed["first_events"]
  assert mine[1] == theirs[1] and mine[2] == theirs[2]
  assert mine[1] != mine[2]


def test_disk_full_mid_run_is_a_clear_error_and_keeps_the_checkpoint(
  small_disk,
):
  workdir = small_disk / "run"
  checkpoints = workdir / "checkpoints"
  stop = threading.Event()

  def fill_after_first_checkpoint():
    while not stop.is_set():
      if tf.train.latest_checkpoint(checkpoints):
        disks.fill(small_disk)
        return
      time.sleep(0.01)

  filler = threading.Thread(target=fill_after_first_checkpoint, daemon=True)
  filler.start()
  parse_tiny(
    "train.num_steps = 30\ntrain.checkpoint_every = 2\n"
    "train.summary_every = 100\n"
  )
  try:
    with pytest.raises(OSError) as error:
      task.train(str(workdir))
  finally:
    stop.set()
    filler.join()
  latest = tf.train.latest_checkpoint(checkpoints)
  message = str(error.value)
  assert re.search(
    r"cannot write checkpoint ckpt-\d+ in .*No space left on "
    rf"device; the previous checkpoint {latest} is intact",
    message,
  ), message
  # The failed write left nothing behind; the previous checkpoint restores.
  assert not [n for n in os.listdir(checkpoints) if "_temp" in n]
  assert not checkpointing.remove_partial_checkpoints(str(checkpoints))
  os.remove(small_disk / "filler")
  gin.clear_config()
  parse_tiny()
  model, step = checkpointing.restore_model(str(workdir))
  assert step == checkpointing.checkpoint_number(latest)


@pytest.mark.parametrize(
  "binding,message",
  [
    ("train.num_steps = '10'", "train.num_steps: expected int, got '10' (str)"),
    (
      "train.precision = 'float16'",
      "train.precision='float16'; expected one of",
    ),
    ("train.data_position = 'exact'", "train.data_position='exact'"),
    ("train.learning_rate = -1.0", "train.learning_rate must be >= 0"),
    ("train.lr_reference_batch = 0", "train.lr_reference_batch must be >= 1"),
    ("train.checkpoint_every = 0", "train.checkpoint_every must be >= 1"),
    (
      "train.max_consecutive_nonfinite_steps = 0",
      "train.max_consecutive_nonfinite_steps must be >= 1",
    ),
    ("model.ModelConfig.n_hid = '4'", "model.ModelConfig.n_hid: expected int"),
    (
      "data.make_dataset.shuffle_buffer = 'big'",
      "data.make_dataset.shuffle_buffer: expected int",
    ),
  ],
)
def test_bad_settings_are_rejected_before_the_model_is_built(
  tmp_path, binding, message
):
  parse_tiny("train.num_steps = 10\n" + binding)
  with pytest.raises(ValueError) as error:
    task.train(str(tmp_path / "run"))
  assert message in str(error.value)
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_binary_reports_missing_and_mistyped_settings(tmp_path):
  gin.clear_config()
  message = run_main(tmp_path / "run", *TINY_PARAMS, gin_files=())
  assert message.startswith(
    "hvrnn_tf.train: error: Required bindings for "
    "`train` not provided in config: ['num_steps']"
  )
  gin.clear_config()
  message = run_main(
    tmp_path / "run",
    *TINY_PARAMS,
    "train.num_steps = 10",
    "model.ModelConfig.future_frames = 2.5",
  )
  assert message == (
    "hvrnn_tf.train: error: model.ModelConfig.future_frames: "
    "expected int, got 2.5 (float)"
  )


def test_sequences_shorter_than_context_plus_future_name_the_settings(tmp_path):
  smmnist.write_smmnist_shards(
    str(tmp_path),
    "train",
    num_sequences=2,
    sequence_length=3,
    image_size=32,
    style="mnist28",
  )
  parse_tiny(f"""
train.num_steps = 10
data.make_dataset.source = "tfrecord"
data.make_dataset.file_pattern = "{tmp_path}/{{split}}-*"
""")
  with pytest.raises(ValueError) as error:
    task.train(str(tmp_path / "run"))
  message = str(error.value)
  assert "sequences have 3 frames; sequence_length=4" in message
  assert (
    "sequence_length = model.ModelConfig.context_frames + "
    "model.ModelConfig.future_frames = 2 + 2"
  ) in message
  assert not (tmp_path / "run" / "checkpoints").exists()
