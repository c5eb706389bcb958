r"""Draws futures from a trained model and writes them as GIFs and PNG strips.

    python -m hvrnn_tf.sample --workdir=runs/smmnist_quick \
        [--gin_param=sample.num_sequences=8 --gin_param=sample.num_samples=5] \
        [--checkpoint=STEP]

The settings are gin's `sample.*` (hvrnn_tf/evaluation/config.py:
SampleConfig); gin files and bindings are parsed after the run's
operative_config.gin. Writes WORKDIR/samples/step_<step>/.
"""

from hvrnn_tf.utils import allocator
from hvrnn_tf.utils import gin_parsing

if __name__ == "__main__":
  # Restart under TCMalloc before TensorFlow is imported: afterwards the
  # restart would pay for that import twice.
  allocator.reexec_with_tcmalloc()

import sys

from absl import app
from absl import flags
from absl import logging

from hvrnn_tf.evaluation import samples

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string("workdir", None, "Training workdir to load the model.")
  flags.DEFINE_multi_string(
    "gin_file", [], "Gin files parsed after the run's operative config."
  )
  flags.DEFINE_multi_string(
    "gin_param", [], "Gin bindings, e.g. sample.num_sequences=8."
  )
  flags.DEFINE_integer(
    "checkpoint", None, "Step of the checkpoint to sample; default latest."
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    output_dir, paths = samples.run(
      FLAGS.workdir,
      gin_files=FLAGS.gin_file,
      gin_params=FLAGS.gin_param,
      checkpoint=FLAGS.checkpoint,
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.sample: error: {gin_parsing.error_line(e)}")
  logging.info("Wrote %d files to %s", len(paths), output_dir)


def run():
  """The `hvrnn-sample` console script (pyproject.toml)."""
  # A no-op under `python -m`, which restarted before importing TensorFlow
  # (above); a console script restarts here, so imports TensorFlow twice.
  allocator.reexec_with_tcmalloc()
  define_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)


if __name__ == "__main__":
  run()
