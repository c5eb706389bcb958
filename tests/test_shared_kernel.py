"""hvrnn_tf.shared_kernel: one kernel gradient for all steps of a recurrence."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf import shared_kernel


def _recurrence(conv, kernel, x0, steps, used):
  """h_t = tanh(conv(h_{t-1}) + t); loss over the first `used` steps."""
  h, outputs = x0, []
  for t in range(steps):
    h = tf.tanh(conv(h, kernel) + float(t))
    outputs.append(h)
  return sum(tf.reduce_sum(tf.sin(o)) for o in outputs[:used])


@pytest.mark.parametrize(
  "padding,size,kernel_size,used",
  [("SAME", 5, 3, 4), ("VALID", 1, 1, 4), ("SAME", 3, 3, 2)],
)
def test_gradients_equal_per_step_autodiff(padding, size, kernel_size, used):
  x0 = tf.random.stateless_normal([2, size, size, 4], seed=[1, 2])
  kernel = tf.Variable(
    tf.random.stateless_normal([kernel_size, kernel_size, 4, 4], seed=[3, 4])
    * 0.3
  )

  def gradients(shared):
    conv = (
      shared_kernel.SharedKernel()
      if shared
      else lambda x, k, p=padding: tf.nn.conv2d(x, k, 1, p)
    )
    call = (lambda x, k: conv(x, k, padding)) if shared else conv
    with tf.GradientTape() as tape:
      tape.watch(x0)
      loss = _recurrence(call, kernel, x0, 4, used)
    return [loss, *tape.gradient(loss, [x0, kernel])]

  plain = tf.function(lambda: gradients(False))()
  shared_fn = tf.function(lambda: gradients(True))
  shared = shared_fn()
  for a, b in zip(plain, shared):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  ops = [
    n.op
    for f in shared_fn.get_concrete_function()
    .graph.as_graph_def()
    .library.function
    for n in f.node_def
  ] + [
    n.op for n in shared_fn.get_concrete_function().graph.as_graph_def().node
  ]
  assert ops.count("Conv2DBackpropFilter") == 1


def test_later_kernels_are_ignored():
  conv = shared_kernel.SharedKernel()
  x = tf.ones([1, 1, 1, 2])
  first = conv(x, tf.ones([1, 1, 2, 3]), "VALID")
  second = conv(x, tf.zeros([1, 1, 2, 3]), "VALID")
  np.testing.assert_array_equal(first, second)
