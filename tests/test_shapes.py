"""Tests of static-where-known tensor dimensions."""

import numpy as np
import tensorflow as tf

from hvrnn_tf.model import layers
from hvrnn_tf.ops import shapes


def test_static_dimensions_are_python_ints():
  assert shapes.dims(tf.zeros([2, 3, 4])) == [2, 3, 4]


def test_unknown_dimensions_stay_dynamic():
  @tf.function(input_signature=[tf.TensorSpec([None, 3, None], tf.float32)])
  def dims(x):
    batch, steps, width = shapes.dims(x)
    assert steps == 3 and isinstance(batch, tf.Tensor)
    return tf.stack([batch, width])

  np.testing.assert_array_equal(dims(tf.zeros([5, 3, 7])), [5, 7])


def _merge_time_ops(signature):
  graph = tf.function(layers.merge_time).get_concrete_function(signature).graph
  return {op.type for op in graph.get_operations()}


def test_static_reshapes_need_no_shape_ops():
  """merge_time on a static shape reshapes to a constant; on an unknown
  batch it still reads the batch at run time."""
  assert "Shape" not in _merge_time_ops(tf.TensorSpec([2, 3, 4, 4, 1]))
  assert "Shape" in _merge_time_ops(tf.TensorSpec([None, 3, 4, 4, 1]))
  merge = tf.function(
    layers.merge_time,
    input_signature=[tf.TensorSpec([None, 3, 4, 4, 1], tf.float32)],
  )
  assert merge(tf.zeros([5, 3, 4, 4, 1])).shape == [15, 4, 4, 1]
