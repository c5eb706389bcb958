"""Tests of hvrnn_tf.data.inputs: make_dataset and dataset_for_config.

The TFRecord reader's own checks are in test_tfrecord_reader.py.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_tfrecord_reader import corrupt_middle
from test_tfrecord_reader import numbered_sequences
from test_tfrecord_reader import numbered_shards

import gin
from hvrnn_tf.data import inputs
from hvrnn_tf.data import shard_writer

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SIZE, CHANNELS = 16, 3


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


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
  return numbered_shards(tmp_path_factory.mktemp("shards"))


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
  """[B, T] frame ids (10 * sequence + frame) of a float batch of `numbered_shards`."""
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
  assert all(b.min() >= 0.0 and b.max() <= 1.0 for b in batches)


def test_smmnist_num_digits_sets_the_digits_per_sequence(mnist_dirs):
  def ink(num_digits):
    dataset = inputs.make_dataset(
      "test", 8, 1, 64, 1, mnist_dir=str(mnist_dirs), num_digits=num_digits
    )
    return float(tf.reduce_sum(next(iter(dataset))))

  assert 1.5 < ink(2) / ink(1) <= 2.0  # clipped where digits overlap


def test_split_test_file_feeds_both_splits_and_records_the_source():
  if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
    pytest.skip(f"MNIST test split not found at {MNIST_DIR}.")
  for split in ("train", "test"):
    batch = inputs.make_dataset(
      split,
      2,
      3,
      64,
      1,
      mnist_dir=str(MNIST_DIR),
      split_test_file_at=8000,
      num_test_sequences=2,
    )
    assert next(iter(batch)).shape == (2, 3, 64, 64, 1)
  assert inputs.digits_source("train").endswith("[0:8000]")
  assert inputs.digits_source("test").endswith("[8000:10000]")


def test_smmnist_needs_one_channel():
  with pytest.raises(ValueError, match="channels=3"):
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


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"split": "val"}, r"split='val' is not one of \('train', 'test'\)"),
    (
      {"source": "bair"},
      r"source='bair' is not one of \('smmnist', 'tfrecord'\)",
    ),
    ({"batch_size": 0}, "batch_size=0 must be >= 1"),
    (
      {"compression": "ZLIB"},
      r"compression='ZLIB' is not one of \(None, 'GZIP'\)",
    ),
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


def test_skip_corrupt_counts_into_the_process_counter(tmp_path):
  paths = shard_writer.write_shards(
    numbered_sequences(6), str(tmp_path), "data", 3
  )
  corrupt_middle(paths[1])
  counter = inputs.skipped_records_counter()
  before = int(counter.numpy())
  batches = _make("test", str(tmp_path / "data-*"), skip_corrupt=True)
  read = sum(b.shape[0] for b in batches)
  assert read < 6 and int(counter.numpy()) - before == 6 - read


def test_dataset_for_config_takes_the_shape_from_the_config(
  shards, tiny_config
):
  config = tiny_config(channels=CHANNELS, context_frames=2, future_frames=3)
  make = lambda **kwargs: inputs.dataset_for_config(
    config, "test", 2, source="tfrecord", file_pattern=shards, **kwargs
  )
  assert next(iter(make())).shape == (2, 5, SIZE, SIZE, CHANNELS)
  assert next(iter(make(future_frames=1))).shape == (2, 3, SIZE, SIZE, CHANNELS)


def test_dataset_for_config_seed_overrides_the_gin_seed(
  mnist_dirs, tiny_config
):
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


def test_bindings_scoped_to_a_split_apply_to_that_split_only(
  shards, tiny_config
):
  config = tiny_config(channels=CHANNELS, context_frames=2, future_frames=1)
  gin.parse_config(
    "data.make_dataset.source = 'tfrecord'\n"
    f"data.make_dataset.file_pattern = '{shards}'\n"
    "test/data.make_dataset.file_pattern = '/nonexistent/test-*'"
  )
  assert next(iter(inputs.dataset_for_config(config, "train", 2))).shape[0] == 2
  with pytest.raises(ValueError, match="/nonexistent/test-"):
    inputs.dataset_for_config(config, "test", 2)


def test_a_training_runs_operative_config_serves_the_test_split(
  shards, tiny_config
):
  config = tiny_config(channels=CHANNELS, context_frames=2, future_frames=1)
  gin.parse_config(
    "data.make_dataset.source = 'tfrecord'\n"
    f"data.make_dataset.file_pattern = '{shards}'"
  )
  next(iter(inputs.dataset_for_config(config, "train", 2)))
  operative = gin.operative_config_str()
  gin.clear_config()
  gin.parse_config(operative)  # What eval does with a run's config.
  batch = next(iter(inputs.dataset_for_config(config, "test", 2)))
  assert batch.shape == (2, 3, SIZE, SIZE, CHANNELS)
