"""Tests of data_prep.benchmark_input (that it measures; the rate itself is not asserted)."""

import numpy as np

from data_prep import benchmark_input
from hvrnn_tf.data import shard_writer


def test_measure_reports_a_positive_rate(tmp_path):
  sequences = [{"frames": np.zeros((6, 8, 8, 3), np.uint8)}] * 4
  shard_writer.write_shards(sequences, str(tmp_path), "train", 2)
  rate = benchmark_input.measure(
    str(tmp_path / "train-*"), 8, 3, 4, batch_size=2, batches=3
  )
  assert np.isfinite(rate) and rate > 0
