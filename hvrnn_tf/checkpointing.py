"""Where a training run keeps its state, and how to load a trained model back."""

import os

import gin
import keras
import tensorflow as tf

from hvrnn_tf.config import ModelConfig
from hvrnn_tf.model import HierarchicalVRNN

OPERATIVE_CONFIG = "operative_config.gin"
CHECKPOINT_DIR = "checkpoints"


STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def checkpoint(model: HierarchicalVRNN,
               optimizer: keras.optimizers.Optimizer | None = None,
               step: tf.Variable | None = None) -> tf.train.Checkpoint:
  """The tf.train.Checkpoint layout shared by training, eval and export."""
  objects = dict(model=model, optimizer=optimizer, step=step)
  return tf.train.Checkpoint(
      **{k: v for k, v in objects.items() if v is not None})


def parse_gin(gin_files=(), gin_params=(), skip_unknown=False) -> None:
  """Parses gin files and bindings; raises ValueError naming what is wrong."""
  try:
    gin.parse_config_files_and_bindings(
        list(gin_files), list(gin_params), skip_unknown=skip_unknown,
        finalize_config=False)
  except (ValueError, IOError, TypeError, SyntaxError) as e:
    raise ValueError(f"Invalid gin configuration: {e}") from e


def restore_model(workdir: str, gin_files=(), gin_params=()):
  """Builds the model a training run in `workdir` used and loads its weights.

  The run's operative_config.gin is parsed first, then `gin_files` and
  `gin_params` as overrides (e.g. data settings for evaluation).

  Returns:
    (model, step): the HierarchicalVRNN and the step of the checkpoint loaded.
  Raises:
    FileNotFoundError: no operative config or no checkpoint in `workdir`.
    ValueError: the checkpoint does not fit the configured model.
  """
  config_path = os.path.join(workdir, OPERATIVE_CONFIG)
  if not os.path.exists(config_path):
    raise FileNotFoundError(
        f"{config_path} not found: is {workdir!r} a training workdir?")
  gin.clear_config()
  # Bindings of binaries not imported here (e.g. train.*) are skipped.
  parse_gin([config_path], skip_unknown=True)
  parse_gin(gin_files, gin_params)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
  if latest is None:
    raise FileNotFoundError(
        f"No checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)}")
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  try:
    checkpoint(model).restore(latest).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(
        f"Checkpoint {latest} does not match the configured model: {e}") from e
  return model, int(tf.train.load_variable(latest, STEP_KEY))
