"""Exports a trained model as a versioned SavedModel for TF Serving.

    python -m hvrnn_tf.export --workdir=runs/bair --export_dir=exports/bair

writes exports/bair/<version>/ (version = the checkpoint step unless --version
is given); the signatures are hvrnn_tf/serving/saved_model.py's.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from hvrnn_tf.serving import saved_model
from hvrnn_tf.training import checkpointing

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string("workdir", None, "Training workdir to export.")
  flags.DEFINE_string("export_dir", None, "Base directory of the versions.")
  flags.DEFINE_integer("version", None, "Version number (default: the step).")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings (overrides).")


def main(argv):
  del argv
  try:
    model, step = checkpointing.restore_model(
      FLAGS.workdir, gin_params=FLAGS.gin_param
    )
    path = saved_model.export(
      model, FLAGS.export_dir, step if FLAGS.version is None else FLAGS.version
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.export: error: {e}")
  logging.info("Exported step %d to %s", step, path)


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir", "export_dir"])
  app.run(main)
