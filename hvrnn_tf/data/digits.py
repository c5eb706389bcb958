"""MNIST digits for Stochastic Moving MNIST, from IDX files, TFDS or scikit-learn.

`load_digits` tries, in order:
  1. the IDX files in `mnist_dir` when it is given (an invalid `mnist_dir` is an
     error, never a silent fallback);
  2. TFDS `mnist`, prepared locally or downloaded (when `download=True` and its
     download host answers);
  3. scikit-learn's bundled 8x8 digits upsampled to MNIST's layout (a 20x20 digit
     centred in a 28x28 frame), with a warning: a stand-in for offline machines,
     not a substitute for MNIST when reporting results.

`split_test_file_at=N` makes both splits come from MNIST's test file alone (its
first N digits train, the rest test): for machines that hold only that file.
The project's studies use N = TEST_FILE_SPLIT (gin: %digits.TEST_FILE_SPLIT).
"""

import gzip
import os
import socket

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

import gin

DIGIT_SIZE = 28
# The fixed split of MNIST's 10,000 test digits: the first 8,000 train, the
# last 2,000 test.
TEST_FILE_SPLIT = 8000
gin.constant("digits.TEST_FILE_SPLIT", TEST_FILE_SPLIT)
SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_UBYTE_3D_MAGIC = 0x00000803  # dtype code 0x08 (uint8), 3 dimensions.
_SKLEARN_TRAIN_FRACTION = 0.8
_TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
_TFDS_MNIST_HOST = "storage.googleapis.com"  # where TFDS downloads MNIST from


def read_idx_images(path: str) -> np.ndarray:
  """Reads an IDX3 uint8 image file (optionally gzip-compressed).

  Args:
    path: an MNIST-style `*-images-idx3-ubyte[.gz]` file.

  Returns:
    uint8 array [N, rows, cols].

  Raises:
    ValueError: the file is not a valid IDX3 uint8 file (bad magic number, size
      that disagrees with the header, or a broken gzip stream); names `path`.
  """
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      data = f.read()
    if path.endswith(".gz"):
      data = gzip.decompress(data)
  # gzip.BadGzipFile is an OSError.
  except (tf.errors.OpError, OSError, EOFError) as e:
    raise ValueError(f"Cannot read IDX file {path}: {e}") from e
  if len(data) < 16:
    raise ValueError(
      f"IDX file {path} is too short ({len(data)} bytes) for its 16-byte header."
    )
  magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
  if magic != _IDX_UBYTE_3D_MAGIC:
    raise ValueError(
      f"IDX file {path} has magic number {magic:#010x}; expected {_IDX_UBYTE_3D_MAGIC:#010x} "
      "(uint8 images with 3 dimensions)."
    )
  expected = 16 + int(n) * int(rows) * int(cols)
  if len(data) != expected:
    raise ValueError(
      f"IDX file {path} holds {len(data)} bytes but its header ({n} images of {rows}x{cols}) "
      f"implies {expected}: the file is truncated or corrupted."
    )
  return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(
    int(n), int(rows), int(cols)
  )


def _idx_path(mnist_dir: str, split: str) -> str:
  """Returns the images file of `split` in `mnist_dir`, raw or gzipped."""
  stem = os.path.join(mnist_dir, f"{_IDX_PREFIX[split]}-images-idx3-ubyte")
  for candidate in (stem, stem + ".gz"):
    if tf.io.gfile.exists(candidate):
      return candidate
  raise FileNotFoundError(
    f"mnist_dir={mnist_dir!r} has no {split} images: neither {stem} nor {stem}.gz exists."
  )


def _tfds_digits(split: str, download: bool) -> np.ndarray:
  """uint8 [N, 28, 28] digits of TFDS `mnist`; raises when TFDS cannot provide them.

  Before downloading, checks that TFDS's download host answers: offline, TFDS
  itself retries for a very long time instead of failing.
  """
  import tensorflow_datasets as tfds  # Imported lazily: slow, and only needed here.

  builder = tfds.builder("mnist")
  if not builder.is_prepared():
    if not download:
      raise FileNotFoundError(
        f"TFDS mnist is not prepared in {builder.data_dir} and download=False"
      )
    socket.create_connection(
      _TFDS_DOWNLOAD_HOST, timeout=5
    ).close()  # OSError when offline.
    builder.download_and_prepare()
  images = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))[
    "image"
  ]
  return images[..., 0].astype(np.uint8)


