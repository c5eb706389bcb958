"""The training loop's hooks: checkpoints, signals, divergence, summaries,
log lines, the operative config and the final samples (see training_loop)."""

import os
import time

from absl import logging
import tensorflow as tf

import gin
from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import samples
from hvrnn_tf.evaluation import visualize
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import preemption
from hvrnn_tf.training import summaries as summaries_lib
from hvrnn_tf.training.loop import Hook
from hvrnn_tf.training.loop import LoopState
from hvrnn_tf.utils import atomic_write


class DivergenceError(RuntimeError):
  """Training stopped after too many consecutive non-finite steps."""


class SummaryHook(Hook):
  """Scalars every `every` steps and at the end; owns the run's writer."""

  def __init__(self, writer: summaries_lib.SummaryWriter, every: int):
    self.writer, self.every = writer, every

  def __exit__(self, *exc_info):
    return self.writer.__exit__(*exc_info)

  def after_step(self, state: LoopState) -> None:
    if not summaries_lib.due(state.step, self.every, state.num_steps):
      return
    with self.writer.at(state.step):
      for name, value in state.metrics.items():
        tf.summary.scalar(name, value)
      tf.summary.scalar(
        "steps_per_second", state.progress.overall_rate(state.step)
      )
      tf.summary.scalar(
        "skipped_corrupt_records", inputs.skipped_records_counter()
      )
      tf.summary.scalar("skipped_nonfinite_steps", state.trainer.skipped_steps)
    # What was logged survives a kill (flush is cheap, no fsync).
    self.writer.flush()


class ImageSummaryHook(Hook):
  """Every `every` steps and at the end (chief only; every 0: off): the
  first sequence's truth / reconstruction / prior sample as a strip of the
  predicted frames and as a GIF (context included), and histograms of the
  latents' prior and posterior standard deviations per level."""

  def __init__(self, writer: summaries_lib.SummaryWriter, every: int):
    self.writer, self.every = writer, every

  def after_step(self, state: LoopState) -> None:
    if not self.every or state.nonfinite:
      return
    if not summaries_lib.due(state.step, self.every, state.num_steps):
      return
    trainer = state.trainer
    videos = trainer.summary_videos(state.video, state.reconstruction)
    c = trainer.config.context_frames
    with self.writer.at(state.step):
      tf.summary.image(
        "truth_reconstruction_prior",
        visualize.image_strip(videos[:, c:])[None],
      )
      summaries_lib.gif(
        "truth_reconstruction_prior_gif", visualize.video_grid(videos)
      )
      for level, scales in enumerate(trainer.latent_scales(state.video)):
        for name, scale in zip(("prior", "posterior"), scales):
          tf.summary.histogram(f"sigma_level_{level}/{name}", scale)


class ProfilerHook(Hook):
  """Records steps `first`..`last` with the TF profiler into
  LOGDIR/plugins/profile (TensorBoard's Profile tab)."""

  def __init__(self, logdir: str, first: int, last: int):
    self.logdir, self.first, self.last = logdir, first, last
    self.running = False

  def __exit__(self, *exc_info):
    self._stop()
    return False

  def after_step(self, state: LoopState) -> None:
    if state.step == self.first - 1:
      tf.profiler.experimental.start(self.logdir)
      self.running = True
    elif state.step == self.last:
      self._stop()

  def _stop(self) -> None:
    if self.running:
      self.running = False
      tf.profiler.experimental.stop()
      logging.info("Profile written to %s/plugins/profile", self.logdir)


class LoggingHook(Hook):
  """A progress line every `every` steps and at the end."""

  def __init__(self, every: int):
    self.every = every

  def after_step(self, state: LoopState) -> None:
    if state.step % self.every and not state.last:
      return
    m = state.metrics
    logging.info(
      "step %d/%d  loss %.2f  nll %.2f  kl %.2f  beta %.3f  %s",
      state.step,
      state.num_steps,
      m["loss"],
      m["nll"],
      m["kl"],
      m["beta"],
      state.progress.report(state.step),
    )


class OperativeConfigHook(Hook):
  """After the first step, saves every setting the run uses (file + text summary)."""

  def __init__(self, workdir: str, writer: summaries_lib.SummaryWriter):
    self.workdir, self.writer = workdir, writer

  def after_step(self, state: LoopState) -> None:
    if state.step != state.start_step + 1:
      return
    config = gin.operative_config_str()
    path = os.path.join(self.workdir, checkpointing.OPERATIVE_CONFIG)
    try:
      atomic_write.write_text(path, config)
    except (OSError, tf.errors.OpError) as e:
      raise OSError(
        f"cannot write {path}: {checkpointing.error_message(e)}"
      ) from e
    with self.writer.at(state.step):
      tf.summary.text("operative_config", "```\n" + config + "\n```")


