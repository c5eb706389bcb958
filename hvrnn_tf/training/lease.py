"""One writer per workdir: the training chief holds a lease file in it.

The lease (LEASE_FILE, JSON) names its holder: host, pid, start time and a
heartbeat time that a daemon thread rewrites every `heartbeat_secs`. A
second trainer on the workdir stops with WorkdirBusyError, one line naming
the holder, and leaves the running one alone. A stale lease, one whose
heartbeat is older than `stale_after_beats` beats or whose pid no longer
runs on this host, is taken over with a warning. eval, sample and export
only read a workdir and never look at the lease.

Every access goes through tf.io.gfile, so any TensorFlow filesystem works;
none of them offers an exclusive create. Two trainers starting together are
told apart by writing the lease, waiting `settle_secs` and reading it back:
the last writer holds it, the other is refused. Both can still start if one
stalls for longer than `settle_secs` between reading "no lease" and writing
its own; the first heartbeat after that finds the other's lease and logs an
error (the lease is lost; training goes on). Staleness compares heartbeats
written by the holder's clock with the reader's: hosts' clocks must agree
to well within the stale limit, and distinct machines need distinct host
names (containers sharing one would judge each other's pids dead).
"""

import contextlib
import dataclasses
import datetime
import json
import os
import socket
import threading
import time
import uuid

from absl import logging
import tensorflow as tf

from hvrnn_tf.utils import atomic_write
from hvrnn_tf.utils import filesystems

LEASE_FILE = "lease.json"
HEARTBEAT_SECS = 30.0
# A lease is stale after this many heartbeats without one (90 s).
STALE_AFTER_BEATS = 3
SETTLE_SECS = 1.0


class WorkdirBusyError(OSError):
  """Another trainer holds the workdir's lease."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """The contents of a lease file (times in seconds since the epoch)."""

  host: str
  pid: int
  since: float
  heartbeat: float
  token: str

  def describe(self) -> str:
    since = datetime.datetime.fromtimestamp(self.since, datetime.UTC)
    return (
      f"host {self.host}, pid {self.pid}, since {since:%Y-%m-%d %H:%M:%S} UTC"
    )


def pid_alive(pid: int) -> bool:
  """Whether a process `pid` runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Another user's process.
    return True
  return True


class Lease:
  """This process's lease on `workdir`: acquire(), then release().

  `clock` has time() and sleep(secs) (the time module; tests pass a fake).
  """

  def __init__(
    self,
    workdir: str,
    heartbeat_secs: float = HEARTBEAT_SECS,
    stale_after_beats: int = STALE_AFTER_BEATS,
    settle_secs: float = SETTLE_SECS,
    clock=time,
  ):
    self.workdir = workdir
    self.path = os.path.join(workdir, LEASE_FILE)
    self.heartbeat_secs = heartbeat_secs
    self.stale_secs = heartbeat_secs * stale_after_beats
    self.settle_secs = settle_secs
    self.clock = clock
    self.host, self.pid = socket.gethostname(), os.getpid()
    self.token = uuid.uuid4().hex
    self.since = None
    self.lost_to: Holder | None = None
    self._stop = threading.Event()
    self._thread = None

  def read(self) -> Holder | None:
    """The lease in the workdir; None if there is none (or it is garbled)."""
    try:
      with tf.io.gfile.GFile(self.path) as f:
        text = f.read()
    except tf.errors.NotFoundError:
      return None
    try:
      return Holder(**json.loads(text))
    except (ValueError, TypeError):
      logging.warning("Ignoring the unreadable lease %s: %r", self.path, text)
      return None

  def stale_reason(self, holder: Holder) -> str | None:
    """Why `holder`'s lease may be taken over; None while it is fresh."""
    age = self.clock.time() - holder.heartbeat
    if age > self.stale_secs:
      return f"no heartbeat for {age:.0f} s (limit {self.stale_secs:.0f} s)"
    if holder.host == self.host and (
      holder.pid == self.pid or not pid_alive(holder.pid)
    ):
      return f"pid {holder.pid} no longer runs on this host"
    return None

  def acquire(self) -> None:
    """Takes the lease and starts the heartbeat.

    Raises:
      WorkdirBusyError: another trainer holds a fresh lease.
      OSError: the lease cannot be read or written (one line).
    """
    try:
      self._take()
    except tf.errors.OpError as e:
      raise OSError(
        filesystems.error_line(self.path, e, "cannot take the lease")
      ) from e
    self._thread = threading.Thread(
      target=self._heartbeats, name="workdir-lease", daemon=True
    )
    self._thread.start()

  def _take(self) -> None:
    holder = self.read()
    if holder is not None:
      reason = self.stale_reason(holder)
      if reason is None:
        raise WorkdirBusyError(self._busy(holder))
      logging.warning(
        "Taking over the stale lease %s of %s: %s",
        self.path,
        holder.describe(),
        reason,
      )
    self.since = self.clock.time()
    self._write()
    self.clock.sleep(self.settle_secs)
    holder = self.read()
    if holder is None or holder.token != self.token:
      raise WorkdirBusyError(
        self._busy(holder) if holder else f"{self.path} vanished while taken"
      )

  def beat(self) -> bool:
    """Rewrites the heartbeat; False (and logs) if another holds the lease."""
    holder = self.read()
    if holder is not None and holder.token != self.token:
      self.lost_to = holder
      logging.error(
        "Lost the lease %s to %s: two trainers write this workdir.",
        self.path,
        holder.describe(),
      )
      return False
    self._write()
    return True

  def release(self) -> None:
    """Stops the heartbeat and removes the lease if it is still this one."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    holder = self.read()
    if holder is not None and holder.token == self.token:
      tf.io.gfile.remove(self.path)

  def _heartbeats(self) -> None:
    while not self._stop.wait(self.heartbeat_secs):
      try:
        if not self.beat():
          return
      except (OSError, tf.errors.OpError) as e:  # Retried at the next beat.
        logging.warning("Heartbeat of %s failed: %s", self.path, e)

  def _write(self) -> None:
    holder = Holder(
      self.host, self.pid, self.since, self.clock.time(), self.token
    )
    atomic_write.write_text(self.path, json.dumps(dataclasses.asdict(holder)))

  def _busy(self, holder: Holder) -> str:
    age = self.clock.time() - holder.heartbeat
    return (
      f"workdir {self.workdir!r} is in use by another trainer "
      f"({holder.describe()}, last heartbeat {age:.0f} s ago); stop it "
      f"first (a lease without heartbeat for {self.stale_secs:.0f} s is "
      "taken over)"
    )


@contextlib.contextmanager
def held(workdir: str, enabled: bool = True):
  """Holds `workdir`'s lease for the block (a no-op when not `enabled`)."""
  if not enabled:
    yield None
    return
  lease = Lease(workdir)
  lease.acquire()
  try:
    yield lease
  finally:
    lease.release()
