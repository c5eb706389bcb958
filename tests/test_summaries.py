"""summaries.SummaryWriter: events reach the file; failures name the directory.

Lost writes on a full disk are tested in test_reliability.py (needs a tmpfs).
"""

import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

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
  with pytest.raises(
    OSError, match=f"cannot write TensorBoard summaries to {blocker}/train"
  ):
    summaries.SummaryWriter(str(blocker / "train"), chief=True)
