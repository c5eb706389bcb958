"""Tests of writing sample videos, and of the sample binary."""

import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from hvrnn_tf.data import shard_writer
from hvrnn_tf.evaluation import samples
from hvrnn_tf.evaluation.config import SampleConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_write_samples_writes_truth_and_samples(tiny_config, tmp_path):
  config = tiny_config()
  model = HierarchicalVRNN(config)
  model.initialize()
  videos = tf.random.stateless_uniform([2, 5, 16, 16, 1], seed=[0, 1])
  paths = samples.write_samples(
    model, videos, str(tmp_path / "out"), num_samples=3
  )
  assert sorted(p.rsplit("/", 1)[1] for p in paths) == [
    "sample_0.gif",
    "sample_0.png",
    "sample_1.gif",
    "sample_1.png",
  ]
  gif = Image.open(tmp_path / "out" / "sample_0.gif")
  assert gif.n_frames == 5
  # Ground truth + 3 samples side by side, 2-pixel gaps.
  assert gif.size == (4 * 16 + 3 * 2, 16)
  strip = np.asarray(Image.open(tmp_path / "out" / "sample_1.png"))
  assert strip.shape == (4 * 16 + 3 * 2, 5 * 16 + 4 * 2, 3)


def test_binary_samples_a_chosen_checkpoint_as_gin_says(tmp_path, make_workdir):
  make_workdir(tmp_path, step=7)
  frames = np.random.default_rng(0).integers(0, 255, (2, 6, 16, 16, 1))
  shard_writer.write_shards(
    [{"frames": f.astype(np.uint8)} for f in frames], str(tmp_path), "seq", 2
  )
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "hvrnn_tf.sample",
      f"--workdir={tmp_path}",
      "--checkpoint=7",
      "--gin_param=data.make_dataset.source = 'tfrecord'",
      f"--gin_param=data.make_dataset.file_pattern = '{tmp_path}/seq-*'",
      "--gin_param=sample.num_sequences = 1",
      "--gin_param=sample.num_samples = 2",
    ],
    cwd=REPO_ROOT,
    env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  written = sorted(os.listdir(tmp_path / "samples" / "step_7"))
  assert written == ["sample_0.gif", "sample_0.png"]
  with Image.open(tmp_path / "samples" / "step_7" / "sample_0.gif") as gif:
    assert gif.size == (3 * 16 + 2 * 2, 16)  # truth + 2 samples


@pytest.mark.parametrize(
  "setting,value",
  [("num_sequences", 0), ("num_samples", 0), ("seed", 1.5)],
)
def test_bad_settings_name_the_setting(setting, value):
  with pytest.raises(ValueError, match=f"sample.{setting}"):
    SampleConfig(**{setting: value})
