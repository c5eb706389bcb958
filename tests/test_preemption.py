"""Tests of turning SIGTERM / SIGINT into a checkpoint-and-stop request."""

import os
import signal
import threading
import time

import pytest

from hvrnn_tf.training import preemption


def wait_for(predicate, timeout=5.0):
  deadline = time.time() + timeout
  while not predicate() and time.time() < deadline:
    time.sleep(0.01)
  return predicate()


def test_first_signal_sets_the_flag_second_acts_as_before():
  original = signal.getsignal(signal.SIGINT)
  if original is signal.SIG_IGN:
    # A shell without job control starts background jobs ignoring SIGINT.
    pytest.skip(
      "SIGINT is ignored in this process (started in the "
      "background): there is no KeyboardInterrupt to restore"
    )
  with preemption.SignalWatcher() as watcher:
    assert watcher.received is None
    os.kill(os.getpid(), signal.SIGINT)
    assert wait_for(lambda: watcher.received is not None)
    assert watcher.received == signal.SIGINT and watcher.name == "SIGINT"
    # The first signal gave SIGINT its previous handler back: Ctrl-C again
    # interrupts as usual.
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(5)
  assert signal.getsignal(signal.SIGINT) is original


def test_sigterm_is_recorded_and_handlers_are_restored():
  original = signal.getsignal(signal.SIGTERM)
  with preemption.SignalWatcher() as watcher:
    os.kill(os.getpid(), signal.SIGTERM)
    assert wait_for(lambda: watcher.received is not None)
    assert watcher.name == "SIGTERM"
  assert signal.getsignal(signal.SIGTERM) is original


def test_outside_the_main_thread_nothing_is_installed():
  original = signal.getsignal(signal.SIGTERM)
  seen = []

  def run():
    with preemption.SignalWatcher() as watcher:
      seen.append(signal.getsignal(signal.SIGTERM))
      seen.append(watcher.received)

  thread = threading.Thread(target=run)
  thread.start()
  thread.join()
  assert seen == [original, None]
