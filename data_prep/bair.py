"""Converts BAIR robot pushing ("softmotion30_44k") to sequence TFRecord shards.

From the original release
(http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar):
  python -m data_prep.bair --bair_dir=/data/softmotion30_44k --output_dir=/data/bair
From TFDS `bair_robot_pushing_small`, already prepared in a TFDS data_dir:
  python -m data_prep.bair --bair_tfds_data_dir=~/tensorflow_datasets --output_dir=/data/bair

Writes `train-*` and `test-*` shards: frames uint8 [30, 64, 64, 3] (the
`image_aux1` camera by default) with extras "actions" [30, 4] and "positions"
[30, 3] (end-effector). The release's test folder (256 sequences) is the test
set; `--bair_test_trajectories=256-511` instead takes the release's TRAIN
trajectories with those numbers (from the `traj_<first>_to_<last>.tfrecords`
file names) as the test set and leaves them out of train.
"""

import collections.abc
from collections.abc import Callable, Iterator
import os
import re
import threading

from absl import app
from absl import flags
from google.protobuf import message
import numpy as np
import tensorflow as tf

from data_prep import shard_flags

FRAME_SHAPE = (64, 64, 3)
_TRAJ_RE = re.compile(r"traj_(\d+)_to_(\d+)\.tfrecords$")

BAIR_DIR = flags.DEFINE_string(
  "bair_dir", None, "Release folder `softmotion30_44k` (with train/ and test/)."
)
TFDS_DATA_DIR = flags.DEFINE_string(
  "bair_tfds_data_dir",
  None,
  "Read TFDS bair_robot_pushing_small prepared in this data_dir instead.",
)
IMAGE_KEY = flags.DEFINE_enum(
  "bair_image_key",
  "image_aux1",
  ["image_aux1", "image_main"],
  "Camera to keep.",
)
TEST_TRAJECTORIES = flags.DEFINE_string(
  "bair_test_trajectories",
  "",
  "'<first>-<last>': test = these train trajectories (release input only).",
)
SPLITS = flags.DEFINE_list("bair_splits", ["train", "test"], "Splits to write.")


def parse_release_example(
  serialized: bytes, image_key: str = "image_aux1"
) -> dict[str, np.ndarray]:
  """Decodes one release record (frames i = 0, 1, ... while `{i}/<image_key>/encoded` exists).

  Returns:
    {"frames": uint8 [T, 64, 64, 3], "actions": float32 [T, 4], "positions": float32 [T, 3]}.

  Raises:
    ValueError: a frame without its image, action or end-effector position, or
      of the wrong size.
  """
  try:
    feature = tf.train.Example.FromString(serialized).features.feature
  except message.DecodeError as e:
    raise ValueError(f"Not a tf.train.Example: {e}") from e
  frames, actions, positions = [], [], []
  while f"{len(frames)}/{image_key}/encoded" in feature:
    i = len(frames)
    image = feature[f"{i}/{image_key}/encoded"].bytes_list.value
    action = feature[f"{i}/action"].float_list.value
    position = feature[f"{i}/endeffector_pos"].float_list.value
    if (
      len(image) != 1
      or len(image[0]) != np.prod(FRAME_SHAPE)
      or len(action) != 4
      or len(position) != 3
    ):
      raise ValueError(
        f"Frame {i}: expected one {np.prod(FRAME_SHAPE)}-byte image, 4 action and 3 position "
        f"values; got {[len(v) for v in image]} bytes, {len(action)} and {len(position)} values."
      )
    frames.append(np.frombuffer(image[0], np.uint8).reshape(FRAME_SHAPE))
    actions.append(action)
    positions.append(position)
  if not frames:
    raise ValueError(
      f"No '0/{image_key}/encoded' feature: not a BAIR release record."
    )
  return {
    "frames": np.stack(frames),
    "actions": np.asarray(actions, np.float32),
    "positions": np.asarray(positions, np.float32),
  }


