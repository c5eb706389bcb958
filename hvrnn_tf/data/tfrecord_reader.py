"""Reads sequence shards in the `records` format as checked uint8 frame windows.

The TFRecord source of `inputs.make_dataset`: every problem it can see before
reading (no files, a shape or length that does not fit, an unreadable first
record, an interrupted conversion) is a ValueError naming the file; a record
that does not fit, or a corrupted shard, fails while reading, naming the file.
"""

import os
import sys

from absl import logging
import tensorflow as tf

from hvrnn_tf.data import records

Shape = tuple[int, int, int]


def tfrecord_frames(
  train: bool,
  sequence_length: int,
  shape: Shape,
  file_pattern: str | None,
  seed: int,
  shuffle_buffer: int,
  cache: bool,
  compression: str | None,
  skip_counter: tf.Variable | None,
) -> tf.data.Dataset:
  """uint8 [T, H, W, C] windows of the sequences stored in `file_pattern`'s files.

  Args:
    train: random windows of an infinite shuffled stream; else the first
      `sequence_length` frames of each sequence, in file order, once.
    sequence_length: frames per window T.
    shape: frame shape (H, W, C) the files must store.
    file_pattern, seed, shuffle_buffer, cache, compression: see
      `inputs.make_dataset`.
    skip_counter: None to fail on a corrupted or truncated shard; else the
      int64 variable that counts the records skipped instead.
  """
  file_pattern, paths, expected, metadata = _shard_files(
    train, file_pattern, sequence_length, shape, skip_counter is not None
  )
  compressions = [compression or records.tfrecord_compression(p) for p in paths]
  _check_first_record(paths[0], compressions[0], sequence_length, shape)
  logging.info(
    "Reading %d sequence files matching %s%s.",
    len(paths),
    file_pattern,
    "" if metadata is None else f" ({metadata['num_sequences']} sequences)",
  )

  def read(
    path: tf.Tensor, compression_type: tf.Tensor, expected_count: tf.Tensor
  ) -> tf.data.Dataset:
    examples = tf.data.TFRecordDataset(path, compression_type)
    if metadata is not None:
      examples = _count_checked(examples, path, expected_count, skip_counter)
    return examples.map(
      lambda example: _checked_raw_frames(example, path, sequence_length, shape)
    )

  files = tf.data.Dataset.from_tensor_slices(
    (paths, compressions, tf.constant(expected, tf.int64))
  )
  if train:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    sequences = files.interleave(
      read,
      cycle_length=min(len(paths), 16),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=False,
    )
  else:
    sequences = files.flat_map(read)
  if cache:
    sequences = sequences.cache()
  if train:
    sequences = sequences.repeat().shuffle(shuffle_buffer, seed=seed)
  return _windows(sequences, train, seed, sequence_length, shape)


def _shard_files(
  train: bool,
  file_pattern: str | None,
  sequence_length: int,
  shape: Shape,
  skip_corrupt: bool,
) -> tuple[str, list[str], list[int], dict | None]:
  """(pattern of the split, its files, their record counts (-1: unknown), metadata)."""
  if not file_pattern:
    raise ValueError(
      "source='tfrecord' needs file_pattern (a glob of the TFRecord files)."
    )
  file_pattern = file_pattern.replace("{split}", "train" if train else "test")
  paths = sorted(tf.io.gfile.glob(file_pattern))
  if not paths:
    raise ValueError(f"file_pattern={file_pattern!r} matches no files.")
  metadata = records.read_metadata(paths)
  if metadata is not None:
    _check_metadata(metadata, sequence_length, shape)
    counts = {
      shard["file"]: shard["num_sequences"] for shard in metadata["shards"]
    }
    expected = [counts[os.path.basename(p)] for p in paths]
  elif skip_corrupt:
    raise ValueError(
      f"skip_corrupt needs the dataset's metadata file (written by data_prep) to count lost "
      f"records; {file_pattern!r} has none."
    )
  else:
    expected = [-1] * len(paths)
  return file_pattern, paths, expected, metadata


def _windows(
  sequences: tf.data.Dataset,
  train: bool,
  seed: int,
  sequence_length: int,
  shape: Shape,
) -> tf.data.Dataset:
  """uint8 [T, H, W, C] windows of the raw frames string [>= T] `sequences`.

  train: a random window per element; else the first T frames.
  """

  def window(index: tf.Tensor, frame_bytes: tf.Tensor) -> tf.Tensor:
    start = 0
    if train:
      # Stateless (seed, index): a stateful random op would make the
      # iterator impossible to save in a checkpoint.
      start = tf.random.stateless_uniform(
        [],
        tf.stack([tf.constant(seed, tf.int64), index]),
        0,
        tf.shape(frame_bytes)[0] - sequence_length + 1,
        tf.int32,
      )
    frames = records.decode_frames(
      frame_bytes[start : start + sequence_length], *shape
    )
    return tf.ensure_shape(frames, (sequence_length, *shape))

  return sequences.enumerate().map(
    window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not train
  )


