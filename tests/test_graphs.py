"""hvrnn_tf.testing.graphs: backward ops that need no output gradient."""

import pytest
import tensorflow as tf

from hvrnn_tf.testing import graphs


def _square_with_gradient(guarded: bool):
  """x**2 whose gradient computes 2x from x alone, guarded or not."""

  @tf.custom_gradient
  def square(x):
    def gradient(dy):
      if not guarded:
        return dy * tf.multiply(x, 2.0, name="twice")
      flat = tf.reshape(x, [-1])  # early, but a view: not listed
      with tf.control_dependencies([dy]):
        twice = tf.multiply(flat, 2.0, name="twice")
      return dy * tf.reshape(twice, tf.shape(x))

    return tf.square(x, name="forward_square"), gradient

  return lambda x: tf.reduce_sum(tf.sin(square(x)))


@pytest.mark.parametrize("guarded", [False, True])
def test_lists_only_unguarded_backward_ops(guarded):
  x = tf.ones([4, 8])
  early = graphs.early_backward_ops(
    _square_with_gradient(guarded), [x], min_bytes=x.shape.num_elements() * 4
  )
  names = [op.name.split("/")[-1] for op, _ in early]
  assert names == ([] if guarded else ["twice"])
  assert all(n == 128 for _, n in early)


def test_min_bytes_and_variables():
  v = tf.Variable(tf.ones([16]))
  loss = lambda x: tf.reduce_sum(_square_with_gradient(False)(x * v))
  x = tf.ones([16])
  early = graphs.early_backward_ops(loss, [x], [v], min_bytes=64)
  assert [op.name.split("/")[-1] for op, _ in early] == ["twice"]
  assert graphs.early_backward_ops(loss, [x], [v], min_bytes=65) == []


def test_op_counts_include_the_functions_called():
  inner = tf.function(lambda x: tf.matmul(x, x))
  outer = tf.function(lambda x: inner(x) + tf.matmul(x, x))
  concrete = outer.get_concrete_function(tf.TensorSpec([2, 2]))
  assert graphs.op_counts(concrete, ["MatMul", "Conv2D"]) == {
    "MatMul": 2,
    "Conv2D": 0,
  }
