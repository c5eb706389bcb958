"""Tests of hvrnn_tf.data.shard_writer: sharded, resumable writing."""

import hashlib
import json

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.data import records
from hvrnn_tf.data import shard_writer


def _sequence(
  index: int, length: int = 5, shape=(6, 4, 3)
) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(index)
  return {
    "frames": rng.integers(0, 256, (length, *shape), dtype=np.uint8),
    "actions": rng.normal(size=(length, 4)).astype(np.float32),
    "positions": rng.normal(size=(length, 3)).astype(np.float32),
  }


def _read(
  path: str, extra_names=("actions", "positions")
) -> list[dict[str, np.ndarray]]:
  dataset = tf.data.TFRecordDataset(path, records.tfrecord_compression(path))
  return [
    {k: v.numpy() for k, v in records.parse_sequence(e, extra_names).items()}
    for e in dataset
  ]


def _assert_same(actual: dict, expected: dict) -> None:
  assert actual.keys() == expected.keys()
  for key in expected:
    assert actual[key].dtype == expected[key].dtype
    np.testing.assert_array_equal(actual[key], expected[key])


@pytest.mark.parametrize(
  "compression, suffix", [(None, ".tfrecord"), ("GZIP", ".tfrecord.gz")]
)
def test_write_shards_round_trip_and_metadata(tmp_path, compression, suffix):
  sequences = [_sequence(i) for i in range(7)]
  paths = shard_writer.write_shards(
    sequences,
    str(tmp_path),
    "train",
    3,
    compression=compression,
    info={"source": "unit-test", "split": "train"},
  )
  assert [p.rsplit("/", 1)[1] for p in paths] == [
    f"train-0000{k}-of-00003{suffix}" for k in range(3)
  ]
  read = [s for p in paths for s in _read(p)]
  assert len(read) == 7
  for actual, expected in zip(read, sequences):
    _assert_same(actual, expected)
  metadata = json.loads((tmp_path / "train.metadata.json").read_text())
  assert (
    metadata["frame_shape"] == [6, 4, 3] and metadata["sequence_length"] == 5
  )
  assert (
    metadata["num_sequences"] == 7 and metadata["compression"] == compression
  )
  assert metadata["source"] == "unit-test" and metadata["split"] == "train"
  assert metadata["extras"] == {"actions": [5, 4], "positions": [5, 3]}
  assert [s["num_sequences"] for s in metadata["shards"]] == [3, 3, 1]
  assert (
    metadata["shards"][2]["md5"]
    == hashlib.md5((tmp_path / paths[2]).read_bytes()).hexdigest()
  )
  assert records.read_metadata(paths) == metadata
  assert not list(tmp_path.glob(".*tmp*"))


def test_gzip_shards_are_compressed(tmp_path):
  sequences = [{"frames": np.zeros((4, 32, 32, 1), np.uint8)}] * 4
  raw = shard_writer.write_shards(sequences, str(tmp_path / "raw"), "s", 4)
  gz = shard_writer.write_shards(
    sequences, str(tmp_path / "gz"), "s", 4, compression="GZIP"
  )
  assert tf.io.gfile.stat(gz[0]).length * 10 < tf.io.gfile.stat(raw[0]).length


def test_resume_skips_complete_shards_without_computing_them(tmp_path):
  accessed = []

  def make(i):
    accessed.append(i)
    return _sequence(i)

  paths = shard_writer.write_shards(
    shard_writer.LazySequence(7, make), str(tmp_path), "train", 3
  )
  first_run = [tf.io.gfile.GFile(p, "rb").read() for p in paths]
  tf.io.gfile.remove(paths[1])
  tf.io.gfile.remove(str(tmp_path / "train.metadata.json"))
  accessed.clear()
  assert (
    shard_writer.write_shards(
      shard_writer.LazySequence(7, make), str(tmp_path), "train", 3
    )
    == paths
  )
  assert sorted(accessed) == [
    0,
    3,
    4,
    5,
  ]  # Sequence 0 fixes the layout; shard 1 holds 3..5.
  assert [tf.io.gfile.GFile(p, "rb").read() for p in paths] == first_run
  assert (tmp_path / "train.metadata.json").exists()


def test_resume_with_other_parameters_is_an_error(tmp_path):
  sequences = [_sequence(i) for i in range(2)]
  shard_writer.write_shards(
    sequences, str(tmp_path), "train", 1, info={"image_size": 64}
  )
  with pytest.raises(ValueError, match="train.plan.json"):
    shard_writer.write_shards(
      sequences, str(tmp_path), "train", 1, info={"image_size": 128}
    )


def test_inconsistent_sequences_are_an_error(tmp_path):
  with pytest.raises(ValueError, match="Sequence 1"):
    shard_writer.write_shards(
      [_sequence(0), _sequence(1, length=6)], str(tmp_path), "train", 5
    )
  assert not list(tmp_path.glob("*.tfrecord*"))


def _failing_at(bad: int, error: type[Exception], accessed: list[int]):
  """Sequences 0, 1, ... as `make` items, of which item `bad` raises `error`."""

  def make(i):
    accessed.append(i)
    if i == bad:
      raise error(f"item {i} is bad")
    return _sequence(i)

  return make


@pytest.mark.parametrize("error, kept", [(ValueError, False), (OSError, True)])
def test_failed_conversion_keeps_shards_only_for_a_resume(
  tmp_path, error, kept
):
  # An earlier run was interrupted after its first shard.
  paths = shard_writer.write_shards(
    [_sequence(i) for i in range(200)], str(tmp_path), "train", 2
  )
  for path in [*paths[1:], str(tmp_path / "train.metadata.json")]:
    tf.io.gfile.remove(path)
  accessed = []
  with pytest.raises(error, match="item 4 is bad"):
    shard_writer.write_shards(
      shard_writer.LazySequence(200, _failing_at(4, error, accessed)),
      str(tmp_path),
      "train",
      2,
    )
  names = sorted(p.name for p in tmp_path.iterdir())
  if kept:  # Disk full, say: the complete shards wait for a resume.
    assert names[:2] == [
      "train-00000-of-00100.tfrecord",
      "train-00001-of-00100.tfrecord",
    ]
  else:  # Bad input: a resume would fail again, so nothing is left.
    assert names == []
    assert max(accessed) < 100  # The shards not started were cancelled.


def test_bad_input_for_a_lost_shard_keeps_the_complete_dataset(tmp_path):
  paths = shard_writer.write_shards(
    [_sequence(i) for i in range(6)], str(tmp_path), "train", 2
  )
  tf.io.gfile.remove(paths[2])
  with pytest.raises(ValueError, match="item 4 is bad"):
    shard_writer.write_shards(
      shard_writer.LazySequence(6, _failing_at(4, ValueError, [])),
      str(tmp_path),
      "train",
      2,
    )
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "train-00000-of-00003.tfrecord",
    "train-00001-of-00003.tfrecord",
    "train.metadata.json",
    "train.plan.json",
  ]


def test_lazy_sequence_computes_items_on_access():
  lazy = shard_writer.LazySequence(3, lambda i: i * i)
  assert len(lazy) == 3 and list(lazy) == [0, 1, 4]
  with pytest.raises(IndexError, match="index 3"):
    lazy[3]
