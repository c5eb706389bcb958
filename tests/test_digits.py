"""Tests of hvrnn_tf.data.digits: IDX parsing, errors, offline fallback."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from hvrnn_tf.data import digits

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _idx_bytes(images: np.ndarray, magic: int = 0x803) -> bytes:
  header = np.array([magic, *images.shape], dtype=">u4").tobytes()
  return header + images.astype(np.uint8).tobytes()


@pytest.fixture
def real_mnist_dir() -> Path:
  if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
    pytest.skip(f"MNIST test split not found at {MNIST_DIR}.")
  return MNIST_DIR


def test_reads_real_mnist_test_split(real_mnist_dir):
  images, source = digits.load_digits(str(real_mnist_dir), "test")
  assert images.shape == (10000, 28, 28)
  assert images.dtype == np.uint8
  assert images.min() == 0 and images.max() == 255
  assert 30 < images.mean() < 37  # MNIST's mean pixel is about 33.8.
  assert source == f"idx:{real_mnist_dir / 't10k-images-idx3-ubyte.gz'}"


def test_reads_uncompressed_idx(tmp_path):
  images = np.random.default_rng(0).integers(
    0, 256, (5, 28, 28), dtype=np.uint8
  )
  (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images))
  loaded, _ = digits.load_digits(str(tmp_path), "train")
  np.testing.assert_array_equal(loaded, images)


@pytest.mark.parametrize(
  "content, message",
  [
    (_idx_bytes(np.zeros((2, 28, 28)), magic=0x801), "magic number"),
    (_idx_bytes(np.zeros((2, 28, 28)))[:-10], "truncated"),
    (b"\x00\x00\x08", "too short"),
  ],
)
def test_bad_idx_file_error_names_file_and_problem(tmp_path, content, message):
  path = tmp_path / "t10k-images-idx3-ubyte.gz"
  path.write_bytes(gzip.compress(content))
  with pytest.raises(ValueError, match=message) as error:
    digits.load_digits(str(tmp_path), "test")
  assert str(path) in str(error.value)


def test_broken_gzip_error_names_file(tmp_path):
  path = tmp_path / "t10k-images-idx3-ubyte.gz"
  path.write_bytes(gzip.compress(_idx_bytes(np.zeros((2, 28, 28))))[:-20])
  with pytest.raises(ValueError, match="Cannot read IDX file") as error:
    digits.read_idx_images(str(path))
  assert str(path) in str(error.value)


def test_wrong_digit_size_is_an_error(tmp_path):
  (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
    _idx_bytes(np.zeros((2, 8, 8)))
  )
  with pytest.raises(ValueError, match="28x28"):
    digits.load_digits(str(tmp_path), "test")


def test_mnist_dir_without_the_split_is_an_error_not_a_fallback(tmp_path):
  with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
    digits.load_digits(str(tmp_path), "train")


def test_unknown_split():
  with pytest.raises(ValueError, match="split='val'"):
    digits.load_digits(None, "val")


def test_sklearn_digits_are_laid_out_like_mnist():
  train, test = digits.sklearn_digits("train"), digits.sklearn_digits("test")
  assert train.shape == (1437, 28, 28) and test.shape == (360, 28, 28)
  assert train.dtype == np.uint8 and train.max() == 255
  # A 20x20 digit centred in 28x28: the 4-pixel border is black.
  assert not train[:, :4].any() and not train[:, -4:].any()
  assert not train[:, :, :4].any() and not train[:, :, -4:].any()
  assert train[:, 4:24, 4:24].mean() > 40


def test_offline_fallback_logs_its_source(caplog):
  caplog.set_level("INFO")
  images, source = digits.load_digits(None, "test", download=False)
  if source == "tfds:mnist":
    pytest.skip(
      "TFDS mnist is prepared on this machine, so the offline fallback is not used."
    )
  assert source == "sklearn:digits-8x8-upsampled"
  assert images.shape == (360, 28, 28) and images.dtype == np.uint8
  assert "using scikit-learn's 8x8 digits" in caplog.text
  assert "from sklearn:digits-8x8-upsampled" in caplog.text


def test_split_test_file_partitions_its_digits(tmp_path):
  images = np.arange(10)[:, None, None] * np.ones((1, 28, 28))
  (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(images))
  train, train_source = digits.load_digits(
    str(tmp_path), "train", split_test_file_at=7
  )
  test, test_source = digits.load_digits(
    str(tmp_path), "test", split_test_file_at=7
  )
  assert train[:, 0, 0].tolist() == list(range(7))
  assert test[:, 0, 0].tolist() == [7, 8, 9]
  assert train_source.endswith("t10k-images-idx3-ubyte[0:7]")
  assert test_source.endswith("t10k-images-idx3-ubyte[7:10]")


@pytest.mark.parametrize("at", [0, 10, 11])
def test_split_test_file_point_must_leave_both_parts(tmp_path, at):
  (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
    _idx_bytes(np.zeros((10, 28, 28)))
  )
  with pytest.raises(ValueError, match="split_test_file_at"):
    digits.load_digits(str(tmp_path), "train", split_test_file_at=at)


def test_split_test_file_needs_mnist_dir():
  with pytest.raises(ValueError, match="mnist_dir"):
    digits.load_digits(None, "train", split_test_file_at=8000)


def test_resize_digits_is_bilinear_and_keeps_mass():
  square = np.zeros((1, 28, 28), np.uint8)
  square[0, 4:24, 4:24] = 255
  resized = digits.resize_digits(square, 32)
  assert resized.shape == (1, 32, 32) and resized.dtype == np.uint8
  # Area scales by (32/28)^2; bilinear edges keep the total within 3%.
  ratio = resized.sum() / square.sum() / (32 / 28) ** 2
  assert abs(ratio - 1) < 0.03
  assert digits.resize_digits(square, 28) is square


def test_stand_in_sources_are_recognised():
  assert digits.is_stand_in("sklearn:digits-8x8-upsampled")
  assert not digits.is_stand_in("idx:/data/t10k-images-idx3-ubyte.gz[0:8000]")
  assert not digits.is_stand_in("tfds:mnist")
  assert not digits.is_stand_in(None)
