"""The project's sequence TFRecord format, shared by every dataset.

One `tf.train.Example` per sequence:
  frames                 bytes_list, T entries: the raw uint8 bytes of one frame
                         [H, W, C] each, in row-major (C order) layout.
  length, height, width, channels   int64 scalars: T, H, W, C.
  extra/<name>           float_list: a float32 extra array, flattened (C order),
                         e.g. BAIR's "actions" [T, 4] and "positions" [T, 3].
  extra/<name>/shape     int64_list: that array's shape.

A sharded dataset in `output_dir` is
  <prefix>-00000-of-000NN.tfrecord[.gz]   the shards (".gz": GZIP-compressed);
  <prefix>.metadata.json                  written last, after every shard is
      complete: frame shape, sequence length, count, extras, compression, the
      caller's fields (source, split, ...) and each shard's size and md5.
`shard_writer.write_shards` writes such datasets; shards without metadata mean
an interrupted conversion (`read_metadata` says so).
"""

from collections.abc import Mapping, Sequence
import json
import os
import re
from typing import Any

import numpy as np
import tensorflow as tf

COMPRESSIONS = (None, "GZIP")
FORMAT_VERSION = "hvrnn_tf.sequence_tfrecord.v1"
_SHARD_RE = re.compile(
  r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord(?P<gz>\.gz)?$"
)

# {"frames": uint8 [T, H, W, C], <extra name>: array castable to float32}.
SequenceItem = Mapping[str, np.ndarray]


def check_compression(compression: str | None) -> None:
  """Raises a ValueError unless `compression` is one of COMPRESSIONS."""
  if compression not in COMPRESSIONS:
    raise ValueError(
      f"compression={compression!r} is not one of {COMPRESSIONS}."
    )


def serialize_sequence(sequence: SequenceItem) -> bytes:
  """Serializes one sequence as a `tf.train.Example` (see the module docstring).

  Args:
    sequence: {"frames": uint8 [T, H, W, C], <name>: extra array castable to
      float32, any shape}; extra names must be non-empty and contain no "/".

  Returns:
    The serialized Example.
  """
  frames = np.asarray(sequence["frames"])
  if frames.dtype != np.uint8 or frames.ndim != 4:
    raise ValueError(
      f"frames must be uint8 [T, H, W, C]; got {frames.dtype} {frames.shape}."
    )
  int64 = lambda values: tf.train.Feature(
    int64_list=tf.train.Int64List(value=values)
  )
  feature = {
    "frames": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[f.tobytes() for f in frames])
    ),
    "length": int64([frames.shape[0]]),
    "height": int64([frames.shape[1]]),
    "width": int64([frames.shape[2]]),
    "channels": int64([frames.shape[3]]),
  }
  for name, value in sequence.items():
    if name == "frames":
      continue
    if not name or "/" in name:
      raise ValueError(
        f"Extra name {name!r} must be non-empty and contain no '/'."
      )
    value = np.asarray(value, np.float32)
    feature[f"extra/{name}"] = tf.train.Feature(
      float_list=tf.train.FloatList(value=value.ravel())
    )
    feature[f"extra/{name}/shape"] = int64(list(value.shape))
  return tf.train.Example(
    features=tf.train.Features(feature=feature)
  ).SerializeToString()


def parse_raw(
  serialized: tf.Tensor, extra_names: Sequence[str] = ()
) -> dict[str, tf.Tensor]:
  """Parses an Example without decoding its frames (graph-compatible).

  Args:
    serialized: scalar string tensor.
    extra_names: extras to parse; each must be present in the record.

  Returns:
    {"frames": string [T] raw frame bytes, "length", "height", "width",
     "channels": int64 scalars, <extra>: float32 with its stored shape}.
  """
  spec = {"frames": tf.io.RaggedFeature(tf.string)}
  spec.update(
    {
      key: tf.io.FixedLenFeature([], tf.int64)
      for key in ("length", "height", "width", "channels")
    }
  )
  for name in extra_names:
    spec[f"extra/{name}"] = tf.io.RaggedFeature(tf.float32)
    spec[f"extra/{name}/shape"] = tf.io.RaggedFeature(tf.int64)
  parsed = tf.io.parse_single_example(serialized, spec)
  out = {
    key: parsed[key]
    for key in ("frames", "length", "height", "width", "channels")
  }
  for name in extra_names:
    out[name] = tf.reshape(
      parsed[f"extra/{name}"], parsed[f"extra/{name}/shape"]
    )
  return out


