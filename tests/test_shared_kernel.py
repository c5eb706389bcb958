"""hvrnn_tf.ops.shared_kernel: one kernel gradient for all steps of a recurrence."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.ops import shared_kernel
from hvrnn_tf.ops import speed_paths
from hvrnn_tf.testing import graphs

MATMULS = speed_paths.DEFAULT.patch_matmul_max_rows


def _recurrence(conv, kernel, x0, steps, used):
  """h_t = tanh(conv(h_{t-1}) + t); loss over the first `used` steps."""
  h, outputs = x0, []
  for t in range(steps):
    h = tf.tanh(conv(h, kernel) + float(t))
    outputs.append(h)
  return sum(tf.reduce_sum(tf.sin(o)) for o in outputs[:used])


def _graph_ops(fn) -> list:
  return [n.op for n in graphs.graph_nodes(fn.get_concrete_function())]


@pytest.mark.parametrize("matmul", [True, False])
@pytest.mark.parametrize(
  "padding,size,kernel_size,used",
  [("SAME", 5, 3, 4), ("VALID", 1, 1, 4), ("SAME", 3, 3, 2)],
)
def test_gradients_equal_per_step_autodiff(
  padding, size, kernel_size, used, matmul
):
  max_rows = MATMULS if matmul else speed_paths.CONVOLUTIONS_ONLY
  x0 = tf.random.stateless_normal([2, size, size, 4], seed=[1, 2])
  kernel = tf.Variable(
    tf.random.stateless_normal([kernel_size, kernel_size, 4, 4], seed=[3, 4])
    * 0.3
  )

  def gradients(shared):
    conv = (
      shared_kernel.SharedKernel(max_rows)
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
  ops = _graph_ops(shared_fn)
  # At most 2 x 5 x 5 = 50 rows per step, 200 for the kernel gradient: all
  # under the limits, or all convolutions at limits of 0. One kernel
  # gradient either way; input gradients for the `used` steps only.
  assert ops.count("Conv2DBackpropFilter") == (0 if matmul else 1)
  assert ops.count("Conv2D") == (0 if matmul else 4)
  assert ops.count("Conv2DBackpropInput") == (0 if matmul else used)
  assert ops.count("MatMul") == (4 + used + 1 if matmul else 0)


@pytest.mark.parametrize(
  "padding,kernel_size", [("SAME", 3), ("VALID", 3), ("VALID", 1), ("SAME", 1)]
)
def test_patch_matmul_is_the_convolution(padding, kernel_size):
  x = tf.random.stateless_normal([2, 6, 5, 3], seed=[1, 1])
  kernel = tf.random.stateless_normal(
    [kernel_size, kernel_size, 3, 7], seed=[2, 2]
  )
  np.testing.assert_allclose(
    shared_kernel.patch_matmul(x, kernel, padding),
    tf.nn.conv2d(x, kernel, 1, padding),
    rtol=1e-5,
    atol=1e-5,
  )


def test_transposed_kernel_gives_the_input_gradient():
  kernel = tf.random.stateless_normal([3, 3, 3, 7], seed=[2, 2])
  dy = tf.random.stateless_normal([2, 6, 5, 7], seed=[3, 3])
  expected = tf.raw_ops.Conv2DBackpropInput(
    input_sizes=[2, 6, 5, 3],
    filter=kernel,
    out_backprop=dy,
    strides=[1, 1, 1, 1],
    padding="SAME",
  )
  transposed = shared_kernel.transposed_kernel(kernel)
  np.testing.assert_allclose(
    shared_kernel.patch_matmul(dy, transposed, "SAME"),
    expected,
    rtol=1e-5,
    atol=1e-5,
  )


def test_row_limits_choose_each_path():
  def one_step(x):
    kernel = tf.ones([3, 3, 4, 4])
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = shared_kernel.SharedKernel()(x, kernel, "SAME")
    return tape.gradient(y, x)

  def ops_for(shape):
    fn = tf.function(one_step, input_signature=[tf.TensorSpec(shape)])
    return _graph_ops(fn)

  # 1 x 8 x 8 = 64 rows: both matmuls; 2 x 8 x 8 = 128: both (limits
  # inclusive); 4 x 8 x 8 = 256: forward only; unknown batch: convolutions.
  expected = {
    (1, 8, 8, 4): (0, 0),
    (2, 8, 8, 4): (0, 0),
    (4, 8, 8, 4): (0, 1),
    (9, 8, 8, 4): (1, 1),
    (None, 8, 8, 4): (1, 1),
  }
  for shape, (convs, input_gradients) in expected.items():
    ops = ops_for(shape)
    assert ops.count("Conv2D") == convs, shape
    assert ops.count("Conv2DBackpropInput") == input_gradients, shape


def test_later_kernels_are_ignored():
  conv = shared_kernel.SharedKernel()
  x = tf.ones([1, 1, 1, 2])
  first = conv(x, tf.ones([1, 1, 2, 3]), "VALID")
  second = conv(x, tf.zeros([1, 1, 2, 3]), "VALID")
  np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("matmul", [True, False])
def test_gradient_computes_nothing_large_before_the_output_gradients(matmul):
  # The inputs' copy for the kernel gradient and the transposed kernel need
  # no output gradient; unguarded, both would be made when the forward pass
  # ends and held through the backward pass (docs/design/early-gradients.md).
  max_rows = MATMULS if matmul else speed_paths.CONVOLUTIONS_ONLY
  x0 = tf.random.stateless_normal([2, 4, 4, 8], seed=[1, 2])
  kernel = tf.Variable(tf.random.stateless_normal([3, 3, 8, 8], seed=[3, 4]))

  def loss(x0):
    conv = shared_kernel.SharedKernel(max_rows)
    return _recurrence(lambda x, k: conv(x, k, "SAME"), kernel, x0, 4, 4)

  early = graphs.early_backward_ops(
    loss, [x0], [kernel], min_bytes=x0.shape.num_elements() * 4
  )
  assert early == []
