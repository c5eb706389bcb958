r"""Exports a trained model as a versioned SavedModel for TF Serving.

    python -m hvrnn_tf.export --workdir=runs/bair \
        [--gin_param="export.export_dir='exports/bair'"] [--checkpoint=STEP]

writes EXPORT_DIR/<version>/ (export.export_dir, default WORKDIR/export;
export.version, default the checkpoint's step: hvrnn_tf/serving/config.py)
and never overwrites a version. The signatures are
hvrnn_tf/serving/saved_model.py's; export.num_future and export.num_samples
fix how many frames and futures each request gets.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from hvrnn_tf.serving import saved_model
from hvrnn_tf.serving.config import ExportConfig
from hvrnn_tf.training import workdir as workdir_lib
from hvrnn_tf.utils import gin_parsing

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string("workdir", None, "Training workdir to export.")
  flags.DEFINE_multi_string(
    "gin_file", [], "Gin files parsed after the run's operative config."
  )
  flags.DEFINE_multi_string(
    "gin_param", [], "Gin bindings, e.g. export.version=3."
  )
  flags.DEFINE_integer(
    "checkpoint", None, "Step of the checkpoint to export; default latest."
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    model, step = workdir_lib.load_model(
      FLAGS.workdir, FLAGS.gin_file, FLAGS.gin_param, FLAGS.checkpoint
    )
    config = ExportConfig()
    path = saved_model.export(
      model,
      config.directory(FLAGS.workdir),
      step if config.version is None else config.version,
      config.num_future or model.config.future_frames,
      config.num_samples,
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.export: error: {gin_parsing.error_line(e)}")
  logging.info("Exported step %d to %s", step, path)


def run():
  """The `hvrnn-export` console script (pyproject.toml)."""
  define_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)


if __name__ == "__main__":
  run()
