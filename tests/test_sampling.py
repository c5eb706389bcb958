"""Tests of writing sample videos."""

import numpy as np
from PIL import Image
import tensorflow as tf

from hvrnn_tf.evaluation import samples
from hvrnn_tf.model.vrnn import HierarchicalVRNN


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
