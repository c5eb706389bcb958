"""Tests of data_prep.shard_flags: the output flags configure the shard writing."""

import json

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from data_prep import shard_flags


@pytest.mark.parametrize("compression, suffix", [("none", ""), ("gzip", ".gz")])
def test_write_follows_the_flags(tmp_path, compression, suffix):
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  sequences = [{"frames": np.full((2, 4, 4, 1), i, np.uint8)} for i in range(5)]
  with flagsaver.flagsaver(
    output_dir=str(tmp_path),
    sequences_per_shard=2,
    compression=compression,
    num_workers=3,
  ):
    paths = shard_flags.write(sequences, "train", {"source": "unit-test"})
  assert [p.rsplit("/", 1)[1] for p in paths] == [
    f"train-0000{k}-of-00003.tfrecord{suffix}" for k in range(3)
  ]
  metadata = json.loads((tmp_path / "train.metadata.json").read_text())
  assert metadata["source"] == "unit-test"
  assert metadata["compression"] == (None if compression == "none" else "GZIP")
