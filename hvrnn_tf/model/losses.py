"""The ELBO's terms and the negative ELBO that training and evaluation use."""

import tensorflow as tf


def reconstruction_nll(
  logits: tf.Tensor, targets: tf.Tensor, kind: str
) -> tf.Tensor:
  """Per-sequence reconstruction loss, summed over time and pixels.

  Args:
    logits: [B, T, H, W, C] decoder outputs; the predicted frame is sigmoid(logits).
    targets: [B, T, H, W, C] frames in [0, 1].
    kind: "l1" (Laplace NLL with unit scale, up to the constant log 2 per pixel),
      "l2" (Gaussian NLL with variance 1/2, up to its constant) or "bernoulli"
      (exact Bernoulli NLL; meaningful for binary-ish data such as MNIST).
  Returns:
    float32 [B], in nats up to the per-pixel constants noted above.
  """
  targets = tf.cast(targets, logits.dtype)
  if kind == "bernoulli":
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(
      labels=targets, logits=logits
    )
  elif kind == "l1":
    per_pixel = tf.abs(tf.sigmoid(logits) - targets)
  elif kind == "l2":
    per_pixel = tf.square(tf.sigmoid(logits) - targets)
  else:
    raise ValueError(
      f"Unknown reconstruction loss {kind!r}; "
      "expected 'l1', 'l2' or 'bernoulli'."
    )
  return tf.reduce_sum(per_pixel, axis=[1, 2, 3, 4])


def negative_elbo(nll, kl, beta=1.0):
  """Per-sequence negative ELBO nll + beta * kl (the training loss; the test
  -ELBO at beta = 1). Works on tensors and numpy arrays alike."""
  return nll + beta * kl
