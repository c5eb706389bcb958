"""A training run's workdir as the binaries name and load it.

Train's default workdir is `runs/<stem of the first gin file>` (relative to
the current directory); eval, sample and export load the model a workdir
trained, at its latest checkpoint or at a chosen step, with the run's
operative_config.gin and the caller's gin files and bindings as overrides.
"""

import os
import pathlib

from absl import logging

from hvrnn_tf.training import checkpointing

RUNS_DIR = "runs"


def default_workdir(gin_files) -> str:
  """`runs/<stem>` of the first of `gin_files`.

  Raises:
    ValueError: no gin file to name the workdir after.
  """
  if not gin_files:
    raise ValueError("--workdir: required without a --gin_file to name it")
  return os.path.join(RUNS_DIR, pathlib.Path(gin_files[0]).stem)


def check_writable(workdir: str) -> None:
  """Fails early, naming the directory, if `workdir` cannot be written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test_{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise OSError(f"workdir {workdir!r} is not writable: {e}") from e


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
    ValueError: bad gin configuration, or a checkpoint that does not fit.
  """
  model, step = checkpointing.restore_model(
    workdir, gin_files, gin_params, step=checkpoint
  )
  logging.info("Loaded the model of step %d from %s", step, workdir)
  return model, step
