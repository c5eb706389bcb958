"""Files that appear whole or not at all: written under a temporary name, then renamed.

Paths go through `tf.io.gfile`, so every filesystem TensorFlow supports works.
"""

from collections.abc import Callable
import os
from typing import Any

import tensorflow as tf


def temporary_path(path: str) -> str:
  """This process's hidden sibling of `path`: globs of `path`'s name never match it."""
  directory, name = os.path.split(path)
  return os.path.join(directory, f".{name}.tmp-{os.getpid()}")


def write_with(path: str, write: Callable[[str], Any]) -> None:
  """Calls `write(tmp)` on `temporary_path(path)`, then renames tmp to `path`.

  An existing file `path` is replaced; a directory `path` must not exist yet.
  The temporary file or directory is removed when `write` or the rename fails.
  """
  tmp = temporary_path(path)
  try:
    write(tmp)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.isdir(tmp):
      tf.io.gfile.rmtree(tmp)
    elif tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (see `write_with`)."""

  def write(tmp: str) -> None:
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)

  write_with(path, write)
