"""Tests of hvrnn_tf.data.tfrecord_reader: windows of stored sequences, checked."""

from pathlib import Path
import re

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.data import records
from hvrnn_tf.data import shard_writer
from hvrnn_tf.data import tfrecord_reader

LENGTH, SHAPE = 8, (16, 16, 3)


def numbered_sequences(
  count: int, size: int = 16
) -> list[dict[str, np.ndarray]]:
  """LENGTH frames [size, size, 3] each; frame t of sequence i is all 10 * i + t."""
  ids = 10 * np.arange(count)[:, None] + np.arange(LENGTH)
  frames = np.broadcast_to(
    ids[:, :, None, None, None].astype(np.uint8), (count, LENGTH, size, size, 3)
  )
  return [{"frames": f.copy()} for f in frames]


def _foreign_file(path: Path, sequences) -> str:
  """A TFRecord file without the shard naming and metadata of `shard_writer`."""
  shard_writer.write_shard(
    str(path), [records.serialize_sequence(s) for s in sequences]
  )
  return str(path)


def numbered_shards(folder: Path) -> str:
  """Writes 5 `numbered_sequences` as GZIP shards of 2; returns their glob."""
  shard_writer.write_shards(
    numbered_sequences(5), str(folder), "data", 2, compression="GZIP"
  )
  return str(folder / "data-*")


def corrupt_middle(path: str) -> None:
  """Flips a byte in the middle of `path`: same size, so only reading notices."""
  data = bytearray(Path(path).read_bytes())
  data[len(data) // 2] ^= 0xFF
  Path(path).write_bytes(bytes(data))


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
  return numbered_shards(tmp_path_factory.mktemp("shards"))


def _frames(pattern, train=False, sequence_length=5, shape=SHAPE, **kwargs):
  args = dict(
    seed=0, shuffle_buffer=4, cache=False, compression=None, skip_counter=None
  )
  return tfrecord_reader.tfrecord_frames(
    train, sequence_length, shape, pattern, **{**args, **kwargs}
  )


def _ids(dataset, count=None) -> np.ndarray:
  """[N, T] frame ids of the uint8 [T, H, W, C] elements of `dataset`."""
  return np.array(
    [f.numpy()[:, 0, 0, 0] for f in dataset.take(count or -1)], int
  )


def test_test_split_gives_first_frames_in_order_every_time(shards):
  frames = _frames(shards)
  assert frames.element_spec.shape == (5, *SHAPE)
  assert frames.element_spec.dtype == tf.uint8
  for _ in range(2):
    np.testing.assert_array_equal(
      _ids(frames), 10 * np.arange(5)[:, None] + np.arange(5)
    )


def test_train_split_gives_random_windows_of_every_sequence(shards):
  ids = _ids(_frames(shards, train=True, cache=True), 60)
  sequence, start = ids[:, 0] // 10, ids[:, 0] % 10
  np.testing.assert_array_equal(
    ids, 10 * sequence[:, None] + start[:, None] + np.arange(5)
  )
  assert set(sequence) == set(range(5))
  assert set(start) == set(range(LENGTH - 5 + 1))


def test_split_placeholder_selects_the_split_files(tmp_path):
  shard_writer.write_shards(numbered_sequences(2), str(tmp_path), "test", 2)
  assert len(_ids(_frames(str(tmp_path / "{split}-*")))) == 2
  with pytest.raises(ValueError, match="file_pattern"):
    _frames(str(tmp_path / "{split}-*"), train=True)


def test_wrong_frame_shape_in_metadata_is_a_clear_error(shards):
  with pytest.raises(
    ValueError,
    match=r"metadata of data .* frames have shape \(16, 16, 3\) .* ask for \(64, 64, 3\)",
  ):
    _frames(shards, train=True, shape=(64, 64, 3))
  with pytest.raises(ValueError, match="sequence_length=9"):
    _frames(shards, sequence_length=9)


def test_wrong_frame_shape_without_metadata_names_the_file(tmp_path):
  path = _foreign_file(
    tmp_path / "foreign.tfrecord", numbered_sequences(1, size=8)
  )
  with pytest.raises(
    ValueError,
    match=rf"{path} stores frames of shape \(8, 8, 3\) .* ask for \(16, 16, 3\)",
  ):
    _frames(path, train=True)


def test_mismatch_after_the_first_record_fails_naming_the_file(tmp_path):
  mixed = numbered_sequences(1) + numbered_sequences(1, size=8)
  path = _foreign_file(tmp_path / "mixed.tfrecord", mixed)
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r"does not match the request(.|\n)*mixed.tfrecord",
  ):
    list(_frames(path))


def test_pattern_errors():
  with pytest.raises(ValueError, match="file_pattern"):
    _frames(None)
  with pytest.raises(ValueError, match="file_pattern"):
    _frames("/nonexistent/x-*")


def test_unreadable_file_is_a_clear_error(tmp_path):
  path = tmp_path / "junk.tfrecord"
  path.write_bytes(b"not a tfrecord file at all")
  with pytest.raises(ValueError, match=re.escape(str(path))):
    _frames(str(path))


def test_corrupted_shard_fails_naming_the_file_or_is_skipped_and_counted(
  tmp_path,
):
  paths = shard_writer.write_shards(
    numbered_sequences(6), str(tmp_path), "data", 3
  )
  corrupt_middle(paths[1])
  pattern = str(tmp_path / "data-*")
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r"Corrupted or truncated(.|\n)*data-00001-of-00002",
  ):
    list(_frames(pattern))
  counter = tf.Variable(0, dtype=tf.int64)
  ids = _ids(_frames(pattern, skip_counter=counter))
  assert 3 <= len(ids) < 6  # Shard 0 whole; shard 1 up to its corrupted record.
  np.testing.assert_array_equal(ids[:, 0], 10 * np.arange(len(ids)))
  assert int(counter.numpy()) == 6 - len(ids)


def test_skipping_needs_metadata(tmp_path):
  path = _foreign_file(tmp_path / "foreign.tfrecord", numbered_sequences(1))
  with pytest.raises(ValueError, match="skip_corrupt"):
    _frames(path, skip_counter=tf.Variable(0, dtype=tf.int64))
