"""TF Serving's REST predict body, decoded by its documented JSON rules
(https://www.tensorflow.org/tfx/serving/api_rest#predict_api), so that a test
can run a documented body on a SavedModel without the server.

  {"signature_name": S (default "serving_default"),
   "instances": [row, ...]}  row format: a row is an object keyed by input
                             name, or a bare value for a signature of one
                             input; the rows are stacked on a new axis 0.
   or "inputs": {name: tensor} (or a bare tensor), the columnar format.
Each value becomes a tensor of the input's dtype: integer inputs take JSON
integers in the dtype's range, float inputs any JSON number.
"""

import json

import numpy as np
import tensorflow as tf


def _tensor(name: str, value, spec: tf.TensorSpec) -> tf.Tensor:
  """`value` (nested lists) as a tensor of `spec`'s dtype; ValueError naming
  the input if it is ragged or a value does not fit the dtype."""
  try:
    array = np.array(value)
  except ValueError as e:
    raise ValueError(f"input {name}: not a rectangular array ({e})") from e
  dtype = spec.dtype.as_numpy_dtype
  if spec.dtype.is_integer:
    info = np.iinfo(dtype)
    fits = array.dtype.kind in "iu" and (
      array.size == 0 or info.min <= array.min() <= array.max() <= info.max
    )
  else:
    fits = array.dtype.kind in "iuf"
  if not fits:
    raise ValueError(
      f"input {name}: JSON values of kind {array.dtype.kind!r} do not fit "
      f"its dtype {spec.dtype.name}"
    )
  return tf.constant(array.astype(dtype))


def _rows(instances: list, specs: dict) -> dict:
  if not isinstance(instances, list) or not instances:
    raise ValueError('"instances" must be a non-empty list of rows')
  if len(specs) == 1 and not isinstance(instances[0], dict):
    instances = [{next(iter(specs)): row} for row in instances]
  for i, row in enumerate(instances):
    if not isinstance(row, dict) or set(row) != set(specs):
      got = sorted(row) if isinstance(row, dict) else type(row).__name__
      raise ValueError(f"instance {i}: needs inputs {sorted(specs)}, got {got}")
  return {name: [row[name] for row in instances] for name in specs}


def decode(body: str, signatures) -> tuple[str, dict]:
  """(signature name, {input: tf.Tensor}) of a JSON predict body, for the
  signatures of a loaded SavedModel."""
  request = json.loads(body)
  name = request.get("signature_name", "serving_default")
  if name not in signatures:
    raise ValueError(f"no signature {name!r}; have {sorted(signatures)}")
  _, specs = signatures[name].structured_input_signature
  if ("instances" in request) == ("inputs" in request):
    raise ValueError('a body holds one of "instances" and "inputs"')
  if "instances" in request:
    columns = _rows(request["instances"], specs)
  else:
    columns = request["inputs"]
    if len(specs) == 1 and not (
      isinstance(columns, dict) and set(columns) == set(specs)
    ):
      columns = {next(iter(specs)): columns}
    if not isinstance(columns, dict) or set(columns) != set(specs):
      raise ValueError(f'"inputs" needs an object keyed {sorted(specs)}')
  return name, {
    key: _tensor(key, value, specs[key]) for key, value in columns.items()
  }
