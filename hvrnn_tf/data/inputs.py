"""`make_dataset`: the one input pipeline the training and evaluation binaries use."""

import contextlib

import tensorflow as tf

import gin
from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import records
from hvrnn_tf.data import smmnist
from hvrnn_tf.data import tfrecord_reader
from hvrnn_tf.model.config import ModelConfig

SOURCES = ("smmnist", "tfrecord")
SPLITS = ("train", "test")

_skipped_records = None


def skipped_records_counter() -> tf.Variable:
  """int64 scalar: records skipped as corrupted by `skip_corrupt` readers in this process.

  The training loop may write it as a TensorBoard scalar; every skip is also
  printed to stderr with the file name.
  """
  global _skipped_records
  if _skipped_records is None:
    with tf.init_scope():
      _skipped_records = tf.Variable(
        0, dtype=tf.int64, trainable=False, name="skipped_corrupt_records"
      )
  return _skipped_records


def _float_batches(frames, batch_size: int, drop_remainder: bool):
  """uint8 sequences -> prefetched float32 batches in [0, 1]."""
  batches = frames.batch(batch_size, drop_remainder=drop_remainder)
  batches = batches.map(
    lambda x: tf.cast(x, tf.float32) / 255.0,
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  return batches.prefetch(tf.data.AUTOTUNE)


def _check_arguments(split: str, source: str, **counts) -> None:
  """Raises ValueError naming a bad split, source or non-positive count."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not one of {SPLITS}.")
  if source not in SOURCES:
    raise ValueError(f"source={source!r} is not one of {SOURCES}.")
  for name, value in counts.items():
    if value < 1:
      raise ValueError(f"{name}={value} must be >= 1.")


@gin.configurable(module="data")
def make_dataset(
  split: str,
  batch_size: int,
  sequence_length: int,
  image_size: int,
  channels: int,
  source: str = "smmnist",
  file_pattern: str | None = None,
  mnist_dir: str | None = None,
  split_test_file_at: int | None = None,
  smmnist_style: str = "svg",
  num_digits: int = 2,
  seed: int = 0,
  shuffle_buffer: int = 256,
  num_test_sequences: int = 256,
  cache: bool = False,
  compression: str | None = None,
  skip_corrupt: bool = False,
) -> tf.data.Dataset:
  """Batches of video sequences for training or evaluation.

  split="train": infinite and shuffled; each element is a random window of
  `sequence_length` consecutive frames of a sequence; incomplete batches are
  dropped. split="test": finite, the same elements in the same order on every
  iteration and run; each element is the FIRST `sequence_length` frames of a
  sequence; the last batch may be smaller.

  Args:
    split: "train" or "test".
    batch_size: sequences per batch B.
    sequence_length: frames per element T (context + predicted).
    image_size: frame height = width S the model expects.
    channels: colour channels C the model expects.
    source: "smmnist" (generated on the fly; 1 channel) or "tfrecord" (shards
      in the project's format, see `records`).
    file_pattern: glob of the TFRecord files (source="tfrecord"); "{split}" in
      it is replaced by `split`, so one binding serves both splits, e.g.
      "/data/bair/{split}-*" (shards written by data_prep are named so).
    mnist_dir: MNIST IDX folder for source="smmnist" (see `load_digits`);
      train uses MNIST's train digits, test its test digits.
    split_test_file_at: N to draw both splits from MNIST's test file in
      `mnist_dir` (train: its first N digits, test: the rest), for machines
      with only that file (see `load_digits`).
    smmnist_style: SM-MNIST digit layout, "svg" (SVG's 32x32 digits, the
      paper's numbers), "mnist28" or "svg_half" (see `smmnist.STYLES`).
    num_digits: digits per generated SM-MNIST sequence (the paper: 2).
    seed: shuffling / window seed; for source="smmnist" also the train
      generator's seed (the test set always uses `smmnist.TEST_SEED`).
    shuffle_buffer: sequences in the train shuffle buffer (source="tfrecord";
      generated SM-MNIST sequences are already independent draws).
    num_test_sequences: size of the generated SM-MNIST test set.
    cache: keep the parsed sequences in memory after the first pass (records,
      or the generated SM-MNIST test set; the infinite SM-MNIST train stream is
      never cached).
    compression: None to infer each file's from its name (".gz": GZIP), or
      "GZIP" for all files.
    skip_corrupt: skip (and count, see `skipped_records_counter`) the records
      lost to a corrupted or truncated shard instead of failing; needs the
      dataset's metadata file.

  Returns:
    Dataset of float32 [B, T, S, S, C] in [0, 1].

  Raises:
    ValueError: bad argument values, no files matching `file_pattern`, stored
      sequences that do not match (S, S, C) or are shorter than T, unreadable
      files, or an interrupted conversion (shards without metadata).
  """
  _check_arguments(
    split,
    source,
    batch_size=batch_size,
    sequence_length=sequence_length,
    image_size=image_size,
    channels=channels,
    shuffle_buffer=shuffle_buffer,
    num_test_sequences=num_test_sequences,
  )
  records.check_compression(compression)
  train = split == "train"
  if source == "smmnist":
    digits = _load_smmnist_digits(
      split, channels, mnist_dir, split_test_file_at
    )
    frames = _smmnist_frames(
      train,
      digits,
      sequence_length,
      image_size,
      smmnist_style,
      num_digits,
      seed,
      num_test_sequences,
      cache,
    )
  else:
    frames = tfrecord_reader.tfrecord_frames(
      train,
      sequence_length,
      (image_size, image_size, channels),
      file_pattern,
      seed,
      shuffle_buffer,
      cache,
      compression,
      skipped_records_counter() if skip_corrupt else None,
    )
  return _float_batches(frames, batch_size, drop_remainder=train)


def dataset_for_config(
  config: ModelConfig,
  split: str,
  batch_size: int,
  seed: int | None = None,
  future_frames: int | None = None,
  **overrides,
) -> tf.data.Dataset:
  """`make_dataset` for `config`'s frames; errors name the model settings.

  The test split is made in the gin scope `test`, so `test/` bindings override
  the unscoped ones there, e.g. another folder for the test data:
    test/data.make_dataset.file_pattern = "/data/bair_eval/{split}-*"
  The train split is made unscoped: a training run's operative config (which
  eval parses) then holds unscoped bindings that serve the test split too.

  Args:
    config: sets image_size, channels and sequence_length (context_frames +
      future_frames).
    split: "train" or "test".
    batch_size: sequences per batch B.
    seed: the pipeline's seed; None keeps `data.make_dataset.seed` (gin).
    future_frames: predicted frames per element; None: config.future_frames.
    **overrides: other `make_dataset` arguments (default: the gin bindings).

  Returns:
    Dataset of float32 [B, c + future_frames, S, S, C] in [0, 1].
  """
  future, future_name = future_frames, "future_frames"
  if future_frames is None:
    future, future_name = (
      config.future_frames,
      "model.ModelConfig.future_frames",
    )
  if seed is not None:
    overrides["seed"] = seed
  try:
    test = split == "test"
    with gin.config_scope("test") if test else contextlib.nullcontext():
      return make_dataset(
        split=split,
        batch_size=batch_size,
        sequence_length=config.context_frames + future,
        image_size=config.image_size,
        channels=config.channels,
        **overrides,
      )
  except ValueError as e:
    message = str(e)
    if "sequence_length" in message:
      message += (
        " (sequence_length = model.ModelConfig.context_frames + "
        f"{future_name} = {config.context_frames} + {future})"
      )
    if "image_size" in message or "channels" in message:
      message += (
        f" (model.ModelConfig.image_size = {config.image_size}, "
        f"model.ModelConfig.channels = {config.channels})"
      )
    raise ValueError(message) from e


_digits_sources = {}


def digits_source(split: str) -> str | None:
  """Where this process's SM-MNIST `split` digits came from (see `load_digits`).

  None until `make_dataset` built that split from generated SM-MNIST. Eval
  stores it, so numbers on the offline stand-in digits are never taken for
  MNIST ones.
  """
  return _digits_sources.get(split)


def _load_smmnist_digits(split, channels, mnist_dir, split_test_file_at):
  """uint8 [N, 28, 28] digits of `split`; records their source."""
  if channels != 1:
    raise ValueError(
      f"SM-MNIST frames have 1 channel; got channels={channels}."
    )
  digits, source = digits_lib.load_digits(
    mnist_dir, split, split_test_file_at=split_test_file_at
  )
  _digits_sources[split] = source
  return digits


def _smmnist_frames(
  train: bool,
  digits,
  sequence_length: int,
  image_size: int,
  style: str,
  num_digits: int,
  seed: int,
  num_test_sequences: int,
  cache: bool,
) -> tf.data.Dataset:
  """uint8 [T, S, S, 1] generated sequences."""
  if train:
    return smmnist.smmnist_dataset(
      digits, sequence_length, image_size, num_digits, seed=seed, style=style
    )
  frames = smmnist.smmnist_dataset(
    digits,
    sequence_length,
    image_size,
    num_digits,
    seed=smmnist.TEST_SEED,
    num_sequences=num_test_sequences,
    style=style,
  )
  return frames.cache() if cache else frames
