"""TF Serving's warmup requests: assets.extra/tf_serving_warmup_requests, a
TFRecord of PredictionLog protos that the server runs when it loads a version.

tensorflow-serving-api (which pulls in a second TensorFlow) is not needed: the
four messages are declared here, in a private descriptor pool, with the field
numbers of tensorflow_serving/apis/{prediction_log,predict,model}.proto.
"""

import functools
import os

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")

_PACKAGE = "tensorflow.serving"
# message -> (field, number, message type or None for a string); "inputs" is
# PredictRequest's map<string, TensorProto>.
_MESSAGES = {
  "ModelSpec": (("name", 1, None), ("signature_name", 3, None)),
  "PredictRequest": (
    ("model_spec", 1, "ModelSpec"),
    ("inputs", 2, "PredictRequest.InputsEntry"),
  ),
  "PredictLog": (("request", 1, "PredictRequest"),),
  "PredictionLog": (("predict_log", 6, "PredictLog"),),
}
_F = descriptor_pb2.FieldDescriptorProto


def _add_field(message, name, number, type_name, repeated=False):
  message.field.add(
    name=name,
    number=number,
    label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
    type=_F.TYPE_MESSAGE if type_name else _F.TYPE_STRING,
    type_name=type_name,
  )


def _file() -> descriptor_pb2.FileDescriptorProto:
  proto = descriptor_pb2.FileDescriptorProto(
    name="hvrnn_tf/serving/prediction_log.proto",
    package=_PACKAGE,
    syntax="proto3",
    dependency=[tensor_pb2.DESCRIPTOR.name],
  )
  for name, fields in _MESSAGES.items():
    message = proto.message_type.add(name=name)
    for field, number, type_name in fields:
      full = f".{_PACKAGE}.{type_name}" if type_name else None
      _add_field(message, field, number, full, repeated=field == "inputs")
  entry = proto.message_type[1].nested_type.add(name="InputsEntry")
  entry.options.map_entry = True
  _add_field(entry, "key", 1, None)
  _add_field(entry, "value", 2, ".tensorflow.TensorProto")
  return proto


def _add_with_dependencies(pool, file_descriptor, added):
  if file_descriptor.name in added:
    return
  for dependency in file_descriptor.dependencies:
    _add_with_dependencies(pool, dependency, added)
  proto = descriptor_pb2.FileDescriptorProto()
  file_descriptor.CopyToProto(proto)
  pool.Add(proto)
  added.add(file_descriptor.name)


@functools.cache
def messages() -> dict:
  """{name: message class} of the four messages (a pool of their own, so that
  tensorflow-serving-api's, where installed, do not clash)."""
  pool = descriptor_pool.DescriptorPool()
  _add_with_dependencies(pool, tensor_pb2.DESCRIPTOR, set())
  pool.Add(_file())
  return {
    name: message_factory.GetMessageClass(
      pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")
    )
    for name in _MESSAGES
  }


def prediction_log(signature: str, inputs: dict):
  """A PredictionLog holding a PredictRequest of `signature` on `inputs`
  ({name: array}); the model name is left out (the server ignores it)."""
  log = messages()["PredictionLog"]()
  request = log.predict_log.request
  request.model_spec.signature_name = signature
  for name, value in inputs.items():
    # Another pool's TensorProto: copied through its wire format.
    request.inputs[name].MergeFromString(
      tf.make_tensor_proto(value).SerializeToString()
    )
  return log


def write(saved_model_dir: str, specs_by_signature: dict) -> None:
  """One request per signature ({signature: {input: TensorSpec}}), of one
  all-zero row, into saved_model_dir/PATH."""
  path = os.path.join(saved_model_dir, PATH)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for signature, specs in specs_by_signature.items():
      inputs = {
        name: np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
        for name, spec in specs.items()
      }
      writer.write(prediction_log(signature, inputs).SerializeToString())
