"""The training loop: steps until done, everything else is a hook.

    state = run_loop(trainer, iterator, num_steps, hooks)

Before each step every hook may ask to stop or to save (`Hook.requests`); the
requests are agreed across workers in one collective, so all workers stop
and save at the same step. After each step every hook sees the `LoopState`
(`Hook.after_step`); at the end (num_steps reached, or a stop agreed) each
hook's `end` runs. Hooks are context managers, entered before the first step
and exited after the last (also when a hook raises).
"""

import contextlib
import dataclasses

import tensorflow as tf

from hvrnn_tf.training import distribute
from hvrnn_tf.training.progress import Progress


@dataclasses.dataclass
class LoopState:
  """What hooks see. `step` is the number of steps taken (1-based after a step).

  metrics: the last step's scalars (loss, nll, kl, kl_level_*, beta,
    learning_rate); video / reconstruction: its global batch and the first
    replica's posterior reconstruction.
  nonfinite_streak: steps of the current run of non-finite steps.
  stop / save_now: agreed requests for the coming step.
  interrupted_by: a hook that stopped the loop names why ("SIGTERM").
  """

  trainer: object
  num_steps: int
  start_step: int
  step: int
  progress: Progress
  metrics: dict | None = None
  video: object = None
  reconstruction: object = None
  nonfinite_streak: list = dataclasses.field(default_factory=list)
  stop: bool = False
  save_now: bool = False
  interrupted_by: str | None = None

  @property
  def last(self) -> bool:
    return self.step == self.num_steps

  @property
  def nonfinite(self) -> bool:
    return (
      bool(self.nonfinite_streak) and self.nonfinite_streak[-1] == self.step
    )


class Hook:
  """Base class: every method is optional."""

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    return False

  def requests(self, state: LoopState) -> dict:
    """Before a step: {"stop": bool, "save": bool} this worker asks for."""
    del state
    return {}

  def after_step(self, state: LoopState) -> None:
    pass

  def end(self, state: LoopState) -> None:
    pass


def run_loop(trainer, iterator, num_steps: int, hooks) -> LoopState:
  """Trains `trainer` on batches of `iterator` until step `num_steps`."""
  start = trainer.current_step
  state = LoopState(
    trainer, num_steps, start, start, Progress(start, num_steps)
  )
  with contextlib.ExitStack() as stack:
    for hook in hooks:
      stack.enter_context(hook)
    while state.step < num_steps:
      state.stop, state.save_now = _agreed_requests(
        trainer.strategy, hooks, state
      )
      if state.stop:
        break
      _step(trainer, next(iterator), state)
      for hook in hooks:
        hook.after_step(state)
    for hook in hooks:
      hook.end(state)
  return state


def _agreed_requests(strategy, hooks, state) -> list[bool]:
  requests = [hook.requests(state) for hook in hooks]
  local = [
    any(r.get(kind, False) for r in requests) for kind in ("stop", "save")
  ]
  return distribute.agree(strategy, local)


def _step(trainer, video, state: LoopState) -> None:
  metrics, reconstruction = trainer.train_step(video)
  state.step = trainer.current_step
  if bool(metrics.pop("nonfinite")):
    state.nonfinite_streak.append(state.step)
  else:
    state.nonfinite_streak = []
  state.metrics, state.video, state.reconstruction = (
    metrics,
    video,
    reconstruction,
  )


def poison_batches(
  iterator, steps, strategy: tf.distribute.Strategy, start_step: int
):
  """Yields `iterator`'s batches, those of `steps` (1-based) times NaN.

  A testing aid (train.debug_nonfinite_steps): a diverging step on demand.
  """
  step = start_step
  for video in iterator:
    step += 1
    if step in steps:
      video = strategy.run(lambda v: v * float("nan"), args=(video,))
    yield video
