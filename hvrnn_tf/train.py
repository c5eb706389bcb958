"""Trains a hierarchical VRNN.

    python -m hvrnn_tf.train --gin_file=smmnist_quick.gin [--workdir=DIR]

The workdir defaults to runs/<stem of the first --gin_file> (here
runs/smmnist_quick). Resumes from its latest checkpoint. Writes checkpoints,
TensorBoard logs (tensorboard --logdir=WORKDIR), operative_config.gin and, at
the end, sample GIFs/PNGs under WORKDIR/samples/. The run itself is
hvrnn_tf/training/task.py; SIGTERM / SIGINT save a checkpoint and exit with
status 128 + signal number; bad settings and failing writes exit with one
line naming the parameter or file.
"""

from hvrnn_tf.utils import allocator

if __name__ == "__main__":
  # Restart under TCMalloc before TensorFlow is imported: afterwards the
  # restart would pay for that import twice.
  allocator.reexec_with_tcmalloc()

import os
import signal
import sys

from absl import app
from absl import flags
from absl import logging

from hvrnn_tf.training import workdir as workdir_lib
from hvrnn_tf.training.hooks import DivergenceError
from hvrnn_tf.training.task import train
from hvrnn_tf.utils import gin_parsing

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "workdir",
  None,
  "Directory for checkpoints, logs, samples; default runs/<stem of the "
  "first --gin_file>.",
)
flags.DEFINE_multi_string("gin_file", [], "Gin config files.")
flags.DEFINE_multi_string(
  "gin_param", [], "Gin bindings, e.g. train.num_steps=10."
)


def define_binary_flags():
  """Flags defined only when run as a binary: data_prep.smmnist, which tests
  import in the same process, has a flag of the same name."""
  flags.DEFINE_string(
    "mnist_dir",
    None,
    "Folder with MNIST IDX files for SM-MNIST "
    "(shorthand for --gin_param=\"data.make_dataset.mnist_dir='DIR'\"); "
    "relative to the current directory, also under `bazel run`.",
  )


def _exit_interrupted(outcome) -> None:
  """Exits as if the signal that stopped the run had ended the process."""
  print(
    f"hvrnn_tf.train: stopped by {outcome.interrupted_by} at step "
    f"{outcome.step}; checkpoint saved, re-run to resume.",
    file=sys.stderr,
  )
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  # Schedulers see "preempted", and at once: the checkpoint and summaries
  # are written, and TensorFlow's teardown could outlast the grace period
  # before a SIGKILL.
  os._exit(128 + int(getattr(signal, outcome.interrupted_by)))  # pylint: disable=protected-access


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.info("Memory allocator: %s", allocator.describe())
  try:
    workdir = FLAGS.workdir or workdir_lib.default_workdir(FLAGS.gin_file)
    logging.info(
      "Workdir: %s%s", workdir, "" if FLAGS.workdir else " (from --gin_file)"
    )
    mnist_dir = FLAGS.mnist_dir if "mnist_dir" in FLAGS else None
    mnist = (
      [f"data.make_dataset.mnist_dir = {mnist_dir!r}"] if mnist_dir else []
    )
    gin_parsing.parse_gin(FLAGS.gin_file, [*FLAGS.gin_param, *mnist])
    outcome = train(workdir)
  except (ValueError, OSError, DivergenceError) as e:
    sys.exit(f"hvrnn_tf.train: error: {gin_parsing.error_line(e)}")
  except RuntimeError as e:
    if "Required bindings" not in str(e):  # gin: a gin.REQUIRED value unset
      raise
    sys.exit(f"hvrnn_tf.train: error: {gin_parsing.error_line(e)}")
  if outcome.interrupted_by:
    _exit_interrupted(outcome)


def run():
  """The `hvrnn-train` console script (pyproject.toml)."""
  # A no-op under `python -m`, which restarted before importing TensorFlow
  # (above); a console script restarts here, so imports TensorFlow twice.
  allocator.reexec_with_tcmalloc()
  define_binary_flags()
  app.run(main)


if __name__ == "__main__":
  run()