def sklearn_digits(split: str) -> np.ndarray:
  """scikit-learn's 8x8 digits laid out like MNIST (offline stand-in).

  Each digit is resized (bicubic) to 20x20 and centred in a 28x28 black frame, as
  MNIST centres its 20x20 digits; values are scaled from 0..16 to 0..255. The
  1797 digits are split deterministically: the first 80% are "train", the rest
  "test".

  Returns:
    uint8 array [N, 28, 28] (N = 1437 for "train", 360 for "test").
  """
  from sklearn.datasets import (
    load_digits as sklearn_load_digits,
  )  # Only needed offline.

  _check_split(split)
  small = sklearn_load_digits().images  # float64 [1797, 8, 8] in 0..16
  num_train = int(len(small) * _SKLEARN_TRAIN_FRACTION)
  small = small[:num_train] if split == "train" else small[num_train:]
  pad = (DIGIT_SIZE - 20) // 2
  out = np.zeros((len(small), DIGIT_SIZE, DIGIT_SIZE), np.uint8)
  for i, digit in enumerate(small):
    image = Image.fromarray(
      (digit * (255.0 / 16.0)).astype(np.float32), mode="F"
    )
    resized = np.asarray(image.resize((20, 20), Image.BICUBIC))
    out[i, pad : pad + 20, pad : pad + 20] = np.clip(
      np.rint(resized), 0, 255
    ).astype(np.uint8)
  return out


def resize_digits(digits: np.ndarray, size: int) -> np.ndarray:
  """uint8 [N, d, d] digits resized (bilinear, as SVG's torchvision Scale) to [N, size, size]."""
  if digits.shape[1] == size:
    return digits
  return np.stack(
    [
      np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR))
      for digit in digits
    ]
  )


def _split_test_file(mnist_dir: str, split: str, at: int):
  """(digits, source) of `split` cut from MNIST's test file at digit `at`."""
  path = _idx_path(mnist_dir, "test")
  digits = read_idx_images(path)
  if not 0 < at < len(digits):
    raise ValueError(
      f"split_test_file_at={at} must lie in 1..{len(digits) - 1}: {path} holds"
      f" {len(digits)} digits."
    )
  part = digits[:at] if split == "train" else digits[at:]
  first = 0 if split == "train" else at
  return part, f"idx:{path}[{first}:{first + len(part)}]"


def is_stand_in(source: str | None) -> bool:
  """Whether a `load_digits` source is the offline stand-in, not MNIST."""
  return bool(source) and source.startswith("sklearn:")


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not one of {SPLITS}.")


def load_digits(
  mnist_dir: str | None = None,
  split: str = "train",
  download: bool = True,
  split_test_file_at: int | None = None,
) -> tuple[np.ndarray, str]:
  """Loads MNIST digits of one split, falling back as the module docstring says.

  Args:
    mnist_dir: folder with `train-images-idx3-ubyte[.gz]` / `t10k-images-idx3-ubyte[.gz]`;
      None to use TFDS or the offline fallback.
    split: "train" or "test".
    download: let TFDS download MNIST when it is not prepared locally.
    split_test_file_at: N to take both splits from `mnist_dir`'s test file:
      digits [0, N) for "train", [N, end) for "test"; needs `mnist_dir`.

  Returns:
    (digits, source): uint8 [N, 28, 28] digits, and "idx:<path>" (with
    "[first:end]" for a split test file),
    "tfds:mnist" or "sklearn:digits-8x8-upsampled".

  Raises:
    ValueError: unknown split, or invalid IDX file in `mnist_dir`.
    FileNotFoundError: `mnist_dir` lacks the split's images file.
  """
  _check_split(split)
  if split_test_file_at is not None:
    if mnist_dir is None:
      raise ValueError("split_test_file_at needs mnist_dir (the IDX folder).")
    digits, source = _split_test_file(mnist_dir, split, split_test_file_at)
  elif mnist_dir is not None:
    path = _idx_path(mnist_dir, split)
    digits, source = read_idx_images(path), f"idx:{path}"
  else:
    try:
      digits, source = _tfds_digits(split, download), "tfds:mnist"
    except Exception as e:  # pylint: disable=broad-except  # TFDS fails in many ways offline.
      logging.warning(
        "TFDS mnist unavailable (%s: %s); using scikit-learn's 8x8 digits upsampled to "
        "28x28 instead. Pass mnist_dir=<folder with MNIST IDX files> for real MNIST.",
        type(e).__name__,
        e,
      )
      digits, source = sklearn_digits(split), "sklearn:digits-8x8-upsampled"
  if digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
    raise ValueError(
      f"{source} holds {digits.shape[1]}x{digits.shape[2]} images; expected 28x28."
    )
  logging.info("Loaded %d %s digits from %s.", len(digits), split, source)
  return digits, source
