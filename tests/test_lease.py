"""Tests of the workdir lease: one trainer per workdir (training/lease.py)."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from hvrnn_tf.training import lease as lease_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
STALE = lease_lib.HEARTBEAT_SECS * lease_lib.STALE_AFTER_BEATS


class FakeClock:
  """Time that moves only when told; `on_sleep` runs once inside a sleep."""

  def __init__(self):
    self.now = 1.7e9
    self.on_sleep = None

  def time(self):
    return self.now

  def sleep(self, secs):
    self.now += secs
    callback, self.on_sleep = self.on_sleep, None
    if callback:
      callback()


def lease_on(workdir, clock, host=None, pid=None):
  lease = lease_lib.Lease(str(workdir), clock=clock)
  lease.host = host or lease.host
  lease.pid = pid or lease.pid
  return lease


def dead_pid():
  process = subprocess.Popen([sys.executable, "-c", ""])
  process.wait()
  return process.pid


def test_lease_file_names_the_holder_and_goes_at_release(tmp_path):
  clock = FakeClock()
  lease = lease_on(tmp_path, clock)
  lease.acquire()
  written = json.loads((tmp_path / lease_lib.LEASE_FILE).read_text())
  assert written["host"] == lease.host and written["pid"] == os.getpid()
  assert written["since"] == clock.now - lease_lib.SETTLE_SECS
  lease.release()
  assert not (tmp_path / lease_lib.LEASE_FILE).exists()


def test_fresh_lease_refuses_a_second_trainer(tmp_path):
  clock = FakeClock()
  first = lease_on(tmp_path, clock, host="node-7", pid=4242)
  first.acquire()
  clock.now = first.read().heartbeat + STALE - 1
  second = lease_on(tmp_path, clock)
  with pytest.raises(lease_lib.WorkdirBusyError) as error:
    second.acquire()
  message = str(error.value)
  assert "\n" not in message
  assert re.search(r"host node-7, pid 4242, since \d{4}-\d\d-\d\d ", message)
  assert f"last heartbeat {STALE - 1:.0f} s ago" in message
  # The running trainer's lease is untouched.
  assert first.read().token == first.token and first.beat()
  first.release()


def test_heartbeats_keep_the_lease_fresh(tmp_path):
  clock = FakeClock()
  first = lease_on(tmp_path, clock, host="node-7")
  first.acquire()
  for _ in range(4):
    clock.now += STALE - 1
    assert first.beat()
  with pytest.raises(lease_lib.WorkdirBusyError, match="node-7"):
    lease_on(tmp_path, clock).acquire()
  first.release()


def test_stale_heartbeat_is_taken_over_with_a_warning(tmp_path, caplog):
  clock = FakeClock()
  first = lease_on(tmp_path, clock, host="node-7", pid=4242)
  first.acquire()
  clock.now = first.read().heartbeat + STALE + 1
  second = lease_on(tmp_path, clock)
  second.acquire()
  assert "no heartbeat for 91 s (limit 90 s)" in caplog.text
  assert "host node-7, pid 4242" in caplog.text
  # The old holder, if it still runs, finds out and stops beating; its
  # release leaves the new holder's lease in place.
  assert not first.beat() and first.lost_to.token == second.token
  first.release()
  assert second.read().token == second.token
  second.release()


def test_dead_pid_on_this_host_is_taken_over_at_once(tmp_path, caplog):
  clock = FakeClock()
  pid = dead_pid()
  lease_on(tmp_path, clock, pid=pid).acquire()
  lease_on(tmp_path, clock).acquire()
  assert f"pid {pid} no longer runs on this host" in caplog.text


def test_live_pid_on_this_host_is_not_taken_over(tmp_path):
  clock = FakeClock()
  with subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"]
  ) as p:
    try:
      lease_on(tmp_path, clock, pid=p.pid).acquire()
      with pytest.raises(lease_lib.WorkdirBusyError, match=f"pid {p.pid},"):
        lease_on(tmp_path, clock).acquire()
    finally:
      p.kill()


def test_simultaneous_start_the_last_writer_holds_it(tmp_path):
  """Both read "no lease"; the other writes during this one's settle time."""
  clock = FakeClock()
  first = lease_on(tmp_path, clock, host="node-1")
  other = lease_on(tmp_path, clock, host="node-2")
  other.since = clock.now
  clock.on_sleep = other._write  # pylint: disable=protected-access
  with pytest.raises(lease_lib.WorkdirBusyError, match="node-2"):
    first.acquire()
  assert first.read().token == other.token


