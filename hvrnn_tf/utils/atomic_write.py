"""Files that appear whole or not at all: written under a temporary name, then renamed.

Paths go through `tf.io.gfile`, so every filesystem TensorFlow supports works.
A file's rename is atomic on local disks and on object stores (a GCS object
appears whole). A directory's rename is atomic only on local disks (plain
paths and file:// URIs). Elsewhere (gs://, s3://, ram://, ...) TensorFlow
renames a directory object by object (GCS) or not at all (ram:// moves an
empty directory), so a written directory is copied into place file by file
instead: a reader may see it part-filled while it is copied, and a copy that
fails is removed again.
"""

from collections.abc import Callable
import contextlib
import os
from typing import Any

import tensorflow as tf

# Filesystems (URI schemes) whose rename of a directory is atomic.
_ATOMIC_DIRECTORY_RENAME = ("", "file")


def temporary_path(path: str) -> str:
  """This process's hidden sibling of `path`: globs of `path`'s name never match it."""
  directory, name = os.path.split(path)
  return os.path.join(directory, f".{name}.tmp-{os.getpid()}")


def _scheme(path: str) -> str:
  return path.split("://", 1)[0] if "://" in path else ""


def _remove_tree(path: str) -> None:
  # ram:// lists a sibling's tail as a child ("assets.extra" puts ".extra"
  # under "assets"), then fails to find it once the rest is removed.
  with contextlib.suppress(tf.errors.NotFoundError):
    tf.io.gfile.rmtree(path)


def _copy_tree(source: str, target: str) -> None:
  """Copies directory `source` to `target`; removes `target` if that fails."""
  try:
    for directory, _, files in tf.io.gfile.walk(source):
      destination = target + directory[len(source) :]
      tf.io.gfile.makedirs(destination)
      for name in files:
        path = os.path.join(directory, name)
        if tf.io.gfile.exists(path):  # not a ram:// phantom (_remove_tree)
          tf.io.gfile.copy(path, os.path.join(destination, name))
  except BaseException:
    if tf.io.gfile.exists(target):
      _remove_tree(target)
    raise


def write_with(path: str, write: Callable[[str], Any]) -> None:
  """Calls `write(tmp)` on `temporary_path(path)`, then renames tmp to `path`.

  An existing file `path` is replaced; a directory `path` must not exist yet.
  The temporary file or directory is removed when `write` or the rename fails.
  """
  tmp = temporary_path(path)
  try:
    write(tmp)
    if tf.io.gfile.isdir(tmp) and _scheme(path) not in _ATOMIC_DIRECTORY_RENAME:
      _copy_tree(tmp, path)
    else:
      tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.isdir(tmp):
      _remove_tree(tmp)
    elif tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically (see `write_with`)."""

  def write(tmp: str) -> None:
    with tf.io.gfile.GFile(tmp, "wb") as f:
      f.write(data)

  write_with(path, write)


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (see `write_with`)."""
  write_bytes(path, text.encode("utf-8"))
