"""summaries.SummaryWriter: events reach the file; failures (an unwritable
directory, a full disk: needs a tmpfs) name the directory. GIF summaries and
when summaries are due."""

import io

import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from hvrnn_tf.testing import disks
from hvrnn_tf.training import summaries


def test_scalars_reach_the_events_file(tmp_path):
  with summaries.SummaryWriter(str(tmp_path), chief=True) as writer:
    for step in (1, 2):
      with writer.at(step):
        tf.summary.scalar("loss", 10.0 * step)
      writer.flush()
  accumulator = event_accumulator.EventAccumulator(
    str(tmp_path), size_guidance={"tensors": 0}
  ).Reload()
  assert [
    (e.step, float(tf.make_ndarray(e.tensor_proto)))
    for e in accumulator.Tensors("loss")
  ] == [(1, 10.0), (2, 20.0)]


def test_non_chief_writes_nothing(tmp_path):
  writer = summaries.SummaryWriter(str(tmp_path / "train"), chief=False)
  with writer, writer.at(1):
    tf.summary.scalar("loss", 1.0)
  assert not (tmp_path / "train").exists()


def test_unwritable_logdir_is_an_os_error_naming_it(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(OSError, match=f"{blocker}/train"):
    summaries.SummaryWriter(str(blocker / "train"), chief=True)


def test_lost_summary_writes_are_detected(small_disk):
  writer = summaries.SummaryWriter(str(small_disk / "train"), chief=True)
  with writer.at(1):
    tf.summary.scalar("loss", 1.0)
  writer.flush()
  disks.fill(small_disk)
  # TensorFlow reports some failed flushes and silently drops others (then
  # the events file stops growing); either is an OSError naming the file.
  with (
    pytest.raises(OSError, match=f"{small_disk}/train"),
    writer,
  ):
    for step in range(2, 100):  # the file's last page may still take a few
      with writer.at(step):
        tf.summary.text("big", "x" * 2000)
      writer.flush()
  # The failed writer is not left as the default writer of later summaries.
  assert not tf.summary.scalar("after", 1.0, step=0)


def test_gif_is_an_image_summary_of_an_animated_gif(tmp_path):
  frames = np.linspace(0, 1, 4 * 8 * 6 * 3).reshape([4, 8, 6, 3])
  writer = summaries.SummaryWriter(str(tmp_path), chief=True)
  with writer, writer.at(5):
    summaries.gif("sample", frames)
  accumulator = event_accumulator.EventAccumulator(
    str(tmp_path), size_guidance={"tensors": 0}
  ).Reload()
  (event,) = accumulator.Tensors("sample")
  assert accumulator.SummaryMetadata("sample").plugin_data.plugin_name == (
    "images"
  )
  width, height, data = event.tensor_proto.string_val
  assert (event.step, width, height) == (5, b"6", b"8")
  with Image.open(io.BytesIO(data)) as image:
    assert (image.format, image.n_frames, image.size) == ("GIF", 4, (6, 8))


def test_due_every_n_steps_and_at_the_last():
  due = [int(step) for step in range(1, 11) if summaries.due(step, 4, 10)]
  assert due == [4, 8, 10]
