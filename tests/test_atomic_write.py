"""Tests of hvrnn_tf.utils.atomic_write: files appear whole or not at all."""

import os

import pytest

from hvrnn_tf.utils import atomic_write


def test_temporary_path_is_a_hidden_sibling(tmp_path):
  tmp = atomic_write.temporary_path(str(tmp_path / "train-00000.tfrecord"))
  assert os.path.dirname(tmp) == str(tmp_path)
  assert os.path.basename(tmp) == f".train-00000.tfrecord.tmp-{os.getpid()}"


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "metrics.json"
  path.write_text("old")
  atomic_write.write_text(str(path), "new")
  assert path.read_text() == "new"
  assert os.listdir(tmp_path) == ["metrics.json"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
  path = tmp_path / "sample.png"
  path.write_text("old")

  def write(tmp):
    with open(tmp, "w") as f:
      f.write("half")
    raise OSError("disk full")

  with pytest.raises(OSError, match="disk full"):
    atomic_write.write_with(str(path), write)
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["sample.png"]


def test_directories_are_renamed_whole_or_removed(tmp_path):
  def write(tmp, fail=False):
    os.makedirs(os.path.join(tmp, "variables"))
    if fail:
      raise ValueError("cannot trace")

  with pytest.raises(ValueError, match="cannot trace"):
    atomic_write.write_with(str(tmp_path / "1"), lambda t: write(t, True))
  assert not os.listdir(tmp_path)
  atomic_write.write_with(str(tmp_path / "1"), write)
  assert os.listdir(tmp_path) == ["1"]
  assert os.listdir(tmp_path / "1") == ["variables"]
