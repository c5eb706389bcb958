"""Writes sequences as a sharded dataset in the `records` format; resumable.

Each file is written under a temporary name and renamed when complete
(`atomic_write`), so a shard or metadata file that exists is whole; shards
without metadata mean an interrupted conversion (`records.read_metadata` says
so), which rerunning the same conversion finishes.
"""

import collections.abc
from collections.abc import Callable, Iterable, Mapping, Sequence
import concurrent.futures
import hashlib
import json
import os
import time
from typing import Any

from absl import logging
import numpy as np
import tensorflow as tf

from hvrnn_tf.data import records
from hvrnn_tf.utils import atomic_write


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


def write_shard(
  path: str, examples: Iterable[bytes], compression: str | None = None
) -> int:
  """Writes serialized examples to `path` atomically (temp file, then rename).

  Returns:
    The number of examples written.
  """
  records.check_compression(compression)
  count = 0

  def write(tmp: str) -> None:
    nonlocal count
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    with tf.io.TFRecordWriter(tmp, options=options) as writer:
      for example in examples:
        writer.write(example)
        count += 1

  atomic_write.write_with(path, write)
  return count


def write_shards(
  sequences: Sequence[records.SequenceItem],
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
      <extra>: array} (see `records.serialize_sequence`). All items must share
      T, H, W, C and the extras' shapes. Accessed from `num_workers` threads.
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
  records.check_compression(compression)
  num = len(sequences)
  _check_sizes(num, sequences_per_shard, prefix)
  num_shards = -(-num // sequences_per_shard)
  paths = [
    os.path.join(
      output_dir, records.shard_filename(prefix, k, num_shards, compression)
    )
    for k in range(num_shards)
  ]
  tf.io.gfile.makedirs(output_dir)
  plan = {
    "format": records.FORMAT_VERSION,
    "prefix": prefix,
    "num_sequences": num,
    "sequences_per_shard": sequences_per_shard,
    "compression": compression,
    **(info or {}),
  }
  plan_path = os.path.join(output_dir, f"{prefix}.plan.json")
  _check_or_write_plan(plan_path, plan)
  metadata_path = records.metadata_path(output_dir, prefix)
  todo = [k for k in range(num_shards) if not tf.io.gfile.exists(paths[k])]
  if not todo and tf.io.gfile.exists(metadata_path):
    logging.info(
      "%s: all %d shards and the metadata exist already; nothing to do.",
      prefix,
      num_shards,
    )
    return paths
  layout = _layout(sequences[0])
  ranges = [
    range(k * sequences_per_shard, min(num, (k + 1) * sequences_per_shard))
    for k in range(num_shards)
  ]
  try:
    _write_in_parallel(
      prefix,
      [(paths[k], _serialized(sequences, ranges[k], layout)) for k in todo],
      num_shards,
      compression,
      num_workers,
    )
  except ValueError:  # Bad input: a rerun would fail the same way.
    _remove_failed_conversion(
      paths, [paths[k] for k in todo], plan_path, metadata_path
    )
    raise
  _write_metadata(metadata_path, {**plan, **layout}, paths, ranges)
  return paths


def _check_sizes(num: int, sequences_per_shard: int, prefix: str) -> None:
  if not num or sequences_per_shard < 1:
    raise ValueError(
      f"Need >= 1 sequence and sequences_per_shard >= 1; got {num} and "
      f"{sequences_per_shard}."
    )
  if "/" in prefix or not prefix:
    raise ValueError(
      f"prefix={prefix!r} must be a non-empty file name prefix without '/'."
    )


def _layout(sequence: records.SequenceItem) -> dict[str, Any]:
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


def _serialized(
  sequences: Sequence[records.SequenceItem],
  indices: range,
  layout: Mapping[str, Any],
) -> Iterable[bytes]:
  """The serialized `sequences[i]`, i in `indices`, each checked to have `layout`."""
  for i in indices:
    sequence = sequences[i]
    if _layout(sequence) != layout:
      raise ValueError(
        f"Sequence {i} has layout {_layout(sequence)}; sequence 0 has {layout}."
      )
    yield records.serialize_sequence(sequence)


def _write_in_parallel(
  prefix: str,
  shards: Sequence[tuple[str, Iterable[bytes]]],
  num_shards: int,
  compression: str | None,
  num_workers: int,
) -> None:
  """Writes the (path, examples) `shards` of `num_shards`, logging progress.

  On bad input (a ValueError) the shards not started yet are cancelled.
  """
  if len(shards) < num_shards:
    logging.info(
      "%s: %d of %d shards already complete; skipping them.",
      prefix,
      num_shards - len(shards),
      num_shards,
    )
  start = time.time()
  with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
    try:
      writes = pool.map(lambda shard: write_shard(*shard, compression), shards)
      for done, _ in enumerate(writes, 1):
        elapsed = time.time() - start
        logging.info(
          "%s: %d/%d shards written (%.1f s, ~%.0f s left).",
          prefix,
          num_shards - len(shards) + done,
          num_shards,
          elapsed,
          elapsed / done * (len(shards) - done),
        )
    except ValueError:
      pool.shutdown(cancel_futures=True)
      raise


def _write_metadata(
  path: str, fields: Mapping[str, Any], paths: Sequence[str], ranges
) -> None:
  """Writes the metadata file: `fields` and each shard's count, size and md5."""
  shards = [
    {
      "file": os.path.basename(p),
      "num_sequences": len(indices),
      "bytes": tf.io.gfile.stat(p).length,
      "md5": _md5(p),
    }
    for p, indices in zip(paths, ranges)
  ]
  atomic_write.write_text(
    path, json.dumps({**fields, "shards": shards}, indent=2, sort_keys=True)
  )
  logging.info(
    "%s: wrote %d sequences in %d shards and %s.",
    fields["prefix"],
    fields["num_sequences"],
    len(paths),
    path,
  )


def _md5(path: str) -> str:
  digest = hashlib.md5()
  with tf.io.gfile.GFile(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


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
    atomic_write.write_text(path, text)
