"""The training run's TensorBoard writer, which notices lost writes."""

import contextlib
import os

from tensorboard.plugins.image import metadata as image_metadata
import tensorflow as tf
from tensorflow.python.ops import summary_ops_v2

from hvrnn_tf.evaluation import visualize
from hvrnn_tf.training import checkpointing


class SummaryWriter:
  """The run's TensorBoard writer; a failing write becomes a clear OSError.

  Use it as a context manager (or `close()` it): a writer left open keeps its
  file and may report its failures in another writer's later operation.

  TensorFlow's summary writer drops events silently when its file cannot be
  written (disk full, file system gone read-only), so after each flush of
  new events this checks that the events file grew.
  """

  def __init__(self, logdir: str, chief: bool):
    self.logdir = logdir
    self.events_file, self._size, self._pending = None, 0, False
    if not chief:
      self.writer = tf.summary.create_noop_writer()
      return
    before = set(tf.io.gfile.glob(os.path.join(logdir, "events.out.*")))
    with self._errors():
      self.writer = tf.summary.create_file_writer(logdir)
      self.writer.flush()
    new = set(tf.io.gfile.glob(os.path.join(logdir, "events.out.*"))) - before
    if len(new) == 1:
      self.events_file = new.pop()
      self._size = tf.io.gfile.stat(self.events_file).length

  @contextlib.contextmanager
  def _errors(self):
    try:
      yield
    except tf.errors.OpError as e:
      raise OSError(
        f"cannot write TensorBoard summaries to {self.logdir}: "
        f"{checkpointing.error_message(e)}"
      ) from e

  @contextlib.contextmanager
  def at(self, step: int):
    # tf.summary's as_default() flushes on exit BEFORE restoring the previous
    # default writer, so a failed flush (disk full) would leave this writer
    # the process's default for every later summary: restore it here.
    state = summary_ops_v2._summary_state  # pylint: disable=protected-access
    previous = state.writer, state.step
    try:
      with self._errors(), self.writer.as_default(step=step):
        yield
    finally:
      state.writer, state.step = previous
    self._pending = True

  def flush(self):
    with self._errors():
      self.writer.flush()
    if not (self._pending and self.events_file):
      return
    self._pending = False
    with self._errors():
      size = tf.io.gfile.stat(self.events_file).length
    if size <= self._size:
      raise OSError(
        f"cannot write TensorBoard summaries to {self.events_file}: it did "
        "not grow after new summaries were flushed (disk full or file "
        "system not writable?)"
      )
    self._size = size

  def close(self):
    """Flushes (raising a lost write) and releases the events file."""
    try:
      self.flush()
    finally:
      with self._errors():
        self.writer.close()

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *unused):
    try:
      self.close()
    except OSError:
      if exc_type is None:
        raise
    return False


def due(step, every: int, last_step):
  """Whether summaries written every `every` steps and at `last_step` are
  due at `step` (ints or tensors; a bool tensor)."""
  return tf.logical_or(tf.equal(step % every, 0), tf.equal(step, last_step))


def gif(tag: str, frames, fps: float = 4.0) -> None:
  """An animated image summary (TensorBoard's image plugin shows GIFs).

  Args:
    frames: [T, H, W, C] floats in [0, 1].
  """
  _, height, width, _ = frames.shape
  tf.summary.write(
    tag,
    tf.constant([str(width), str(height), visualize.encode_gif(frames, fps)]),
    metadata=image_metadata.create_summary_metadata(
      display_name=None, description=None
    ),
  )
