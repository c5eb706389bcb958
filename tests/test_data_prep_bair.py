"""Tests of data_prep.bair on a small fake release in the original format."""

import re
import shutil

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from data_prep import bair
from hvrnn_tf.data import records

FRAMES = 30


def _trajectory(number: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(number)
  return {
    "frames": rng.integers(0, 256, (FRAMES, 64, 64, 3), dtype=np.uint8),
    "main": rng.integers(0, 256, (FRAMES, 64, 64, 3), dtype=np.uint8),
    "actions": rng.normal(size=(FRAMES, 4)).astype(np.float32),
    "positions": rng.normal(size=(FRAMES, 3)).astype(np.float32),
  }


def _release_record(number: int) -> bytes:
  t = _trajectory(number)
  feature = {}
  for i in range(FRAMES):
    feature[f"{i}/image_aux1/encoded"] = tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[t["frames"][i].tobytes()])
    )
    feature[f"{i}/image_main/encoded"] = tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[t["main"][i].tobytes()])
    )
    feature[f"{i}/action"] = tf.train.Feature(
      float_list=tf.train.FloatList(value=t["actions"][i])
    )
    feature[f"{i}/endeffector_pos"] = tf.train.Feature(
      float_list=tf.train.FloatList(value=t["positions"][i])
    )
  return tf.train.Example(
    features=tf.train.Features(feature=feature)
  ).SerializeToString()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
  """test/traj_0_to_1; train/traj_2_to_4 and traj_5_to_7 (created out of order)."""
  root = tmp_path_factory.mktemp("softmotion30_44k")
  for split, first, last in (("test", 0, 1), ("train", 5, 7), ("train", 2, 4)):
    (root / split).mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(
      str(root / split / f"traj_{first}_to_{last}.tfrecords")
    ) as writer:
      for number in range(first, last + 1):
        writer.write(_release_record(number))
  return root


def _read_dataset(folder, prefix: str) -> list[dict[str, np.ndarray]]:
  paths = sorted(tf.io.gfile.glob(str(folder / f"{prefix}-*")))
  assert records.read_metadata(paths)["num_sequences"] == sum(
    1 for p in paths for _ in tf.data.TFRecordDataset(p)
  )
  return [
    {
      k: v.numpy()
      for k, v in records.parse_sequence(e, ["actions", "positions"]).items()
    }
    for p in paths
    for e in tf.data.TFRecordDataset(p)
  ]


def _assert_trajectories(converted, numbers):
  assert len(converted) == len(numbers)
  for sequence, number in zip(converted, numbers):
    expected = _trajectory(number)
    for key in ("frames", "actions", "positions"):
      np.testing.assert_array_equal(sequence[key], expected[key])


def _convert(tmp_path, **flag_values):
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(
    output_dir=str(tmp_path),
    sequences_per_shard=2,
    num_workers=2,
    **flag_values,
  ):
    bair.main([])


def test_converts_the_release_frame_by_frame(tmp_path, release):
  _convert(tmp_path, bair_dir=str(release))
  _assert_trajectories(_read_dataset(tmp_path, "train"), [2, 3, 4, 5, 6, 7])
  _assert_trajectories(_read_dataset(tmp_path, "test"), [0, 1])


def test_trajectory_range_as_test_split(tmp_path, release):
  _convert(tmp_path, bair_dir=str(release), bair_test_trajectories="3-5")
  _assert_trajectories(_read_dataset(tmp_path, "train"), [2, 6, 7])
  _assert_trajectories(_read_dataset(tmp_path, "test"), [3, 4, 5])


def test_random_access_reopens_the_stream(release):
  paths, counts, firsts = bair.release_files(str(release / "train"))
  assert firsts == [2, 5] and counts == [3, 3]
  sequences = bair.release_sequences(paths, counts, np.arange(6))
  _assert_trajectories(
    [sequences[4], sequences[1], sequences[2], sequences[5]], [6, 3, 4, 7]
  )


def test_files_without_trajectory_names_are_counted(tmp_path):
  (tmp_path / "train").mkdir()
  with tf.io.TFRecordWriter(str(tmp_path / "train" / "b.tfrecords")) as writer:
    writer.write(_release_record(9))
    writer.write(_release_record(8))
  paths, counts, _ = bair.release_files(str(tmp_path / "train"))
  assert counts == [2]
  _assert_trajectories(
    list(bair.release_sequences(paths, counts, np.array([1, 0]))), [8, 9]
  )
  with pytest.raises(ValueError, match="traj_<first>_to_<last>"):
    bair.release_split(str(tmp_path), "test", "0-1")


def test_bad_record_is_a_clear_error():
  example = tf.train.Example.FromString(_release_record(0))
  del example.features.feature["3/action"]
  with pytest.raises(
    ValueError,
    match="Frame 3",
  ):
    bair.parse_release_example(example.SerializeToString())
  with pytest.raises(ValueError, match="BAIR"):
    bair.parse_release_example(tf.train.Example().SerializeToString())


def test_truncated_release_file_is_a_one_line_error(tmp_path, release):
  shutil.copytree(release, tmp_path / "release")
  truncated = tmp_path / "release" / "train" / "traj_5_to_7.tfrecords"
  truncated.write_bytes(truncated.read_bytes()[:-5000])  # Record 2 of 3 cut.
  with pytest.raises(SystemExit) as error:
    _convert(tmp_path / "out", bair_dir=str(tmp_path / "release"))
  assert re.fullmatch(
    rf"data_prep\.bair: error: {re.escape(str(truncated))}: truncated or "
    r"corrupt record \(record 2: truncated record at \d+[^\n]*\)",
    error.value.code,
  )
  # Train shards 0 and 1 were written before shard 2 failed: removed.
  assert not list((tmp_path / "out").iterdir())


def test_truncated_file_without_trajectory_names(tmp_path):
  path = tmp_path / "b.tfrecords"
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(_release_record(9))
  path.write_bytes(path.read_bytes()[:-100])
  with pytest.raises(ValueError, match=re.escape(str(path))):
    bair.release_files(str(tmp_path))


def test_bad_trajectory_range(release):
  with pytest.raises(ValueError, match="<first>-<last>"):
    bair.release_split(str(release), "test", "511-256")


def test_tfds_input_must_be_prepared(tmp_path):
  with pytest.raises(ValueError, match="bair_robot_pushing_small"):
    bair.tfds_split(str(tmp_path), "test")
