"""Draws futures from a model and writes them as GIFs and PNG strips.

Each output shows the ground truth (green border on the future frames) followed
by samples (red border on predicted frames); context frames have no border.
`run` is `python -m hvrnn_tf.sample`: a training run's samples, written
under WORKDIR/samples/step_<step>/.
"""

import os

import tensorflow as tf

from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import visualize
from hvrnn_tf.evaluation.config import SampleConfig
from hvrnn_tf.training import workdir as workdir_lib
from hvrnn_tf.utils import filesystems


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
  Raises:
    OSError: `output_dir` cannot be written (one line).
  """
  c = model.config.context_frames
  num_future = videos.shape[1] - c
  predictions = model.sample(
    videos[:, :c], num_future, num_samples, tf.constant([seed, 0])
  ).numpy()
  paths = []
  try:
    tf.io.gfile.makedirs(output_dir)
    for i, (truth, futures) in enumerate(zip(videos.numpy(), predictions)):
      paths += visualize.write_comparison(
        os.path.join(output_dir, f"sample_{i}"), truth, futures, c, fps
      )
  except tf.errors.OpError as e:
    raise OSError(filesystems.error_line(output_dir, e, "cannot write")) from e
  return paths


def run(
  workdir: str,
  config: SampleConfig | None = None,
  gin_files=(),
  gin_params=(),
  checkpoint: int | None = None,
):
  """Writes samples of the run in `workdir` to WORKDIR/samples/step_<step>/.

  Args:
    workdir: the training run.
    config: the settings; None: SampleConfig() as gin binds it once the
      run's operative config, `gin_files` and `gin_params` are parsed.
    gin_files, gin_params: gin overrides of the run's configuration.
    checkpoint: the step to sample; None: the latest checkpoint.
  Returns:
    (output directory, paths written).
  """
  model, step = workdir_lib.load_model(
    workdir, gin_files, gin_params, checkpoint
  )
  config = config or SampleConfig()
  videos = test_videos(model.config, config.num_sequences)
  output_dir = os.path.join(workdir, "samples", f"step_{step}")
  paths = write_samples(
    model, videos, output_dir, config.num_samples, config.seed
  )
  return output_dir, paths
