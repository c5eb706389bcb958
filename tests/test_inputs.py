"""Tests of hvrnn_tf.data.inputs: make_dataset (both sources, both splits) and dataset_for_config."""

from pathlib import Path

import gin
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.data import inputs, records, shard_writer

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
LENGTH, SIZE, CHANNELS = 8, 16, 3


@pytest.fixture(scope="module")
def mnist_dirs(tmp_path_factory) -> Path:
  """A folder whose train AND test images are MNIST's test split (no download in tests)."""
  source = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
  if not source.exists():
    pytest.skip(f"MNIST test split not found at {MNIST_DIR}.")
  folder = tmp_path_factory.mktemp("mnist")
  for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
    (folder / name).symlink_to(source)
  return folder


def _sequences(
  count: int, length: int = LENGTH, size: int = SIZE
) -> list[dict[str, np.ndarray]]:
  """Sequences whose frame t of sequence i is filled with 10 * i + t (easy to identify)."""
  return [
    {
      "frames": np.broadcast_to(
        (10 * i + np.arange(length, dtype=np.uint8))[:, None, None, None],
        (length, size, size, CHANNELS),
      ).copy()
    }
    for i in range(count)
  ]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
  folder = tmp_path_factory.mktemp("shards")
  shard_writer.write_shards(
    _sequences(5), str(folder), "data", 2, compression="GZIP"
  )
  return str(folder / "data-*")


def _make(split, file_pattern, **kwargs):
  args = dict(
    batch_size=2,
    sequence_length=5,
    image_size=SIZE,
    channels=CHANNELS,
    source="tfrecord",
    file_pattern=file_pattern,
  )
  return inputs.make_dataset(split, **{**args, **kwargs})


def _ids(batch: np.ndarray) -> np.ndarray:
  """[B, T] frame ids (10 * sequence + frame) of a float batch built by `_sequences`."""
  return np.rint(batch[:, :, 0, 0, 0] * 255).astype(int)


def test_smmnist_test_split_is_finite_deterministic_and_normalised(mnist_dirs):
  make = lambda: inputs.make_dataset(
    "test", 2, 4, 40, 1, mnist_dir=str(mnist_dirs), num_test_sequences=5
  )
  first = [b.numpy() for b in make()]
  assert [b.shape for b in first] == [(2, 4, 40, 40, 1)] * 2 + [
    (1, 4, 40, 40, 1)
  ]
  assert all(
    b.dtype == np.float32 and b.min() == 0.0 and b.max() == 1.0 for b in first
  )
  again = [b.numpy() for b in make()]
  np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
  other_seed = inputs.make_dataset(
    "test", 5, 4, 40, 1, mnist_dir=str(mnist_dirs), num_test_sequences=5, seed=9
  )
  np.testing.assert_array_equal(
    next(iter(other_seed)).numpy(), np.concatenate(first)
  )


def test_smmnist_train_split_is_infinite_with_full_batches(mnist_dirs):
  dataset = inputs.make_dataset("train", 3, 4, 40, 1, mnist_dir=str(mnist_dirs))
  assert dataset.element_spec.shape == (3, 4, 40, 40, 1)
  assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
  batches = [b.numpy() for b in dataset.take(2)]
  assert not np.array_equal(batches[0], batches[1])
  assert all(0.0 <= b.min() and b.max() <= 1.0 for b in batches)


def test_split_test_file_feeds_both_splits_and_records_the_source():
  if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
    pytest.skip(f"MNIST test split not found at {MNIST_DIR}.")
  for split in ("train", "test"):
    batch = inputs.make_dataset(
      split, 2, 3, 64, 1, mnist_dir=str(MNIST_DIR), split_test_file_at=8000,
      num_test_sequences=2,
    )
    assert next(iter(batch)).shape == (2, 3, 64, 64, 1)
  assert inputs.digits_source("train").endswith("[0:8000]")
  assert inputs.digits_source("test").endswith("[8000:10000]")


def test_smmnist_needs_one_channel():
  with pytest.raises(
    ValueError, match="SM-MNIST frames have 1 channel; got channels=3"
  ):
    inputs.make_dataset("train", 2, 4, 64, 3)


def test_tfrecord_test_split_gives_first_frames_in_order(shards):
  for _ in range(2):  # Same content on every iteration.
    batches = [b.numpy() for b in _make("test", shards)]
    assert [b.shape for b in batches] == [(2, 5, SIZE, SIZE, CHANNELS)] * 2 + [
      (1, 5, SIZE, SIZE, CHANNELS)
    ]
    assert batches[0].dtype == np.float32
    ids = np.concatenate([_ids(b) for b in batches])
    np.testing.assert_array_equal(
      ids, 10 * np.arange(5)[:, None] + np.arange(5)
    )


def test_tfrecord_train_split_gives_random_windows(shards):
  dataset = _make("train", shards, batch_size=3, cache=True)
  assert dataset.element_spec.shape == (3, 5, SIZE, SIZE, CHANNELS)
  ids = np.concatenate([_ids(b.numpy()) for b in dataset.take(20)])
  sequence, start = ids[:, 0] // 10, ids[:, 0] % 10
  np.testing.assert_array_equal(
    ids, 10 * sequence[:, None] + start[:, None] + np.arange(5)
  )
  assert set(sequence) == set(range(5))
  assert set(start) == set(range(LENGTH - 5 + 1))


def test_wrong_frame_shape_in_metadata_is_a_clear_error(shards):
  with pytest.raises(
    ValueError,
    match=r"metadata of data .* frames have shape \(16, 16, 3\) .* ask for \(64, 64, 3\)",
  ):
    _make("train", shards, image_size=64)
  with pytest.raises(
    ValueError, match=r"sequences have 8 frames; sequence_length=9"
  ):
    _make("test", shards, sequence_length=9)


