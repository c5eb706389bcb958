"""Draws futures from a trained model and writes them as GIFs and PNG strips.

python -m hvrnn_tf.sample --workdir=DIR [--num_sequences=4 --num_samples=3]
"""

from hvrnn_tf.utils import allocator

if __name__ == "__main__":
  # Restart under TCMalloc before TensorFlow is imported: afterwards the
  # restart would pay for that import twice.
  allocator.reexec_with_tcmalloc()

import os
import sys

from absl import app
from absl import flags
from absl import logging

from hvrnn_tf.evaluation import samples
from hvrnn_tf.training import checkpointing

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string("workdir", None, "Training workdir to load the model.")
  flags.DEFINE_multi_string("gin_file", [], "Extra gin files (overrides).")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings (overrides).")
  flags.DEFINE_integer("num_sequences", 4, "Test sequences to predict.")
  flags.DEFINE_integer("num_samples", 3, "Futures drawn per sequence.")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
  del argv
  try:
    model, step = checkpointing.restore_model(
      FLAGS.workdir, FLAGS.gin_file, FLAGS.gin_param
    )
    videos = samples.test_videos(model.config, FLAGS.num_sequences)
    output_dir = os.path.join(FLAGS.workdir, "samples", f"step_{step}")
    paths = samples.write_samples(
      model, videos, output_dir, FLAGS.num_samples, FLAGS.seed
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.sample: error: {e}")
  logging.info("Wrote %d files to %s", len(paths), output_dir)


if __name__ == "__main__":
  define_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)