class StreamedSequence(collections.abc.Sequence):
  """Indexable view of a stream: item i comes from an iterator opened at i.

  Each thread keeps its own iterator, so consecutive indices (how
  `shard_writer.write_shards` reads a shard) are streamed; any other index
  reopens it.
  """

  def __init__(self, length: int, open_at: Callable[[int], Iterator]):
    self._length = length
    self._open_at = open_at
    self._cursor = threading.local()

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int):
    if not 0 <= index < self._length:
      raise IndexError(f"index {index} out of range [0, {self._length}).")
    if getattr(self._cursor, "next_index", None) != index:
      self._cursor.iterator = self._open_at(index)
    self._cursor.next_index = index + 1
    return next(self._cursor.iterator)


def release_files(directory: str) -> tuple[list[str], list[int], list[int]]:
  """The release's `*.tfrecords` in `directory`, sorted by first trajectory.

  Returns:
    (paths, record counts, first trajectory numbers). With `traj_<a>_to_<b>`
    names the counts come from the names (b - a + 1); otherwise files are
    sorted by name, counted by reading, and numbered consecutively.
  """
  paths = tf.io.gfile.glob(os.path.join(directory, "*.tfrecords"))
  if not paths:
    raise ValueError(f"No *.tfrecords files in {directory}.")
  matches = [_TRAJ_RE.search(p) for p in paths]
  if all(matches):
    order = sorted(range(len(paths)), key=lambda k: int(matches[k][1]))
    return (
      [paths[k] for k in order],
      [int(matches[k][2]) - int(matches[k][1]) + 1 for k in order],
      [int(matches[k][1]) for k in order],
    )
  paths = sorted(paths)
  counts = [_count_records(p) for p in paths]
  return paths, counts, list(np.cumsum([0] + counts[:-1]))


def _count_records(path: str) -> int:
  try:
    return int(tf.data.TFRecordDataset(path).reduce(0, lambda n, _: n + 1))
  except tf.errors.DataLossError as e:
    raise ValueError(
      f"{path}: truncated or corrupt record ({shard_flags.error_message(e)})"
    ) from e


def release_sequences(
  paths: list[str],
  counts: list[int],
  positions: np.ndarray,
  image_key: str = "image_aux1",
) -> StreamedSequence:
  """The converted records at `positions`, in that order.

  Args:
    paths: release files; `counts` their numbers of records.
    positions: int [N] indices of records in the concatenated files.
  """
  offsets = np.cumsum([0] + counts)

  def open_at(start: int) -> Iterator[dict[str, np.ndarray]]:
    next_position, records, path = None, None, None
    for position in positions[start:]:
      if position != next_position:
        k = int(np.searchsorted(offsets, position, side="right") - 1)
        path, offset = paths[k], int(position - offsets[k])
        records = tf.data.TFRecordDataset(path).skip(offset).as_numpy_iterator()
      try:
        sequence = parse_release_example(next(records), image_key)
      except StopIteration:
        raise ValueError(
          f"{path} holds fewer records than its name says ({counts[k]})."
        ) from None
      except tf.errors.DataLossError as e:
        raise ValueError(
          f"{path}: truncated or corrupt record (record "
          f"{position - offsets[k]}: {shard_flags.error_message(e)})"
        ) from e
      except (ValueError, tf.errors.OpError) as e:
        raise ValueError(
          f"{path}, record {position - offsets[k]}: "
          f"{shard_flags.error_message(e)}"
        ) from e
      yield sequence
      # The next position of this file is streamed; the next file is opened.
      next_position = position + 1 if position + 1 < offsets[k + 1] else None

  return StreamedSequence(len(positions), open_at)


