"""Tests of hvrnn_tf.data.records: the sequence Example format and its metadata."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.data import records
from hvrnn_tf.data import shard_writer


def _frames(index: int, length: int = 5) -> np.ndarray:
  """uint8 [length, 6, 4, 3] frames, different for every index."""
  return np.random.default_rng(index).integers(
    0, 256, (length, 6, 4, 3), dtype=np.uint8
  )


def test_serialize_parse_round_trip_is_exact():
  sequence = {
    "frames": _frames(0),
    "actions": np.linspace(-1, 1, 20, dtype=np.float32).reshape(5, 4),
    "positions": np.full((5, 3), 0.25, np.float32),
  }
  parsed = records.parse_sequence(
    tf.constant(records.serialize_sequence(sequence)), ["actions", "positions"]
  )
  assert parsed.keys() == sequence.keys()
  for key, value in sequence.items():
    assert parsed[key].dtype == value.dtype
    np.testing.assert_array_equal(parsed[key].numpy(), value)


def test_parse_works_inside_tf_data_graphs():
  serialized = [
    records.serialize_sequence({"frames": _frames(i)}) for i in range(2)
  ]
  dataset = tf.data.Dataset.from_tensor_slices(serialized).map(
    lambda e: records.parse_sequence(e)["frames"]
  )
  for frames, index in zip(dataset, range(2)):
    np.testing.assert_array_equal(frames.numpy(), _frames(index))


@pytest.mark.parametrize(
  "sequence, message",
  [
    ({"frames": np.zeros((2, 4, 4, 1), np.float32)}, "frames must be uint8"),
    ({"frames": np.zeros((4, 4, 1), np.uint8)}, "frames must be uint8"),
    (
      {"frames": np.zeros((2, 4, 4, 1), np.uint8), "a/b": np.zeros(3)},
      "Extra name 'a/b'",
    ),
  ],
)
def test_serialize_rejects_bad_sequences(sequence, message):
  with pytest.raises(ValueError, match=message):
    records.serialize_sequence(sequence)


def test_read_metadata_detects_interrupted_and_damaged_datasets(tmp_path):
  paths = shard_writer.write_shards(
    [{"frames": _frames(i)} for i in range(4)], str(tmp_path), "test", 2
  )
  assert records.read_metadata(paths)["num_sequences"] == 4
  with open(paths[1], "r+b") as f:
    f.truncate(100)
  with pytest.raises(ValueError, match="test-00001-of-00002.tfrecord"):
    records.read_metadata(paths)
  (tmp_path / "test.metadata.json").unlink()
  with pytest.raises(ValueError, match="test.metadata.json"):
    records.read_metadata(paths)


def test_read_metadata_ignores_files_not_named_as_shards(tmp_path):
  assert records.read_metadata([str(tmp_path / "bair_train.tfrecords")]) is None


def test_unknown_compression():
  with pytest.raises(ValueError, match="compression='ZLIB'"):
    records.shard_filename("x", 0, 1, "ZLIB")
