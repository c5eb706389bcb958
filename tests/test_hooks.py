"""Tests of the training hooks: checkpoint policy, divergence, signals,
summaries (scalars, images, GIFs, histograms), the profiler, samples."""

import os
import signal
import types

import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from hvrnn_tf.testing import configs
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import hooks
from hvrnn_tf.training import loop
from hvrnn_tf.training import summaries as summaries_lib
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.progress import Progress
from hvrnn_tf.training.trainer import Trainer


def make_state(step, num_steps=10, streak=(), stop=False, save_now=False):
  trainer = types.SimpleNamespace(
    skipped_steps=tf.Variable(len(streak), dtype=tf.int64)
  )
  state = loop.LoopState(trainer, num_steps, 0, step, Progress(0, num_steps))
  state.nonfinite_streak, state.stop, state.save_now = (
    list(streak),
    stop,
    save_now,
  )
  state.metrics = {"loss": 2.0, "nll": 1.5, "kl": 0.5, "beta": 1.0}
  return state


@pytest.fixture
def checkpoint_hook(tmp_path):
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(step=step), str(tmp_path / "ckpt"), max_to_keep=10
  )
  writer = summaries_lib.SummaryWriter(str(tmp_path / "train"), chief=True)
  hook = hooks.CheckpointHook(
    manager, every=3, every_secs=0, writer=writer, saved_step=None
  )
  hook.saved = lambda: [
    checkpointing.checkpoint_number(p) for p in manager.checkpoints
  ]
  return hook


def test_checkpoints_every_n_steps_at_the_end_and_not_during_a_streak(
  checkpoint_hook,
):
  for step, streak in [
    (1, ()),
    (3, ()),
    (5, ()),
    (6, (6,)),
    (7, ()),
    (10, (9, 10)),
  ]:
    checkpoint_hook.after_step(make_state(step, streak=streak))
  assert checkpoint_hook.saved() == [3, 10]  # 6 was non-finite; 10 is last


def test_checkpoints_when_asked_and_when_stopped_early(checkpoint_hook):
  checkpoint_hook.after_step(make_state(4, save_now=True))
  checkpoint_hook.end(make_state(4, stop=True))  # already saved at 4
  checkpoint_hook.end(make_state(5, stop=True))
  assert checkpoint_hook.saved() == [4, 5]
  checkpoint_hook.every_secs = 1e-9
  assert checkpoint_hook.requests(make_state(5)) == {"save": True}


def test_divergence_stops_at_the_limit_and_says_what_is_kept(tmp_path):
  writer = summaries_lib.SummaryWriter(str(tmp_path / "train"), chief=True)
  hook = hooks.DivergenceHook(3, writer, str(tmp_path / "none"))
  hook.after_step(make_state(5, streak=(4, 5)))
  with pytest.raises(
    hooks.DivergenceError,
    match="steps 4-6.*no checkpoint was written yet",
  ):
    hook.after_step(make_state(6, streak=(4, 5, 6)))


def test_a_signal_becomes_a_stop_request_and_names_the_outcome(tmp_path):
  hook = hooks.PreemptionHook(str(tmp_path))
  with hook:
    assert hook.requests(make_state(1)) == {"stop": False}
    os.kill(os.getpid(), signal.SIGTERM)
    assert hook.requests(make_state(1)) == {"stop": True}
  state = make_state(2, stop=True)
  hook.end(state)
  assert state.interrupted_by == "SIGTERM"


def test_summaries_every_n_steps_and_at_the_end(tmp_path):
  writer = summaries_lib.SummaryWriter(str(tmp_path), chief=True)
  with hooks.SummaryHook(writer, every=4) as hook:
    for step in range(1, 11):
      hook.after_step(make_state(step))
  events = event_accumulator.EventAccumulator(
    str(tmp_path), size_guidance={"tensors": 0}
  ).Reload()
  assert [e.step for e in events.Tensors("loss")] == [4, 8, 10]
  assert {
    "nll",
    "kl",
    "steps_per_second",
    "skipped_nonfinite_steps",
    "skipped_corrupt_records",
  } <= set(events.Tags()["tensors"])


def test_no_samples_after_an_interrupted_run(tmp_path):
  hook = hooks.SampleHook(str(tmp_path), 2, 1, seed=0)
  state = make_state(3)
  state.interrupted_by = "SIGINT"
  hook.end(state)  # would need the model: returns first
  assert not (tmp_path / "samples").exists()


def test_profiler_records_the_given_steps(tmp_path):
  with hooks.ProfilerHook(str(tmp_path), first=3, last=4) as hook:
    for step in range(1, 6):
      hook.after_step(make_state(step))
      tf.reduce_sum(tf.ones([64, 64]) @ tf.ones([64, 64]))
      assert hook.running == (step in (2, 3))  # recording steps 3 and 4
  assert tf.io.gfile.glob(str(tmp_path / "plugins/profile/*/*.xplane.pb"))


def test_image_summaries_write_a_strip_a_gif_and_sigma_histograms(tmp_path):
  config = configs.model_config("micro")
  trainer = Trainer(
    config, TrainConfig(num_steps=4, batch_size=2, lr_reference_batch=2)
  )
  video = tf.random.stateless_uniform([2, 3, 8, 8, 1], seed=[0, 1])
  _, reconstruction = trainer.train_step(video)
  writer = summaries_lib.SummaryWriter(str(tmp_path), chief=True)
  with writer:
    hook = hooks.ImageSummaryHook(writer, every=3)
    for step in (1, 3):
      state = make_state(step, num_steps=4)
      state.trainer, state.video = trainer, video
      state.reconstruction = reconstruction
      hook.after_step(state)
  events = event_accumulator.EventAccumulator(
    str(tmp_path), size_guidance={"tensors": 0}
  ).Reload()
  strip, gif = [
    events.Tensors(f"truth_reconstruction_prior{suffix}")
    for suffix in ("", "_gif")
  ]
  assert [e.step for e in strip] == [e.step for e in gif] == [3]
  # 3 rows of the 2 + 1 frames, side by side; the strip has 1 frame per row.
  assert gif[0].tensor_proto.string_val[:2] == [b"28", b"8"]
  assert strip[0].tensor_proto.string_val[:2] == [b"8", b"28"]
  for name in ("prior", "posterior"):
    (histogram,) = events.Tensors(f"sigma_level_0/{name}")
    buckets = tf.make_ndarray(histogram.tensor_proto)  # [k, (lo, hi, count)]
    assert buckets[:, 0].min() > 0  # standard deviations
    assert buckets[:, 2].sum() == 2 * 1 * 1 * 1 * config.latent_channels[0]
