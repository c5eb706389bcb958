"""Flags, shard writing and error reporting shared by the data_prep binaries."""

from collections.abc import Iterator, Mapping, Sequence
import contextlib
import re
import sys
from typing import Any

from absl import flags
import tensorflow as tf

from hvrnn_tf.data import shard_writer

OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", None, "Folder for the shards and their metadata (required)."
)
SEQUENCES_PER_SHARD = flags.DEFINE_integer(
  "sequences_per_shard", 256, "Sequences per TFRecord shard.", lower_bound=1
)
COMPRESSION = flags.DEFINE_enum(
  "compression", "none", ["none", "gzip"], "Shard compression."
)
NUM_WORKERS = flags.DEFINE_integer(
  "num_workers", 4, "Shards written in parallel (threads).", lower_bound=1
)


def compression() -> str | None:
  return None if COMPRESSION.value == "none" else "GZIP"


def write(
  sequences: Sequence[Mapping[str, Any]], prefix: str, info: Mapping[str, Any]
) -> list[str]:
  """`shard_writer.write_shards` into --output_dir, configured by the flags."""
  return shard_writer.write_shards(
    sequences,
    OUTPUT_DIR.value,
    prefix,
    SEQUENCES_PER_SHARD.value,
    compression=compression(),
    info=info,
    num_workers=NUM_WORKERS.value,
  )


def error_message(error: Exception) -> str:
  """`error`'s message, without TensorFlow's op decorations."""
  message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error))
  return re.sub(r"\s*\[Op:\w+\].*$", "", message, flags=re.S).strip()


@contextlib.contextmanager
def reporting_errors(binary: str) -> Iterator[None]:
  """Ends the process with one line `<binary>: error: <message>`, no traceback.

  For bad input (ValueError), OS and TensorFlow file errors (e.g. an
  unwritable --output_dir).
  """
  try:
    yield
  except (ValueError, OSError, tf.errors.OpError) as e:
    sys.exit(f"{binary}: error: {error_message(e)}")