def _check_first_record(
  path: str, compression: str, sequence_length: int, shape: Shape
) -> None:
  """Reads the first record of `path` eagerly; raises a ValueError naming the problem."""
  try:
    first = next(iter(tf.data.TFRecordDataset(path, compression).take(1)), None)
    if first is None:
      raise ValueError(f"{path} holds no records.")
    raw = records.parse_raw(first)
  except tf.errors.OpError as e:
    raise ValueError(
      f"Cannot read {path} as {compression or 'uncompressed'} TFRecords of sequences in the "
      f"project's format: {e.message}"
    ) from e
  stored = tuple(int(raw[k]) for k in ("height", "width", "channels"))
  if stored != shape:
    raise ValueError(
      f"{path} stores frames of shape {stored} (H, W, C); image_size and channels ask for {shape}."
    )
  if int(raw["length"]) < sequence_length:
    raise ValueError(
      f"{path} stores sequences of {int(raw['length'])} frames; sequence_length={sequence_length}."
    )


def _check_metadata(metadata: dict, sequence_length: int, shape: Shape) -> None:
  name = (
    f"the metadata of {metadata['prefix']} (source "
    f"{metadata.get('source')}, split {metadata.get('split')})"
  )
  if tuple(metadata["frame_shape"]) != shape:
    raise ValueError(
      f"{name} says frames have shape {tuple(metadata['frame_shape'])} (H, W, C); image_size and "
      f"channels ask for {shape}."
    )
  if metadata["sequence_length"] < sequence_length:
    raise ValueError(
      f"{name} says sequences have {metadata['sequence_length']} frames; "
      f"sequence_length={sequence_length}."
    )


def _checked_raw_frames(
  example: tf.Tensor,
  path: tf.Tensor,
  sequence_length: int,
  shape: Shape,
) -> tf.Tensor:
  """string [T] raw frames of `example`, asserting they have the requested layout."""
  raw = records.parse_raw(example)
  frames = raw["frames"]
  height, width, channels = shape
  ok = tf.reduce_all(
    [
      raw["height"] == height,
      raw["width"] == width,
      raw["channels"] == channels,
      raw["length"] >= sequence_length,
      tf.size(frames, tf.int64) == raw["length"],
      tf.reduce_all(tf.strings.length(frames) == height * width * channels),
    ]
  )
  check = tf.debugging.Assert(
    ok,
    [
      f"A sequence does not match the request ({sequence_length}+ frames of shape {shape}) in file",
      path,
      "stored length, height, width, channels:",
      raw["length"],
      raw["height"],
      raw["width"],
      raw["channels"],
    ],
  )
  with tf.control_dependencies([check]):
    return tf.identity(frames)


def _count_checked(
  examples: tf.data.Dataset,
  path: tf.Tensor,
  expected_count: tf.Tensor,
  counter: tf.Variable | None,
) -> tf.data.Dataset:
  """`examples` of one shard, checking that all `expected_count` of them were readable.

  A corrupted or truncated record ends the shard's reading (TFRecord readers
  cannot resynchronise). Then this fails naming the file, or with a `counter`
  prints a warning and adds the lost records to it.
  """
  marked = (
    examples.ignore_errors()
    .map(lambda e: (e, False))
    .concatenate(tf.data.Dataset.from_tensors((tf.constant(b""), True)))
  )
  numbered = marked.scan(
    tf.constant(0, tf.int64), lambda n, item: (n + 1, (*item, n))
  )

  def keep(
    example: tf.Tensor, is_end: tf.Tensor, index: tf.Tensor
  ) -> tf.Tensor:
    del example
    lost = tf.where(is_end, expected_count - index, tf.constant(0, tf.int64))
    if counter is None:
      check = tf.debugging.Assert(
        lost <= 0,
        [
          "Corrupted or truncated TFRecord file",
          path,
          "records readable:",
          index,
          "expected:",
          expected_count,
          "(pass skip_corrupt=True to skip the lost records).",
        ],
      )
    else:
      check = tf.cond(
        lost > 0,
        lambda: _report_skip(counter, path, lost, expected_count),
        tf.no_op,
      )
    with tf.control_dependencies([check]):
      return tf.logical_not(is_end)

  return numbered.filter(keep).map(lambda example, is_end, index: example)


def _report_skip(
  counter: tf.Variable,
  path: tf.Tensor,
  lost: tf.Tensor,
  expected_count: tf.Tensor,
) -> tf.Operation:
  report = tf.print(
    "WARNING skip_corrupt: corrupted or truncated file",
    path,
    "- skipped",
    lost,
    "of",
    expected_count,
    "records.",
    output_stream=sys.stderr,
  )
  with tf.control_dependencies([report]):
    return tf.group(counter.assign_add(lost))
