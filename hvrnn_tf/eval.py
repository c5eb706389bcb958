r"""Evaluates a trained checkpoint with the paper's protocol (sec. 5.2.1).

    python -m hvrnn_tf.eval --workdir=runs/bair \
        [--gin_param=eval.future_frames=28] [--gin_param=eval.max_sequences=N] \
        [--gin_file=... --gin_param=...] [--checkpoint=STEP]

The settings are gin's `eval.*` (hvrnn_tf/evaluation/config.py: EvalConfig,
e.g. eval.num_samples, eval.i3d_handle, eval.baseline); gin files and
bindings are parsed after the run's operative_config.gin, so they also
override its data settings. Writes WORKDIR/eval/ (metrics.json, TensorBoard
scalars, plots, GIFs; hvrnn_tf/evaluation/evaluate.py) and prints the
headline numbers as one JSON line.
"""

from hvrnn_tf.utils import allocator
from hvrnn_tf.utils import gin_parsing

if __name__ == "__main__":
  # Restart under TCMalloc before TensorFlow is imported: afterwards the
  # restart would pay for that import twice.
  allocator.reexec_with_tcmalloc()

import json
import sys

from absl import app
from absl import flags

from hvrnn_tf.evaluation import evaluate

FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string(
    "workdir", None, "Training workdir (checkpoints, operative_config.gin)."
  )
  flags.DEFINE_multi_string(
    "gin_file", [], "Gin files parsed after the run's operative config."
  )
  flags.DEFINE_multi_string(
    "gin_param", [], "Gin bindings, e.g. eval.num_samples=20."
  )
  flags.DEFINE_integer(
    "checkpoint", None, "Step of the checkpoint to evaluate; default latest."
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    metrics = evaluate.run(
      FLAGS.workdir,
      gin_files=FLAGS.gin_file,
      gin_params=FLAGS.gin_param,
      checkpoint=FLAGS.checkpoint,
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.eval: error: {gin_parsing.error_line(e)}")
  print(json.dumps(evaluate.summary(metrics)))


def run():
  """The `hvrnn-eval` console script (pyproject.toml)."""
  # A no-op under `python -m`, which restarted before importing TensorFlow
  # (above); a console script restarts here, so imports TensorFlow twice.
  allocator.reexec_with_tcmalloc()
  define_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)


if __name__ == "__main__":
  run()
