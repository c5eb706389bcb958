"""Where a training run keeps its state, and how to load a trained model back.

Crash safety of the checkpoints: `tf.train.CheckpointManager` writes a
checkpoint's files under a temporary name (`ckpt-N_temp/`), merges them into
`ckpt-N.index` / `ckpt-N.data-*` and only then atomically replaces the
`checkpoint` state file that says which checkpoint is the latest; old
checkpoints are deleted after that. A process killed at any moment therefore
leaves the previous checkpoint as the latest, plus at most some leftovers of
the interrupted write, which `remove_partial_checkpoints` deletes.
`restore_training_state` falls back to the previous checkpoint if the latest
one cannot be read (e.g. a disk error truncated it).
"""

import contextlib
import logging as logging_lib
import os
import re

from absl import logging
import keras
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

import gin
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.utils import gin_parsing

OPERATIVE_CONFIG = "operative_config.gin"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "ckpt"  # tf.train.CheckpointManager's default name


STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def checkpoint(
  model: HierarchicalVRNN,
  optimizer: keras.optimizers.Optimizer | None = None,
  step: tf.Variable | None = None,
  **extra,
) -> tf.train.Checkpoint:
  """The tf.train.Checkpoint layout shared by training, eval and export.

  `extra`: further trackables saved by training only (e.g. `data`, the input
  iterator, and `skipped_steps`); eval and export ignore them.
  """
  objects = dict(model=model, optimizer=optimizer, step=step, **extra)
  return tf.train.Checkpoint(
    **{k: v for k, v in objects.items() if v is not None}
  )


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (disk full, read-only, ...)."""


def checkpoint_number(path: str) -> int:
  """N of a checkpoint prefix `.../ckpt-N`."""
  return int(path.rsplit("-", 1)[1])


def read_tensor(path: str, name: str):
  """The value of tensor `name` in checkpoint `path`.

  Unlike tf.train.load_variable, it never takes `path` for a directory of
  checkpoints: TF's ram:// filesystem calls every name prefix a directory.
  Raises tf.errors.OpError if the checkpoint is unreadable.
  """
  return tf.compat.v1.train.NewCheckpointReader(path).get_tensor(name)


def saved_objects(path: str) -> set[str]:
  """Names of the top-level objects (model, optimizer, data, ...) in a checkpoint.

  Read from the checkpoint's object graph: a variable is stored under one
  of its paths only (the model's weights under "optimizer/..." for example).
  Raises tf.errors.OpError (or IndexError) if the checkpoint is unreadable.
  """
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(read_tensor(path, "_CHECKPOINTABLE_OBJECT_GRAPH"))
  return {child.local_name for child in graph.nodes[0].children}


def registered_checkpoints(directory: str) -> list[str]:
  """The checkpoints the state file of `directory` lists, newest first."""
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths)
  if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
    paths.append(state.model_checkpoint_path)
  # get_checkpoint_state has already joined relative entries onto `directory`.
  return sorted(paths, key=checkpoint_number, reverse=True)


# The files of checkpoint N, of its interrupted write, and the temporary state file.
_CHECKPOINT_FILE = re.compile(
  rf"^{CHECKPOINT_PREFIX}-(\d+)(\.index|\.data-\d+-of-\d+|_temp.*)$"
)
_STATE_TEMP_FILE = re.compile(r"^checkpoint\.tmp[0-9a-f]*$")


def _remove(path: str) -> None:
  with contextlib.suppress(tf.errors.NotFoundError):
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      tf.io.gfile.remove(path)


def remove_partial_checkpoints(directory: str, numbers=None) -> list[str]:
  """Deletes what interrupted checkpoint writes left in `directory`.

  That is: temporary files and folders (`ckpt-N_temp*`, `checkpoint.tmp*`)
  and the files of checkpoints newer than the latest one the state file lists
  (written, but killed before they were registered; none without a state
  file). With `numbers`, only the files of those checkpoint numbers that are
  not registered. Registered checkpoints are never touched. Returns the
  deleted paths.
  """
  if not tf.io.gfile.isdir(directory):
    return []
  registered = {checkpoint_number(p) for p in registered_checkpoints(directory)}
  if registered:
    newest = max(registered)
  else:  # no state file: keep every complete-looking checkpoint
    newest = float("inf")
  removed = []
  for name in sorted(tf.io.gfile.listdir(directory)):
    match = _CHECKPOINT_FILE.match(name)
    if match:
      number = int(match.group(1))
      temporary = match.group(2).startswith("_temp")
      if numbers is not None:
        stale = number in numbers and number not in registered
      else:
        stale = temporary or (number > newest and number not in registered)
    else:
      stale = numbers is None and bool(_STATE_TEMP_FILE.match(name))
    if stale:
      _remove(os.path.join(directory, name))
      removed.append(os.path.join(directory, name))
  return removed


def error_message(error: Exception) -> str:
  """`error`'s message without TensorFlow's op decorations."""
  message = getattr(error, "message", None) or str(error)
  message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
  return re.sub(r"\s*\[Op:\w+\]", "", message).strip()


def save(manager: tf.train.CheckpointManager, step: int) -> str:
  """Saves checkpoint `step` with `manager`.

  Raises:
    CheckpointWriteError: the write failed (disk full, read-only directory,
      ...). The message names the directory and the previous checkpoint,
      which is left intact; the failed write's files are removed.
  """
  try:
    return manager.save(checkpoint_number=step)
  except (tf.errors.OpError, OSError) as e:
    message = error_message(e)
    try:
      remove_partial_checkpoints(manager.directory, numbers={step})
      previous = tf.train.latest_checkpoint(manager.directory)
    except (tf.errors.OpError, OSError):
      previous = None
    kept = (
      f"the previous checkpoint {previous} is intact"
      if previous
      else "there is no earlier checkpoint"
    )
    raise CheckpointWriteError(
      f"cannot write checkpoint {CHECKPOINT_PREFIX}-{step} in "
      f"{manager.directory}: {message}; {kept}. Free disk space or "
      "fix the directory's permissions, then re-run to resume."
    ) from e


def restore_training_state(
  objects: dict,
  directory: str,
  required=("model", "optimizer", "step"),
  optional=("data",),
):
  """Restores `objects` from the newest readable checkpoint in `directory`.

  Objects other than `required` that a checkpoint lacks (e.g. the data
  iterator of a checkpoint written with data_position="reseed") are left as
  they are. A checkpoint that cannot be read (truncated or corrupted files)
  is skipped with an error log and the previous one is tried. The `optional`
  objects are restored last and on their own: one that does not fit (the
  input pipeline's state after data settings changed) is left as it is,
  with a warning, and is not among the names returned.

  Returns:
    (path, restored names) of the checkpoint restored, or (None, set()) if
    `directory` has none.
  Raises:
    ValueError: a checkpoint does not fit `objects` (another architecture or
      optimizer), or no checkpoint is readable.
  """
  candidates = _restore_candidates(directory)
  problems = []
  for path in candidates:
    try:
      names = saved_objects(path)
      missing = [name for name in required if name not in names]
      if missing:
        raise ValueError(f"it has no {missing}")
      present = {
        k: v for k, v in objects.items() if k in names and k not in optional
      }
      tf.train.Checkpoint(**present).restore(
        path
      ).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, IndexError, EOFError) as e:
      message = error_message(e)
      logging.error(
        "Checkpoint %s is unreadable (%s); trying the previous one.",
        path,
        message,
      )
      problems.append(f"{path}: {message}")
      continue
    except (AssertionError, ValueError) as e:
      _release_failed_restore()
      raise ValueError(
        f"Checkpoint {path} does not match the configured model/optimizer "
        "(was the run started with other settings, or written by an "
        f"hvrnn_tf with another architecture?): {error_message(e)}"
      ) from e
    if problems:
      logging.warning(
        "Resumed from %s; newer checkpoints were unreadable: %s", path, problems
      )
    optional = [n for n in optional if n in objects and n in names]
    return path, set(present) | _restore_optional(objects, optional, path)
  if candidates:
    raise ValueError(
      f"No readable checkpoint in {directory}: " + "; ".join(problems)
    )
  return None, set()


def _restore_candidates(directory: str) -> list[str]:
  """Checkpoint prefixes of `directory`, newest first.

  Without a state file (killed while registering the first checkpoint, or
  deleted) the complete checkpoints on disk are the ones that restore.
  """
  candidates = registered_checkpoints(directory)
  if candidates or not tf.io.gfile.isdir(directory):
    return candidates
  return sorted(
    (
      os.path.join(directory, name[: -len(".index")])
      for name in tf.io.gfile.listdir(directory)
      if _CHECKPOINT_FILE.match(name) and name.endswith(".index")
    ),
    key=checkpoint_number,
    reverse=True,
  )


def _restore_optional(objects: dict, names, path: str) -> set[str]:
  """Restores each of `names` on its own; one that does not fit is left as
  it is, with a warning. Returns the names restored."""
  restored = set()
  for name in names:
    try:
      tf.train.Checkpoint(**{name: objects[name]}).restore(
        path
      ).expect_partial().assert_existing_objects_matched()
      restored.add(name)
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as e:
      logging.warning(
        "The %s state in %s does not fit (changed settings?)"
        " and is not restored: %s",
        name,
        path,
        error_message(e),
      )
  return restored


def _drop_unmatched_value_warnings(record) -> bool:
  return (
    "could not be found in the restored object" not in record.getMessage()
    and "being deleted with unrestored values" not in record.getMessage()
  )


def _release_failed_restore() -> None:
  """Silences the warnings a failed restore leaves, for the rest of the process.

  The objects of a restore that raised warn, when they are deleted (usually
  at exit), once per checkpoint value they did not match: hundreds of lines
  after the one-line error. The caller is about to fail, so they are dropped.
  """
  for name in ("tensorflow", "absl"):
    logger = logging_lib.getLogger(name)
    if _drop_unmatched_value_warnings not in logger.filters:
      logger.addFilter(_drop_unmatched_value_warnings)


def restore_model(workdir: str, gin_files=(), gin_params=(), step=None):
  """Builds the model a training run in `workdir` used and loads its weights.

  The run's operative_config.gin is parsed first, then `gin_files` and
  `gin_params` as overrides (e.g. data settings for evaluation).

  Returns:
    (model, step): the HierarchicalVRNN and the step of the checkpoint loaded:
    `step` if given, else the newest readable one.
  Raises:
    FileNotFoundError: no operative config or no checkpoint in `workdir`, or
      none of step `step` (the message lists the steps there are).
    ValueError: the checkpoint does not fit the configured model, or no
      checkpoint is readable. If the newest is unreadable (truncated,
      corrupted), the previous one is loaded and the problem logged.
  """
  config_path = os.path.join(workdir, OPERATIVE_CONFIG)
  if not tf.io.gfile.exists(config_path):
    raise FileNotFoundError(
      f"{config_path} not found: is {workdir!r} a training workdir?"
    )
  gin.clear_config()
  # Bindings of binaries not imported here (e.g. train.*) are skipped.
  gin_parsing.parse_gin([config_path], skip_unknown=True)
  gin_parsing.parse_gin(gin_files, gin_params)
  directory = os.path.join(workdir, CHECKPOINT_DIR)
  if tf.train.latest_checkpoint(directory) is None:
    raise FileNotFoundError(f"No checkpoint in {directory}")
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  if step is not None:
    return model, _restore_step(model, directory, step)
  # The newest readable checkpoint (an unreadable newer one is logged).
  path, _ = restore_training_state(
    dict(model=model), directory, required=("model",)
  )
  return model, int(read_tensor(path, STEP_KEY))


def checkpoint_steps(directory: str) -> dict[int, str]:
  """{step: path} of the readable checkpoints registered in `directory`."""
  steps = {}
  for path in registered_checkpoints(directory):
    try:
      steps[int(read_tensor(path, STEP_KEY))] = path
    except (tf.errors.OpError, ValueError):
      logging.warning("Checkpoint %s is unreadable; skipped.", path)
  return steps


def _restore_step(model: HierarchicalVRNN, directory: str, step: int) -> int:
  """Loads the model's weights of checkpoint `step` into `model`."""
  steps = checkpoint_steps(directory)
  if step not in steps:
    raise FileNotFoundError(
      f"--checkpoint={step}: {directory} holds no checkpoint of that step "
      f"(it has steps {sorted(steps)})"
    )
  try:
    tf.train.Checkpoint(model=model).restore(
      steps[step]
    ).expect_partial().assert_existing_objects_matched()
  except (tf.errors.OpError, AssertionError) as e:
    raise ValueError(
      f"--checkpoint={step}: {steps[step]} cannot be loaded: {error_message(e)}"
    ) from e
  return step