def release_split(
  bair_dir: str,
  split: str,
  test_trajectories: str = "",
  image_key: str = "image_aux1",
) -> StreamedSequence:
  """Sequences of a split of the release in `bair_dir` (see the module docstring)."""
  if not test_trajectories:
    paths, counts, _ = release_files(os.path.join(bair_dir, split))
    return release_sequences(paths, counts, np.arange(sum(counts)), image_key)
  match = re.fullmatch(r"(\d+)-(\d+)", test_trajectories)
  if not match or int(match[1]) > int(match[2]):
    raise ValueError(
      f"bair_test_trajectories={test_trajectories!r} must be '<first>-<last>', e.g. '256-511'."
    )
  train_dir = os.path.join(bair_dir, "train")
  paths, counts, firsts = release_files(train_dir)
  if not all(_TRAJ_RE.search(p) for p in paths):
    raise ValueError(
      f"bair_test_trajectories needs traj_<first>_to_<last>.tfrecords names in {train_dir}."
    )
  numbers = np.concatenate(
    [first + np.arange(count) for first, count in zip(firsts, counts)]
  )
  in_test = (numbers >= int(match[1])) & (numbers <= int(match[2]))
  if not in_test.any():
    raise ValueError(
      f"No trajectory of {train_dir} is in bair_test_trajectories={test_trajectories}."
    )
  return release_sequences(
    paths,
    counts,
    np.flatnonzero(in_test if split == "test" else ~in_test),
    image_key,
  )


def tfds_split(
  data_dir: str, split: str, image_key: str = "image_aux1"
) -> StreamedSequence:
  """A split of TFDS `bair_robot_pushing_small` prepared in `data_dir`.

  Nothing is downloaded: TFDS must have prepared the dataset already.
  """
  import tensorflow_datasets as tfds  # Imported lazily: slow, and only needed here.

  builder = tfds.builder("bair_robot_pushing_small", data_dir=data_dir)
  if not builder.is_prepared():
    raise ValueError(
      f"TFDS bair_robot_pushing_small is not prepared in {data_dir}. Prepare it with "
      f"`tfds build bair_robot_pushing_small --data_dir={data_dir}` or pass --bair_dir."
    )

  def open_at(start: int) -> Iterator[dict[str, np.ndarray]]:
    for example in tfds.as_numpy(
      builder.as_dataset(split=f"{split}[{start}:]", shuffle_files=False)
    ):
      yield {
        "frames": example[image_key],
        "actions": example["action"],
        "positions": example["endeffector_pos"],
      }

  return StreamedSequence(builder.info.splits[split].num_examples, open_at)


def main(argv: list[str]) -> None:
  del argv
  if bool(BAIR_DIR.value) == bool(TFDS_DATA_DIR.value):
    raise app.UsageError(
      "Pass exactly one of --bair_dir and --bair_tfds_data_dir."
    )
  if TFDS_DATA_DIR.value and TEST_TRAJECTORIES.value:
    raise app.UsageError(
      "--bair_test_trajectories needs the release input (--bair_dir)."
    )
  for split in SPLITS.value:
    if split not in ("train", "test"):
      raise app.UsageError(
        f"--bair_splits: {split!r} is not 'train' or 'test'."
      )
  with shard_flags.reporting_errors("data_prep.bair"):
    for split in SPLITS.value:
      _convert(split)


def _convert(split: str) -> None:
  """Writes the `split` shards from the input the flags name."""
  if BAIR_DIR.value:
    sequences = release_split(
      BAIR_DIR.value, split, TEST_TRAJECTORIES.value, IMAGE_KEY.value
    )
    source = f"bair release {BAIR_DIR.value}"
  else:
    sequences = tfds_split(TFDS_DATA_DIR.value, split, IMAGE_KEY.value)
    source = f"tfds bair_robot_pushing_small {TFDS_DATA_DIR.value}"
  shard_flags.write(
    sequences,
    split,
    {
      "source": source,
      "split": split,
      "image_key": IMAGE_KEY.value,
      "test_trajectories": TEST_TRAJECTORIES.value,
    },
  )


if __name__ == "__main__":
  flags.mark_flag_as_required("output_dir")
  app.run(main)
