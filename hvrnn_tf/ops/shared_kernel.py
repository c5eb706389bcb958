"""One convolution kernel applied at every step of a recurrence, differentiated once.

Autodiff of T per-step convolutions with the same kernel computes T
kernel-sized gradients (each a small backprop-filter convolution) and sums
them with one AddN, which holds all T at once. `SharedKernel` computes the
kernel's gradient once, as one backprop-filter convolution over the stacked
steps: same arithmetic (the sum over steps moves inside the convolution),
T - 1 fewer kernel-sized buffers, and one large convolution instead of T
small ones (docs/design/shared-kernel-gradient.md).

On small maps each step's convolution, its input gradient and the kernel's
gradient run as matmuls over k x k patches instead: oneDNN's convolutions
reorder the whole kernel (or its gradient) between layouts on every call,
which dominates when a map has few rows
(docs/design/patch-matmul-small-maps.md).
"""

import tensorflow as tf

from hvrnn_tf.ops import shapes
from hvrnn_tf.ops import speed_paths


def _fits(x: tf.Tensor, max_rows: int) -> bool:
  """Whether x [B, H, W, C] has static B x H x W of at most max_rows."""
  batch, height, width = x.shape[:3]
  if None in (batch, height, width):
    return False
  return batch * height * width <= max_rows


def patches(x: tf.Tensor, kernel_shape, padding: str) -> tf.Tensor:
  """x [B, H, W, C] -> [B, H', W', k * k * C], ordered like a kernel's rows.

  Position (b, i, j) holds the k x k x C window that the stride-1
  convolution with `padding` multiplies with a kernel [k, k, C, F] there.
  """
  kh, kw = kernel_shape[:2]
  if (kh, kw) == (1, 1):
    return x
  return tf.image.extract_patches(
    x, [1, kh, kw, 1], [1, 1, 1, 1], [1, 1, 1, 1], padding
  )


def _matrix(x: tf.Tensor) -> tf.Tensor:
  return tf.reshape(x, [-1, x.shape[-1]])


def patch_matmul(x: tf.Tensor, kernel: tf.Tensor, padding: str) -> tf.Tensor:
  """tf.nn.conv2d(x, kernel, 1, padding) as one matmul over k x k patches.

  x [B, H, W, C], kernel [k, k, C, F] -> [B, H', W', F]: the patches
  [B * H' * W', k * k * C] times the kernel as [k * k * C, F]. The same
  sums in another order.
  """
  windows = patches(x, kernel.shape, padding)
  y = tf.matmul(_matrix(windows), tf.reshape(kernel, [-1, kernel.shape[-1]]))
  return tf.reshape(y, shapes.dims(windows)[:3] + [-1])


def transposed_kernel(kernel: tf.Tensor) -> tf.Tensor:
  """[k, k, C, F] -> [k, k, F, C] rotated by 180 degrees.

  Convolving an output gradient with it (stride 1, SAME, odd k, or k = 1)
  gives the input gradient: Conv2DBackpropInput as a forward convolution.
  """
  return tf.reverse(tf.transpose(kernel, [0, 1, 3, 2]), [0, 1])


class SharedKernel:
  """Convolves each step's input [B, H, W, C] with one kernel [k, k, C, F].

  Stride 1, NHWC, padding "SAME" or "VALID". The first call's kernel and
  padding serve every step (later calls' kernels are ignored). Every call
  must be one step of the same recurrence, in order, each step's input
  depending on the previous step's output (a ConvLSTM's hidden state). Under
  a GradientTape each step's gradient function then returns the input's
  gradient and keeps the step's output gradient; the first step's runs last
  (every later step depends on it), and it returns the kernel's gradient for
  all steps, the others None.

  max_rows: (forward, input gradient, kernel gradient): each runs as a
  matmul over patches where its map has at most that many rows (batch x
  height x width; the kernel gradient's over all steps), else as a
  convolution (ModelConfig.patch_matmul_max_rows, measured on CPU).
  """

  def __init__(
    self,
    max_rows: tuple[int, int, int] = (
      speed_paths.DEFAULT.patch_matmul_max_rows
    ),
  ):
    self.max_rows, self.max_dx_rows, self.max_dw_rows = max_rows
    self.padding = None
    self.kernel = None
    self._transposed = None
    self._inputs = []
    self._output_gradients = {}

  def __call__(
    self, x: tf.Tensor, kernel: tf.Tensor, padding: str
  ) -> tf.Tensor:
    if self.kernel is None:  # read (and sliced) once per recurrence
      self.kernel, self.padding = tf.convert_to_tensor(kernel), padding
    index = len(self._inputs)
    self._inputs.append(x)
    return self._step(index)(x, self.kernel)

  def _step(self, index: int):
    @tf.custom_gradient
    def convolve(x, kernel):
      def gradient(dy):
        self._output_gradients[index] = dy
        return self._input_gradient(x, dy), (
          self._kernel_gradient() if index == 0 else None
        )

      if _fits(x, self.max_rows):
        return patch_matmul(x, kernel, self.padding), gradient
      return tf.nn.conv2d(x, kernel, 1, self.padding), gradient

    return convolve

  def _input_gradient(self, x: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    k = self.kernel.shape[0]
    same_size = k == 1 or (self.padding == "SAME" and k % 2 == 1)
    if same_size and _fits(x, self.max_dx_rows):
      if self._transposed is None:  # once per recurrence, at its last step
        with tf.control_dependencies([dy]):  # not before the backward pass
          self._transposed = transposed_kernel(self.kernel)
      return patch_matmul(dy, self._transposed, "SAME")
    return tf.raw_ops.Conv2DBackpropInput(
      input_sizes=tf.shape(x),
      filter=self.kernel,
      out_backprop=dy,
      strides=[1, 1, 1, 1],
      padding=self.padding,
    )

  def _kernel_gradient(self) -> tf.Tensor:
    steps = sorted(self._output_gradients)
    dy = tf.concat([self._output_gradients[i] for i in steps], 0)
    # The inputs' copy needs no gradient; without this the executor would
    # make it when the forward pass ends and hold it through the backward.
    with tf.control_dependencies([dy]):
      x = tf.concat([self._inputs[i] for i in steps], 0)
    if _fits(x, self.max_dw_rows):
      windows = _matrix(patches(x, self.kernel.shape, self.padding))
      dw = tf.matmul(windows, _matrix(dy), transpose_a=True)
      return tf.reshape(dw, self.kernel.shape)
    return tf.raw_ops.Conv2DBackpropFilter(
      input=x,
      filter_sizes=tf.shape(self.kernel),
      out_backprop=dy,
      strides=[1, 1, 1, 1],
      padding=self.padding,
    )
