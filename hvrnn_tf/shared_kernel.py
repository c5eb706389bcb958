"""One convolution kernel applied at every step of a recurrence, differentiated once.

Autodiff of T per-step convolutions with the same kernel computes T
kernel-sized gradients (each a small backprop-filter convolution) and sums
them with one AddN, which holds all T at once. `SharedKernel` computes the
kernel's gradient once, as one backprop-filter convolution over the stacked
steps: same arithmetic (the sum over steps moves inside the convolution),
T - 1 fewer kernel-sized buffers, and one large convolution instead of T
small ones (see bench/README.md, finding 10).
"""

import tensorflow as tf


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
  """

  def __init__(self):
    self.padding = None
    self.kernel = None
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
        dx = tf.raw_ops.Conv2DBackpropInput(
          input_sizes=tf.shape(x),
          filter=kernel,
          out_backprop=dy,
          strides=[1, 1, 1, 1],
          padding=self.padding,
        )
        return dx, self._kernel_gradient() if index == 0 else None

      return tf.nn.conv2d(x, kernel, 1, self.padding), gradient

    return convolve

  def _kernel_gradient(self) -> tf.Tensor:
    steps = sorted(self._output_gradients)
    return tf.raw_ops.Conv2DBackpropFilter(
      input=tf.concat([self._inputs[i] for i in steps], 0),
      filter_sizes=tf.shape(self.kernel),
      out_backprop=tf.concat([self._output_gradients[i] for i in steps], 0),
      strides=[1, 1, 1, 1],
      padding=self.padding,
    )
