"""Tests of the training loop: steps, hook order, agreed stops, NaN batches."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.training import loop
from hvrnn_tf.training.loop import Hook


class FakeTrainer:
  """Counts steps; the steps in `nonfinite` report a non-finite loss."""

  strategy = tf.distribute.get_strategy()

  def __init__(self, start=0, nonfinite=()):
    self.current_step, self.nonfinite, self.batches = start, nonfinite, []

  def train_step(self, video):
    self.batches.append(video)
    self.current_step += 1
    bad = float(self.current_step in self.nonfinite)
    return {"loss": 1.0, "nonfinite": bad}, None


class Recorder(Hook):
  """Records its calls into a shared list; asks to stop before `stop_at`."""

  def __init__(self, name, calls, stop_at=None):
    self.name, self.calls, self.stop_at = name, calls, stop_at

  def __enter__(self):
    self.calls.append((self.name, "enter"))
    return self

  def __exit__(self, *exc_info):
    self.calls.append((self.name, "exit"))
    return False

  def requests(self, state):
    return {"stop": state.step == self.stop_at}

  def after_step(self, state):
    self.calls.append((self.name, state.step, list(state.nonfinite_streak)))

  def end(self, state):
    self.calls.append((self.name, "end", state.step, state.stop))


def test_runs_to_num_steps_calling_hooks_in_order():
  calls = []
  trainer = FakeTrainer(start=1, nonfinite=(3,))
  state = loop.run_loop(
    trainer, iter(range(10)), 4, [Recorder("a", calls), Recorder("b", calls)]
  )
  assert state.step == 4 and state.start_step == 1 and state.last
  assert trainer.batches == [0, 1, 2]
  assert calls == [
    ("a", "enter"),
    ("b", "enter"),
    ("a", 2, []),
    ("b", 2, []),
    ("a", 3, [3]),
    ("b", 3, [3]),
    ("a", 4, []),
    ("b", 4, []),
    ("a", "end", 4, False),
    ("b", "end", 4, False),
    ("b", "exit"),
    ("a", "exit"),
  ]
  assert state.metrics == {"loss": 1.0}


def test_a_stop_request_ends_the_loop_before_the_next_step():
  calls = []
  trainer = FakeTrainer()
  state = loop.run_loop(
    trainer, iter(range(10)), 9, [Recorder("a", calls, stop_at=2)]
  )
  assert state.step == 2 and state.stop and not state.last
  assert trainer.batches == [0, 1]
  assert calls[-2:] == [("a", "end", 2, True), ("a", "exit")]


def test_hooks_exit_when_a_hook_raises():
  calls = []

  class Failing(Hook):
    def after_step(self, state):
      raise RuntimeError("boom")

  with pytest.raises(RuntimeError, match="boom"):
    loop.run_loop(
      FakeTrainer(), iter(range(3)), 3, [Recorder("a", calls), Failing()]
    )
  assert calls[-1] == ("a", "exit")


def test_poison_batches_turns_the_chosen_steps_into_nan():
  batches = [tf.ones([2]) for _ in range(4)]
  poisoned = list(
    loop.poison_batches(
      iter(batches), (3, 4), tf.distribute.get_strategy(), start_step=1
    )
  )
  assert [bool(np.isnan(b.numpy()).all()) for b in poisoned] == [
    False,
    True,
    True,
    False,
  ]
