"""Exports a trained model as a versioned SavedModel for TF Serving.

    python -m hvrnn_tf.export --workdir=runs/bair --export_dir=exports/bair

writes exports/bair/<version>/ (version = the checkpoint step unless --version
is given) with two signatures, both generating in-graph (a tf.while_loop that
carries the ConvLSTM states; no Python per frame):

  serving_default: context float32 [B, c, S, S, C] in [0, 1]
  serving_uint8:   context uint8 [B, c, S, S, C] in [0, 255]
  plus num_future int32 [], num_samples int32 [], seed int32 [2]
  -> frames float32 [B, num_samples, num_future, S, S, C] in [0, 1].
"""

import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging
import keras
import tensorflow as tf

from hvrnn_tf import atomic_write
from hvrnn_tf import checkpointing
from hvrnn_tf.model import HierarchicalVRNN


def _sample(model, context, num_future, num_samples, seed):
  """{"frames": model.sample(...)} after checking the scalar inputs."""
  checks = [
    tf.debugging.assert_positive(num_future, message="num_future must be >= 1"),
    tf.debugging.assert_positive(
      num_samples, message="num_samples must be >= 1"
    ),
    tf.debugging.assert_positive(
      tf.shape(context)[0], message="context holds no sequence"
    ),
  ]
  with tf.control_dependencies(checks):
    return {"frames": model.sample(context, num_future, num_samples, seed)}


def serving_archive(model: HierarchicalVRNN) -> keras.export.ExportArchive:
  """Keras's SavedModel archive of `model` with the two serving signatures.

  ExportArchive stores the variables as flat lists, which the TF1-style loaders
  of TF Serving and `saved_model_cli run` need (Keras 3 variable names repeat).
  """
  c = model.config
  context_shape = [
    None,
    c.context_frames,
    c.image_size,
    c.image_size,
    c.channels,
  ]

  def checked(context):
    # Session feeds (saved_model_cli run) are checked against the declared
    # shape, calls of a loaded signature are not: the input is checked as it
    # comes in (before the uint8 conversion), so that the error names it.
    return tf.ensure_shape(
      context, context_shape, name="context_must_be_B_c_S_S_C"
    )

  sample = functools.partial(_sample, model)

  def generate(context, num_future, num_samples, seed):
    return sample(checked(context), num_future, num_samples, seed)

  def generate_uint8(context, num_future, num_samples, seed):
    return sample(
      tf.cast(checked(context), tf.float32) / 255.0,
      num_future,
      num_samples,
      seed,
    )

  controls = [
    tf.TensorSpec([], tf.int32, "num_future"),
    tf.TensorSpec([], tf.int32, "num_samples"),
    tf.TensorSpec([2], tf.int32, "seed"),
  ]
  archive = keras.export.ExportArchive()
  archive.track(model)
  for name, fn, dtype in (
    ("serving_default", generate, tf.float32),
    ("serving_uint8", generate_uint8, tf.uint8),
  ):
    archive.add_endpoint(
      name,
      fn,
      input_signature=[tf.TensorSpec(context_shape, dtype, "context")]
      + controls,
    )
  return archive


def export(model: HierarchicalVRNN, export_dir: str, version: int) -> str:
  """Writes `export_dir/<version>/` atomically; refuses to overwrite it."""
  target = os.path.join(export_dir, str(version))
  if os.path.exists(target):
    raise FileExistsError(f"{target} already exists; choose another --version")
  os.makedirs(export_dir, exist_ok=True)
  archive = serving_archive(model)
  atomic_write.write_with(
    target, lambda tmp: archive.write_out(tmp, verbose=False)
  )
  return target


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
    path = export(
      model, FLAGS.export_dir, step if FLAGS.version is None else FLAGS.version
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.export: error: {e}")
  logging.info("Exported step %d to %s", step, path)


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir", "export_dir"])
  app.run(main)