def decode_frames(
  frame_bytes: tf.Tensor,
  height: int | tf.Tensor,
  width: int | tf.Tensor,
  channels: int | tf.Tensor,
) -> tf.Tensor:
  """Decodes raw frame bytes string [T] into uint8 [T, height, width, channels]."""
  frames = tf.io.decode_raw(frame_bytes, tf.uint8)
  dims = [tf.size(frame_bytes), height, width, channels]
  return tf.reshape(frames, tf.stack([tf.cast(d, tf.int32) for d in dims]))


def parse_sequence(
  serialized: tf.Tensor, extra_names: Sequence[str] = ()
) -> dict[str, tf.Tensor]:
  """Parses an Example into {"frames": uint8 [T, H, W, C], <extra>: float32}."""
  raw = parse_raw(serialized, extra_names)
  out = {
    "frames": decode_frames(
      raw["frames"], raw["height"], raw["width"], raw["channels"]
    )
  }
  out.update({name: raw[name] for name in extra_names})
  return out


def tfrecord_compression(path: str) -> str:
  """The `TFRecordDataset` compression_type of a shard path: "GZIP" for *.gz, else ""."""
  return "GZIP" if path.endswith(".gz") else ""


def shard_filename(
  prefix: str, index: int, num_shards: int, compression: str | None = None
) -> str:
  """ "<prefix>-<index:05d>-of-<num_shards:05d>.tfrecord[.gz]"."""
  check_compression(compression)
  return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord" + (
    ".gz" if compression else ""
  )


def metadata_path(output_dir: str, prefix: str) -> str:
  return os.path.join(output_dir, f"{prefix}.metadata.json")


def read_metadata(shard_paths: Sequence[str]) -> dict[str, Any] | None:
  """Loads and checks the metadata of shards named `<prefix>-NNNNN-of-NNNNN.tfrecord[.gz]`.

  Args:
    shard_paths: files of one dataset (e.g. a glob's matches).

  Returns:
    The metadata dict (see `shard_writer.write_shards`), or None when no file
    follows the shard naming (records written by other tools; nothing to
    check).

  Raises:
    ValueError: shards without a metadata file (an interrupted conversion);
      files from several prefixes; a matched file the metadata does not list; a
      listed shard missing or of the wrong size (truncated or overwritten).
  """
  matches = [_SHARD_RE.match(os.path.basename(p)) for p in shard_paths]
  if not any(matches):
    return None
  prefixes = {
    (os.path.dirname(p), m["prefix"]) for p, m in zip(shard_paths, matches) if m
  }
  if len(prefixes) > 1 or not all(matches):
    raise ValueError(
      "The files must be the shards of one dataset (one folder, one "
      f"prefix); got {sorted(shard_paths)}."
    )
  directory, prefix = prefixes.pop()
  path = metadata_path(directory, prefix)
  if not tf.io.gfile.exists(path):
    raise ValueError(
      f"{directory} has shards {prefix}-*.tfrecord* but no "
      f"{os.path.basename(path)}: the conversion was interrupted (the "
      "metadata is written last). Rerun the data_prep command to finish it."
    )
  with tf.io.gfile.GFile(path) as f:
    metadata = json.load(f)
  listed = {shard["file"]: shard for shard in metadata["shards"]}
  for p in shard_paths:
    if os.path.basename(p) not in listed:
      raise ValueError(
        f"{p} is not listed in {path}; it belongs to another conversion. Delete it."
      )
  for name, shard in listed.items():
    shard_path = os.path.join(directory, name)
    if not tf.io.gfile.exists(shard_path):
      raise ValueError(f"{shard_path}, listed in {path}, is missing.")
    size = tf.io.gfile.stat(shard_path).length
    if size != shard["bytes"]:
      raise ValueError(
        f"{shard_path} has {size} bytes but {path} records {shard['bytes']}: the file is "
        "truncated or was overwritten."
      )
  return metadata
