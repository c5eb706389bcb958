"""Tensor dimensions, static where they are known."""

import tensorflow as tf


def dims(x: tf.Tensor) -> list:
  """x's dimensions: Python ints where static, scalar int32 tensors elsewhere.

  Reshapes to static dimensions take one constant target shape instead of a
  Shape op, slices and a Pack each: a smaller graph, traced and optimised
  faster. Dynamic dimensions (an exported signature's batch) stay dynamic.
  """
  static = x.shape.as_list()
  if None not in static:
    return static
  dynamic = tf.unstack(tf.shape(x), num=len(static))
  return [d if s is None else s for s, d in zip(static, dynamic)]
