"""Draws futures from a model and writes them as GIFs and PNG strips.

Each output shows the ground truth (green border on the future frames) followed
by samples (red border on predicted frames); context frames have no border.
"""

import os

import tensorflow as tf

from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import visualize


def test_videos(config, num_sequences: int) -> tf.Tensor:
  """The first `num_sequences` test videos [N, c + f, S, S, C] for `config`."""
  dataset = inputs.dataset_for_config(config, "test", num_sequences)
  return next(iter(dataset))


def write_samples(
  model,
  videos,
  output_dir: str,
  num_samples: int = 3,
  seed: int = 0,
  fps: float = 4.0,
) -> list[str]:
  """Writes `sample_<i>.gif` and `sample_<i>.png` for every video.

  Args:
    model: a HierarchicalVRNN.
    videos: [N, c + f, S, S, C] ground truth in [0, 1]; the first c frames
      condition the samples.
    output_dir: created if missing.
  Returns:
    The paths written.
  """
  c = model.config.context_frames
  num_future = videos.shape[1] - c
  predictions = model.sample(
    videos[:, :c], num_future, num_samples, tf.constant([seed, 0])
  ).numpy()
  os.makedirs(output_dir, exist_ok=True)
  paths = []
  for i, (truth, futures) in enumerate(zip(videos.numpy(), predictions)):
    paths += visualize.write_comparison(
      os.path.join(output_dir, f"sample_{i}"), truth, futures, c, fps
    )
  return paths
