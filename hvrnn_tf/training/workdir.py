"""A training run's workdir as the binaries name and load it.

Train's default workdir is `runs/<stem of the first gin file>` (relative to
the current directory); eval, sample and export load the model a workdir
trained, at its latest checkpoint or at a chosen step, with the run's
operative_config.gin and the caller's gin files and bindings as overrides.
"""

import os
import pathlib

from absl import logging
import tensorflow as tf

from hvrnn_tf.training import checkpointing
from hvrnn_tf.utils import filesystems

RUNS_DIR = "runs"


def default_workdir(gin_files) -> str:
  """`runs/<stem>` of the first of `gin_files`.

  Raises:
    ValueError: no gin file to name the workdir after.
  """
  if not gin_files:
    raise ValueError("--workdir: required without a --gin_file to name it")
  return os.path.join(RUNS_DIR, pathlib.Path(gin_files[0]).stem)


def load_model(workdir: str, gin_files=(), gin_params=(), checkpoint=None):
  """The model trained in `workdir` and the step of its checkpoint.

  Args:
    workdir: a training workdir (operative_config.gin, checkpoints/).
    gin_files, gin_params: parsed after the run's operative config, as
      overrides (e.g. evaluation data, `eval.*` settings).
    checkpoint: the step to load; None: the latest readable checkpoint.
  Returns:
    (HierarchicalVRNN, step).
  Raises:
    FileNotFoundError: no training run in `workdir`, or no checkpoint of
      step `checkpoint` (the message lists the steps there are).
    OSError: `workdir` cannot be read (one line; e.g. gs:// offline).
    ValueError: bad gin configuration, or a checkpoint that does not fit.
  """
  try:
    model, step = checkpointing.restore_model(
      workdir, gin_files, gin_params, step=checkpoint
    )
  except tf.errors.OpError as e:
    raise OSError(
      "workdir " + filesystems.error_line(workdir, e, "cannot be read")
    ) from e
  logging.info("Loaded the model of step %d from %s", step, workdir)
  return model, step