def test_wrong_frame_shape_without_metadata_names_the_file(tmp_path):
  path = str(tmp_path / "foreign.tfrecord")
  shard_writer.write_shard(
    path, [records.serialize_sequence(s) for s in _sequences(1, size=8)]
  )
  with pytest.raises(
    ValueError,
    match=rf"{path} stores frames of shape \(8, 8, 3\) .* ask for \(16, 16, 3\)",
  ):
    _make("train", path)


def test_mismatch_after_the_first_record_fails_naming_the_file(tmp_path):
  path = str(tmp_path / "mixed.tfrecord")
  mixed = _sequences(1) + _sequences(1, size=8)
  shard_writer.write_shard(path, [records.serialize_sequence(s) for s in mixed])
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r"does not match the request(.|\n)*mixed.tfrecord",
  ):
    list(_make("test", path))


def test_pattern_errors():
  with pytest.raises(ValueError, match="needs file_pattern"):
    _make("train", None)
  with pytest.raises(
    ValueError, match="file_pattern='/nonexistent/x-\\*' matches no files"
  ):
    _make("train", "/nonexistent/x-*")


def test_unreadable_file_is_a_clear_error(tmp_path):
  path = tmp_path / "junk.tfrecord"
  path.write_bytes(b"not a tfrecord file at all")
  with pytest.raises(
    ValueError, match=f"Cannot read {path} as uncompressed TFRecords"
  ):
    _make("train", str(path))


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"split": "val"}, r"split='val' is not one of \('train', 'test'\)"),
    (
      {"source": "bair"},
      r"source='bair' is not one of \('smmnist', 'tfrecord'\)",
    ),
    ({"batch_size": 0}, "batch_size=0 must be >= 1"),
  ],
)
def test_invalid_arguments(kwargs, message):
  args = {
    "split": "train",
    "batch_size": 2,
    "sequence_length": 4,
    "image_size": 64,
    "channels": 1,
    **kwargs,
  }
  with pytest.raises(ValueError, match=message):
    inputs.make_dataset(**args)


def _corrupt_middle(path: str) -> None:
  data = bytearray(Path(path).read_bytes())
  data[len(data) // 2] ^= 0xFF
  Path(path).write_bytes(bytes(data))


def test_corrupted_shard_fails_naming_the_file_or_is_skipped_and_counted(
  tmp_path,
):
  paths = shard_writer.write_shards(_sequences(6), str(tmp_path), "data", 3)
  _corrupt_middle(paths[1])  # Same size: only reading notices.
  pattern = str(tmp_path / "data-*")
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r"Corrupted or truncated(.|\n)*data-00001-of-00002",
  ):
    list(_make("test", pattern))
  counter = inputs.skipped_records_counter()
  before = int(counter.numpy())
  ids = np.concatenate(
    [_ids(b.numpy()) for b in _make("test", pattern, skip_corrupt=True)]
  )
  assert 3 <= len(ids) < 6  # Shard 0 whole; shard 1 up to its corrupted record.
  np.testing.assert_array_equal(ids[:, 0], 10 * np.arange(len(ids)))
  assert int(counter.numpy()) - before == 6 - len(ids)


def test_skip_corrupt_needs_metadata(tmp_path):
  path = str(tmp_path / "foreign.tfrecord")
  shard_writer.write_shard(
    path, [records.serialize_sequence(s) for s in _sequences(1)]
  )
  with pytest.raises(
    ValueError, match="skip_corrupt needs the dataset's metadata"
  ):
    _make("train", path, skip_corrupt=True)


def test_dataset_for_config_takes_the_shape_from_the_config(shards, tiny_config):
  config = tiny_config(channels=CHANNELS, context_frames=2, future_frames=3)
  make = lambda **kwargs: inputs.dataset_for_config(
    config, "test", 2, source="tfrecord", file_pattern=shards, **kwargs
  )
  assert next(iter(make())).shape == (2, 5, SIZE, SIZE, CHANNELS)
  assert next(iter(make(future_frames=1))).shape == (2, 3, SIZE, SIZE, CHANNELS)


def test_dataset_for_config_seed_overrides_the_gin_seed(mnist_dirs, tiny_config):
  config = tiny_config(image_size=64, channel_multipliers=(1, 2, 2, 2, 2, 2))
  gin.parse_config(
    f"data.make_dataset.mnist_dir = '{mnist_dirs}'\ndata.make_dataset.seed = 3"
  )
  first = lambda seed: next(
    iter(inputs.dataset_for_config(config, "train", 2, seed))
  ).numpy()
  expected = inputs.make_dataset("train", 2, 5, 64, 1, seed=4)
  np.testing.assert_array_equal(first(4), next(iter(expected)).numpy())
  assert not np.array_equal(first(None), first(4))
  np.testing.assert_array_equal(first(None), first(3))


def test_dataset_for_config_errors_name_the_model_settings(shards, tiny_config):
  make = lambda config, **kwargs: inputs.dataset_for_config(
    config, "test", 2, source="tfrecord", file_pattern=shards, **kwargs
  )
  with pytest.raises(
    ValueError,
    match=r"(?s)sequence_length=9.*\(sequence_length = model.ModelConfig."
    r"context_frames \+ model.ModelConfig.future_frames = 2 \+ 7\)",
  ):
    make(tiny_config(channels=CHANNELS, future_frames=7))
  with pytest.raises(
    ValueError, match=r"context_frames \+ future_frames = 2 \+ 7\)"
  ):
    make(tiny_config(channels=CHANNELS), future_frames=7)
  with pytest.raises(
    ValueError,
    match=r"\(model.ModelConfig.image_size = 16, model.ModelConfig.channels = 1\)",
  ):
    make(tiny_config())