class DivergenceHook(Hook):
  """Logs non-finite steps; `limit` of them in a row raise DivergenceError."""

  def __init__(
    self, limit: int, writer: summaries_lib.SummaryWriter, checkpoint_dir: str
  ):
    self.limit, self.writer, self.checkpoint_dir = limit, writer, checkpoint_dir

  def after_step(self, state: LoopState) -> None:
    if not state.nonfinite:
      return
    streak = state.nonfinite_streak
    logging.warning(
      "step %d: non-finite loss or gradients (loss %s); update skipped "
      "(%d in a row, %d in total).",
      state.step,
      float(state.metrics["loss"]),
      len(streak),
      int(state.trainer.skipped_steps.numpy()),
    )
    if len(streak) >= self.limit:
      self.writer.flush()
      raise DivergenceError(divergence_message(streak, self.checkpoint_dir))


def divergence_message(steps, checkpoint_dir: str) -> str:
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  kept = (
    f"the last checkpoint, {latest} (step "
    f"{checkpointing.checkpoint_number(latest)}), is intact"
    if latest
    else "no checkpoint was written yet"
  )
  return (
    f"training diverged: steps {steps[0]}-{steps[-1]} had a non-finite "
    f"loss or gradients ({len(steps)} in a row, the limit "
    f"train.max_consecutive_nonfinite_steps). Stopped without saving; "
    f"{kept}. Lower the learning rate or check the data, then re-run to "
    "resume from it."
  )


class CheckpointHook(Hook):
  """Saves every `every` steps, every `every_secs` seconds (0: off), at the
  end and when the loop stops early; never during a non-finite streak (the
  last checkpoint keeps the last good state)."""

  def __init__(
    self,
    manager: tf.train.CheckpointManager,
    every: int,
    every_secs: float,
    writer: summaries_lib.SummaryWriter,
    saved_step: int | None,
  ):
    self.manager, self.every, self.every_secs = manager, every, every_secs
    self.writer, self.saved_step = writer, saved_step
    self.saved_time = time.time()

  def requests(self, state: LoopState) -> dict:
    return {
      "save": bool(self.every_secs)
      and time.time() - self.saved_time >= self.every_secs
    }

  def after_step(self, state: LoopState) -> None:
    due = state.step % self.every == 0 or state.save_now
    if state.last or (due and not state.nonfinite_streak):
      self._save(state.step)

  def end(self, state: LoopState) -> None:
    if state.stop and self.saved_step != state.step:
      self._save(state.step)

  def _save(self, step: int) -> None:
    self.writer.flush()
    logging.info("Writing checkpoint %d", step)
    logging.info("Saved checkpoint %s", checkpointing.save(self.manager, step))
    self.saved_step, self.saved_time = step, time.time()


class PreemptionHook(Hook):
  """SIGTERM / SIGINT: stop after the current step (the CheckpointHook saves).

  The stop is agreed across workers; `state.interrupted_by` names the signal
  (SIGTERM where another worker received it).
  """

  def __init__(self, checkpoint_dir: str):
    self.checkpoint_dir = checkpoint_dir
    self.watcher = preemption.SignalWatcher()

  def __enter__(self):
    self.watcher.__enter__()
    return self

  def __exit__(self, *exc_info):
    return self.watcher.__exit__(*exc_info)

  def requests(self, state: LoopState) -> dict:
    return {"stop": self.watcher.received is not None}

  def end(self, state: LoopState) -> None:
    if not state.stop:
      return
    state.interrupted_by = self.watcher.name or "SIGTERM"
    logging.warning(
      "%s received: stopped at step %d with a checkpoint in %s; "
      "re-run the same command to resume.",
      state.interrupted_by,
      state.step,
      self.checkpoint_dir,
    )


class SampleHook(Hook):
  """At the end of a run that was not interrupted: sample GIFs/PNGs of
  `sequences` test sequences under WORKDIR/samples/step_N (chief only)."""

  def __init__(
    self, workdir: str, sequences: int, samples_per_sequence: int, seed: int
  ):
    self.workdir, self.sequences = workdir, sequences
    self.samples_per_sequence, self.seed = samples_per_sequence, seed

  def end(self, state: LoopState) -> None:
    if state.interrupted_by or not self.sequences:
      return
    model = state.trainer.model
    videos = samples.test_videos(model.config, self.sequences)
    output_dir = os.path.join(self.workdir, "samples", f"step_{state.step}")
    samples.write_samples(
      model, videos, output_dir, self.samples_per_sequence, self.seed
    )
    logging.info("Samples written to %s", output_dir)
