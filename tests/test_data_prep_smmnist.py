"""Tests of data_prep.smmnist."""

import json
from pathlib import Path

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from data_prep import smmnist as prep_smmnist
from hvrnn_tf.data import inputs

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir(tmp_path) -> str:
  """A folder whose train AND test images are MNIST's test split (no download in tests)."""
  source = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
  if not source.exists():
    pytest.skip(f"MNIST test split not found at {MNIST_DIR}.")
  folder = tmp_path / "mnist"
  folder.mkdir()
  for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
    (folder / name).symlink_to(source)
  return str(folder)


def test_writes_the_streamed_test_set_and_train_shards(tmp_path, mnist_dir):
  out = tmp_path / "out"
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(
    output_dir=str(out),
    mnist_dir=mnist_dir,
    smmnist_num_train=3,
    smmnist_num_test=5,
    smmnist_sequence_length=6,
    smmnist_image_size=40,
    sequences_per_shard=2,
    compression="gzip",
  ):
    prep_smmnist.main([])
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    prep_smmnist.main(
      []
    )  # Resumed on a complete dataset: shards are kept as they are.
  assert {
    p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in written
  } == written
  assert sorted(n for n in written if "tfrecord" in n) == (
    [f"test-0000{k}-of-00003.tfrecord.gz" for k in range(3)]
    + [f"train-0000{k}-of-00002.tfrecord.gz" for k in range(2)]
  )
  metadata = json.loads((out / "test.metadata.json").read_text())
  assert metadata["num_sequences"] == 5 and metadata["frame_shape"] == [
    40,
    40,
    1,
  ]
  assert metadata["source"] == "smmnist" and metadata["split"] == "test"
  assert metadata["style"] == "svg"

  def make(**kwargs):
    batches = inputs.make_dataset(
      "test", 5, 6, 40, 1, mnist_dir=mnist_dir, num_test_sequences=5, **kwargs
    )
    return next(iter(batches)).numpy()

  np.testing.assert_array_equal(
    make(source="tfrecord", file_pattern=str(out / "{split}-*")), make()
  )
  train = inputs.make_dataset(
    "train", 2, 4, 40, 1, source="tfrecord", file_pattern=str(out / "{split}-*")
  )
  assert next(iter(train)).shape == (2, 4, 40, 40, 1)


def test_truncated_mnist_file_is_a_one_line_error(tmp_path):
  folder = tmp_path / "mnist"
  folder.mkdir()
  header = np.array([0x803, 10, 28, 28], ">u4").tobytes()
  (folder / "t10k-images-idx3-ubyte").write_bytes(header + bytes(100))
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  with (
    flagsaver.flagsaver(
      output_dir=str(tmp_path / "out"),
      mnist_dir=str(folder),
      smmnist_num_test=2,
    ),
    pytest.raises(SystemExit) as error,
  ):
    prep_smmnist.main([])
  assert error.value.code == (
    f"data_prep.smmnist: error: IDX file {folder}/t10k-images-idx3-ubyte holds "
    "116 bytes but its header (10 images of 28x28) implies 7856: the file is "
    "truncated or corrupted."
  )
