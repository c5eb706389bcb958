"""Measures the TFRecord input pipeline's throughput (read + decode + window) on this machine.

  python -m data_prep.benchmark_input                      # synthetic BAIR-shaped shards
  python -m data_prep.benchmark_input \
      --bench_file_pattern='/data/bair/{split}-*' --bench_image_size=64

Prints sequences/s of `make_dataset(split="train", source="tfrecord")`.
"""

import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from hvrnn_tf.data import inputs
from hvrnn_tf.data import shard_writer

FILE_PATTERN = flags.DEFINE_string(
  "bench_file_pattern", None, "Shards to read; default: synthetic ones."
)
IMAGE_SIZE = flags.DEFINE_integer(
  "bench_image_size", 64, "Frame side (must match the shards)."
)
CHANNELS = flags.DEFINE_integer(
  "bench_channels", 3, "Frame channels (must match the shards)."
)
SEQUENCE_LENGTH = flags.DEFINE_integer(
  "bench_sequence_length", 12, "Frames per training window."
)
BATCH_SIZE = flags.DEFINE_integer(
  "bench_batch_size", 16, "Sequences per batch."
)
BATCHES = flags.DEFINE_integer(
  "bench_batches", 200, "Batches to time (after 10 warm-up batches)."
)
SYNTHETIC = flags.DEFINE_integer(
  "bench_synthetic_sequences",
  256,
  "Sequences of 30 frames in the synthetic shards.",
)


def measure(
  file_pattern: str,
  image_size: int,
  channels: int,
  sequence_length: int,
  batch_size: int,
  batches: int,
) -> float:
  """Sequences per second read by the train pipeline, after 10 warm-up batches."""
  dataset = inputs.make_dataset(
    "train",
    batch_size,
    sequence_length,
    image_size,
    channels,
    source="tfrecord",
    file_pattern=file_pattern,
  )
  iterator = iter(dataset)
  for _ in range(10):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch_size / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
  del argv
  with tempfile.TemporaryDirectory() as folder:
    pattern = FILE_PATTERN.value
    if pattern is None:
      shape = (30, IMAGE_SIZE.value, IMAGE_SIZE.value, CHANNELS.value)
      rng = np.random.default_rng(0)
      sequences = shard_writer.LazySequence(
        SYNTHETIC.value,
        lambda i: {"frames": rng.integers(0, 256, shape, dtype=np.uint8)},
      )
      shard_writer.write_shards(sequences, folder, "train", 32)
      pattern = f"{folder}/train-*"
    rate = measure(
      pattern,
      IMAGE_SIZE.value,
      CHANNELS.value,
      SEQUENCE_LENGTH.value,
      BATCH_SIZE.value,
      BATCHES.value,
    )
  print(
    f"{rate:.1f} sequences/s ({SEQUENCE_LENGTH.value} frames of "
    f"{IMAGE_SIZE.value}x{IMAGE_SIZE.value}x{CHANNELS.value}, batch "
    f"{BATCH_SIZE.value}) from {FILE_PATTERN.value or 'synthetic shards'}"
  )


if __name__ == "__main__":
  app.run(main)
