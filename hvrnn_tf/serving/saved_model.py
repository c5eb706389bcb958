"""The SavedModel for TF Serving: two signatures that generate in-graph (a
tf.while_loop carrying the ConvLSTM states; no Python per frame).

  serving_default: context float32 [B, c, S, S, C] in [0, 1]
  serving_uint8:   context uint8 [B, c, S, S, C] in [0, 255]
  plus num_future int32 [], num_samples int32 [], seed int32 [2]
  -> frames float32 [B, num_samples, num_future, S, S, C] in [0, 1].
"""

import functools
import os

import keras
import tensorflow as tf

from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.utils import atomic_write


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
    raise FileExistsError(
      f"{target} already exists; choose another export.version"
    )
  os.makedirs(export_dir, exist_ok=True)
  archive = serving_archive(model)
  atomic_write.write_with(
    target, lambda tmp: archive.write_out(tmp, verbose=False)
  )
  return target
