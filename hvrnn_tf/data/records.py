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
Each file is written under a temporary name and renamed when complete, so a
shard or metadata file that exists is whole; shards without metadata mean an
interrupted conversion (`read_metadata` says so).
"""

import collections.abc
import concurrent.futures
import hashlib
import json
import os
import re
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

COMPRESSIONS = (None, "GZIP")
FORMAT_VERSION = "hvrnn_tf.sequence_tfrecord.v1"
_SHARD_RE = re.compile(
  r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord(?P<gz>\.gz)?$"
)

# {"frames": uint8 [T, H, W, C], <extra name>: array castable to float32}.
SequenceItem = Mapping[str, np.ndarray]


class LazySequence(collections.abc.Sequence):
  """A read-only sequence whose item i is `make_item(i)`, computed on access.

  Lets `write_shards` skip the items of shards that are already complete.
  """

  def __init__(self, length: int, make_item: Callable[[int], Any]):
    self._length = length
    self._make_item = make_item

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int) -> Any:
    if not 0 <= index < self._length:
      raise IndexError(f"index {index} out of range [0, {self._length}).")
    return self._make_item(index)


def _check_compression(compression: str | None) -> None:
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
  _check_compression(compression)
  return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord" + (
    ".gz" if compression else ""
  )


def metadata_path(output_dir: str, prefix: str) -> str:
  return os.path.join(output_dir, f"{prefix}.metadata.json")


def _temporary_path(path: str) -> str:
  """A hidden sibling of `path`, so shard globs never match a partial file."""
  directory, name = os.path.split(path)
  return os.path.join(directory, f".{name}.tmp-{os.getpid()}")


def _atomic_write_text(path: str, text: str) -> None:
  tmp = _temporary_path(path)
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_shard(
  path: str, examples: Iterable[bytes], compression: str | None = None
) -> int:
  """Writes serialized examples to `path` atomically (temp file, then rename).

  Returns:
    The number of examples written.
  """
  _check_compression(compression)
  tmp = _temporary_path(path)
  count = 0
  try:
    with tf.io.TFRecordWriter(
      tmp, options=tf.io.TFRecordOptions(compression_type=compression or "")
    ) as writer:
      for example in examples:
        writer.write(example)
        count += 1
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
  return count


def _md5(path: str) -> str:
  digest = hashlib.md5()
  with tf.io.gfile.GFile(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _layout(sequence: SequenceItem) -> dict[str, Any]:
  """The shapes every sequence of a dataset must share."""
  frames = np.asarray(sequence["frames"])
  return {
    "sequence_length": int(frames.shape[0]),
    "frame_shape": [int(d) for d in frames.shape[1:]],
    "extras": {
      k: [int(d) for d in np.shape(v)]
      for k, v in sorted(sequence.items())
      if k != "frames"
    },
  }


def write_shards(
  sequences: Sequence[SequenceItem],
  output_dir: str,
  prefix: str,
  sequences_per_shard: int,
  compression: str | None = None,
  info: Mapping[str, Any] | None = None,
  num_workers: int = 1,
) -> list[str]:
  """Writes `sequences` as numbered shards, then the metadata file; resumable.

  Shard k holds sequences [k * n, (k + 1) * n), n = sequences_per_shard.
  Shards that already exist are complete (they are renamed into place only
  when whole) and are skipped without touching their items, so a
  `LazySequence` resumes an interrupted conversion cheaply; a dataset whose
  metadata exists is complete and left as it is. The conversion's parameters
  (`info`, count, shard size, compression) are recorded in
  `<prefix>.plan.json` first; resuming with different ones is an error.

  Args:
    sequences: len() and indexing; item i = {"frames": uint8 [T, H, W, C],
      <extra>: array} (see `serialize_sequence`). All items must share T, H, W,
      C and the extras' shapes. Accessed from `num_workers` threads.
    output_dir: created if missing.
    prefix: shard name prefix, e.g. "train".
    sequences_per_shard: sequences per shard (the last shard may hold fewer).
    compression: None or "GZIP".
    info: JSON-serializable fields for the metadata, e.g. {"source": ...,
      "split": ...}.
    num_workers: shards written in parallel.

  Returns:
    The shard paths, in order.
  """
  _check_compression(compression)
  if not len(sequences) or sequences_per_shard < 1:
    raise ValueError(
      f"Need >= 1 sequence and sequences_per_shard >= 1; got {len(sequences)} and "
      f"{sequences_per_shard}."
    )
  if "/" in prefix or not prefix:
    raise ValueError(
      f"prefix={prefix!r} must be a non-empty file name prefix without '/'."
    )
  num = len(sequences)
  num_shards = -(-num // sequences_per_shard)
  paths = [
    os.path.join(output_dir, shard_filename(prefix, k, num_shards, compression))
    for k in range(num_shards)
  ]
  tf.io.gfile.makedirs(output_dir)
  plan = {
    "format": FORMAT_VERSION,
    "prefix": prefix,
    "num_sequences": num,
    "sequences_per_shard": sequences_per_shard,
    "compression": compression,
    **(info or {}),
  }
  plan_path = os.path.join(output_dir, f"{prefix}.plan.json")
  _check_or_write_plan(plan_path, plan)
  todo = [k for k in range(num_shards) if not tf.io.gfile.exists(paths[k])]
  if not todo and tf.io.gfile.exists(metadata_path(output_dir, prefix)):
    logging.info(
      "%s: all %d shards and the metadata exist already; nothing to do.",
      prefix,
      num_shards,
    )
    return paths
  layout = _layout(sequences[0])

  def shard_range(k: int) -> range:
    return range(
      k * sequences_per_shard, min(num, (k + 1) * sequences_per_shard)
    )

  def items(k: int) -> Iterable[bytes]:
    for i in shard_range(k):
      sequence = sequences[i]
      if _layout(sequence) != layout:
        raise ValueError(
          f"Sequence {i} has layout {_layout(sequence)}; sequence 0 has {layout}."
        )
      yield serialize_sequence(sequence)

  if len(todo) < num_shards:
    logging.info(
      "%s: %d of %d shards already complete; skipping them.",
      prefix,
      num_shards - len(todo),
      num_shards,
    )
  start = time.time()

  def write(k: int) -> None:
    write_shard(paths[k], items(k), compression)

  with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
    try:
      for done, _ in enumerate(pool.map(write, todo), 1):
        elapsed = time.time() - start
        logging.info(
          "%s: %d/%d shards written (%.1f s, ~%.0f s left).",
          prefix,
          num_shards - len(todo) + done,
          num_shards,
          elapsed,
          elapsed / done * (len(todo) - done),
        )
    except ValueError:  # Bad input: a rerun would fail the same way.
      pool.shutdown(cancel_futures=True)
      _remove_failed_conversion(
        paths,
        [paths[k] for k in todo],
        plan_path,
        metadata_path(output_dir, prefix),
      )
      raise

  shards = [
    {
      "file": os.path.basename(p),
      "num_sequences": len(shard_range(k)),
      "bytes": tf.io.gfile.stat(p).length,
      "md5": _md5(p),
    }
    for k, p in enumerate(paths)
  ]
  _atomic_write_text(
    metadata_path(output_dir, prefix),
    json.dumps({**plan, **layout, "shards": shards}, indent=2, sort_keys=True),
  )
  logging.info(
    "%s: wrote %d sequences in %d shards and %s.",
    prefix,
    num,
    num_shards,
    metadata_path(output_dir, prefix),
  )
  return paths


def _remove_failed_conversion(
  paths: Sequence[str],
  this_run: Sequence[str],
  plan_path: str,
  metadata: str,
) -> None:
  """Deletes the shards of a conversion that failed on bad input.

  A resume would fail again (unlike after an interruption or a write error,
  which keep their complete shards). Without metadata, every shard and the
  plan go; with it (a complete dataset that had lost shards), the shards of
  this run (`this_run`).
  """
  complete = tf.io.gfile.exists(metadata)
  removed = [
    p for p in (this_run if complete else paths) if tf.io.gfile.exists(p)
  ]
  for path in removed + ([] if complete else [plan_path]):
    tf.io.gfile.remove(path)
  logging.warning(
    "Bad input: removed the failed conversion's %d shard(s) from %s.",
    len(removed),
    os.path.dirname(plan_path),
  )


def _check_or_write_plan(path: str, plan: Mapping[str, Any]) -> None:
  """Records the conversion's parameters, or checks a resumed one matches them."""
  text = json.dumps(plan, indent=2, sort_keys=True)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      previous = f.read()
    if json.loads(previous) != json.loads(text):
      raise ValueError(
        f"{path} records an earlier conversion into this directory with other parameters:\n"
        f"{previous}\nnow:\n{text}\nUse another output directory or delete the old files."
      )
  else:
    _atomic_write_text(path, text)


def read_metadata(shard_paths: Sequence[str]) -> dict[str, Any] | None:
  """Loads and checks the metadata of shards named `<prefix>-NNNNN-of-NNNNN.tfrecord[.gz]`.

  Args:
    shard_paths: files of one dataset (e.g. a glob's matches).

  Returns:
    The metadata dict (see `write_shards`), or None when no file follows the
    shard naming (records written by other tools; nothing to check).

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