def test_unwritable_lease_is_one_line_naming_it(tmp_path):
  (tmp_path / "file").write_text("")
  workdir = tmp_path / "file" / "run"
  with pytest.raises(OSError, match=r"lease.json: cannot take the lease: "):
    lease_on(workdir, FakeClock()).acquire()


def test_heartbeat_thread_refreshes_on_any_tf_filesystem():
  workdir = "ram://lease_test"
  tf.io.gfile.makedirs(workdir)
  lease = lease_lib.Lease(workdir, heartbeat_secs=0.05, settle_secs=0)
  lease.acquire()
  first = lease.read().heartbeat
  deadline = time.time() + 10
  while lease.read().heartbeat == first and time.time() < deadline:
    time.sleep(0.02)
  assert lease.read().heartbeat > first
  lease.release()
  assert not tf.io.gfile.exists(lease.path)


def train_process(workdir, num_steps=1000):
  return subprocess.Popen(
    [
      sys.executable,
      "-m",
      "hvrnn_tf.train",
      f"--workdir={workdir}",
      "--gin_file=gin/tiny.gin",
      f"--gin_param=train.num_steps = {num_steps}",
      "--gin_param=train.log_every = 1",
      "--gin_param=train.checkpoint_every = 2",
      "--gin_param=train.image_summary_every = 0",
    ],
    cwd=REPO_ROOT,
    env=ENV,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )


def wait_for(process, pattern, timeout=240):
  """Reads `process`'s stderr up to a line matching `pattern`: the match."""
  deadline = time.time() + timeout
  log = []
  for line in process.stderr:
    log.append(line)
    match = re.search(pattern, line)
    if match:
      return match
    if time.time() > deadline:
      break
  raise AssertionError(f"no {pattern!r} in:\n" + "".join(log)[-3000:])


@pytest.mark.slow  # three training processes, ~1 min on 2 cores
def test_second_trainer_is_refused_and_a_killed_ones_lease_taken_over(
  tmp_path,
):
  first = train_process(tmp_path)
  try:
    wait_for(first, r"step 2/1000")
    second = subprocess.run(
      train_process(tmp_path).args,
      cwd=REPO_ROOT,
      env=ENV,
      capture_output=True,
      text=True,
      timeout=240,
    )
    assert second.returncode == 1
    assert re.search(
      rf"^hvrnn_tf.train: error: workdir .* is in use by another trainer "
      rf"\(host {re.escape(socket.gethostname())}, pid {first.pid}, since ",
      second.stderr.splitlines()[-1],
    ), second.stderr[-3000:]
    # The first one trains on, still holding the lease.
    step = int(wait_for(first, r"step (\d+)/1000").group(1))
    wait_for(first, rf"step {step + 2}/1000")
    holder = json.loads((tmp_path / lease_lib.LEASE_FILE).read_text())
    assert holder["pid"] == first.pid
    first.send_signal(signal.SIGKILL)
    first.wait()
  finally:
    first.kill()
    first.wait()
  third = train_process(tmp_path)
  try:
    taken = wait_for(third, r"Taking over the stale lease.*")
    assert f"pid {first.pid} no longer runs on this host" in taken.group(0)
    resumed = wait_for(third, r"Resumed from .*ckpt-\d+ at step (\d+)")
    wait_for(third, rf"step {int(resumed.group(1)) + 1}/1000")
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=120) == 128 + signal.SIGTERM
  finally:
    third.kill()
    third.wait()
  assert not (tmp_path / lease_lib.LEASE_FILE).exists()
