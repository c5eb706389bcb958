"""The SavedModel for TF Serving: two signatures that generate in-graph (a
tf.while_loop carrying the ConvLSTM states; no Python per frame), a row per
context sequence (docs/design/serving-signature.md):

  serving_default: context float32 [B, c, S, S, C] in [0, 1], seed int32 [B, 2]
    -> frames float32 [B, N, F, S, S, C] in [0, 1], frames_uint8 (the same
       in uint8 [0, 255]);
  serving_uint8: context uint8 [B, c, S, S, C] in [0, 255], seed int32 [B, 2]
    -> frames_uint8.

F (`export.num_future`) and N (`export.num_samples`) are fixed at export.
Row b's frames are those of model.sample(context[b:b+1], F, N, seed[b]),
whatever else is in the batch, so TF Serving's batching changes no answer.
"""

import os

import keras
import tensorflow as tf

from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.serving import warmup
from hvrnn_tf.utils import atomic_write
from hvrnn_tf.utils import filesystems

SIGNATURES = ("serving_default", "serving_uint8")


def to_uint8(frames):
  """Frames in [0, 1] -> uint8 in [0, 255], rounded."""
  return tf.cast(tf.round(frames * 255.0), tf.uint8)


def input_specs(model: HierarchicalVRNN, signature: str) -> dict:
  """{input name: tf.TensorSpec} of a serving signature."""
  c = model.config
  shape = [None, c.context_frames, c.image_size, c.image_size, c.channels]
  dtype = tf.uint8 if signature == "serving_uint8" else tf.float32
  return {
    "context": tf.TensorSpec(shape, dtype, "context"),
    "seed": tf.TensorSpec([None, 2], tf.int32, "seed"),
  }


def _checked(specs, context, seed):
  """The inputs, with errors naming the input of a wrong rank or size.

  Session feeds (TF Serving, saved_model_cli run) are checked against the
  declared shapes, calls of a loaded signature are not: each input is checked
  as it comes in, so that the error names it.
  """
  context = tf.ensure_shape(
    context, specs["context"].shape, name="context_must_be_B_c_S_S_C"
  )
  seed = tf.ensure_shape(seed, specs["seed"].shape, name="seed_must_be_B_2")
  rows = tf.shape(context)[0]
  checks = [
    tf.debugging.assert_positive(rows, message="context holds no sequence"),
    tf.debugging.assert_equal(
      tf.shape(seed)[0],
      rows,
      message="seed needs one row [2] per context sequence (its B differs)",
    ),
  ]
  with tf.control_dependencies(checks):
    return tf.identity(context), tf.identity(seed)


def serving_archive(
  model: HierarchicalVRNN, num_future: int, num_samples: int
) -> keras.export.ExportArchive:
  """Keras's SavedModel archive of `model` with the two serving signatures.

  ExportArchive stores the variables as flat lists, which the TF1-style loaders
  of TF Serving and `saved_model_cli run` need (Keras 3 variable names repeat).
  """

  def frames(specs, context, seed):
    context, seed = _checked(specs, context, seed)
    if context.dtype == tf.uint8:
      context = tf.cast(context, tf.float32) / 255.0
    return model.sample(context, num_future, num_samples, seed)

  default_specs = input_specs(model, "serving_default")
  uint8_specs = input_specs(model, "serving_uint8")

  def generate(context, seed):
    sampled = frames(default_specs, context, seed)
    return {"frames": sampled, "frames_uint8": to_uint8(sampled)}

  def generate_uint8(context, seed):
    return {"frames_uint8": to_uint8(frames(uint8_specs, context, seed))}

  archive = keras.export.ExportArchive()
  archive.track(model)
  for name, fn, specs in (
    ("serving_default", generate, default_specs),
    ("serving_uint8", generate_uint8, uint8_specs),
  ):
    archive.add_endpoint(name, fn, input_signature=list(specs.values()))
  return archive


def export(
  model: HierarchicalVRNN,
  export_dir: str,
  version: int,
  num_future: int,
  num_samples: int,
) -> str:
  """Writes `export_dir/<version>/` atomically (see atomic_write for
  filesystems without atomic directory renames), with TF Serving's warmup
  requests in assets.extra/; refuses to overwrite it.

  Raises:
    FileExistsError: the version exists. OSError: `export_dir` cannot be
      reached or written (one line).
  """
  target = os.path.join(export_dir, str(version))
  filesystems.check_writable(export_dir, "export directory")
  if tf.io.gfile.exists(target):
    raise FileExistsError(
      f"{target} already exists; choose another export.version"
    )
  archive = serving_archive(model, num_future, num_samples)

  def write(tmp):
    archive.write_out(tmp, verbose=False)
    warmup.write(tmp, {name: input_specs(model, name) for name in SIGNATURES})

  try:
    atomic_write.write_with(target, write)
  except tf.errors.OpError as e:
    raise OSError(filesystems.error_line(target, e, "cannot write")) from e
  return target
