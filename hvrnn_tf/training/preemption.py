"""Turns SIGTERM / SIGINT into a request to checkpoint and stop.

A training loop polls `SignalWatcher.received` between steps: a signal never
interrupts a step or a checkpoint write half-way. The first signal only sets
the flag and gives the signal its previous handler back, so a second one acts
as it would without the watcher (a second Ctrl-C raises KeyboardInterrupt, a
second SIGTERM kills); the checkpoint being written stays safe either way (see
checkpointing).
"""

import signal
import threading

from absl import logging

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalWatcher:
  """Context manager: records the first of `signals` received while active.

  Handlers can only be installed from the main thread; elsewhere the watcher
  does nothing (and says so in the log).
  """

  def __init__(self, signals=DEFAULT_SIGNALS):
    self.signals = tuple(signals)
    self.received = None  # signal.Signals of the first signal, or None.
    self._previous = {}

  @property
  def name(self) -> str | None:
    return self.received.name if self.received is not None else None

  def _handle(self, signum, frame):
    del frame
    if self.received is None:
      self.received = signal.Signals(signum)
    previous = self._previous.pop(signum, None)
    if previous is not None:
      signal.signal(signum, previous)

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      logging.warning(
        "Not in the main thread: %s will not be turned into a "
        "checkpoint-and-stop request.",
        [s.name for s in self.signals],
      )
      return self
    for signum in self.signals:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}
    return False
