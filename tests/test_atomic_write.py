"""Tests of hvrnn_tf.utils.atomic_write: files appear whole or not at all."""

import os

import pytest
import tensorflow as tf

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


@pytest.mark.parametrize("scheme", ["file://", "ram://"])
def test_directories_arrive_whole_on_other_filesystems(tmp_path, scheme):
  # ram:// renames a directory without its files, and lists "assets.extra"'s
  # tail ".extra" under "assets": atomic_write copies what exists.
  root = f"{scheme}{tmp_path}"

  def write(tmp):
    for folder in ("variables", "assets", "assets.extra"):
      tf.io.gfile.makedirs(f"{tmp}/{folder}")
    atomic_write.write_text(f"{tmp}/variables/data", "weights")
    atomic_write.write_text(f"{tmp}/assets.extra/warmup", "requests")
    atomic_write.write_text(f"{tmp}/saved_model.pb", "graph")

  atomic_write.write_with(f"{root}/1", write)
  assert sorted(tf.io.gfile.listdir(root)) == ["1"]
  files = {
    os.path.relpath(os.path.join(d, name), f"{root}/1")
    for d, _, names in tf.io.gfile.walk(f"{root}/1")
    for name in names
    if tf.io.gfile.exists(os.path.join(d, name))
  }
  assert files == {"saved_model.pb", "variables/data", "assets.extra/warmup"}
  with tf.io.gfile.GFile(f"{root}/1/variables/data") as f:
    assert f.read() == "weights"


def test_write_bytes_on_a_ram_filesystem():
  atomic_write.write_bytes("ram://atomic_write/a.png", b"\x89PNG")
  atomic_write.write_bytes("ram://atomic_write/a.png", b"\x89PNG2")
  assert tf.io.gfile.listdir("ram://atomic_write") == ["a.png"]
  with tf.io.gfile.GFile("ram://atomic_write/a.png", "rb") as f:
    assert f.read() == b"\x89PNG2"
