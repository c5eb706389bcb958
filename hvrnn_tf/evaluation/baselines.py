"""Trivial predictors that the evaluation scores with the model's metric code.

A baseline has the model's sampling interface (`config`, `sample`), so
`eval.baseline = NAME` scores it exactly as it scores a checkpoint.
"""

import tensorflow as tf


class CopyLastFrame:
  """Predicts every future frame as the last context frame.

  Deterministic: its N samples are identical, so best-of-N equals best-of-1.
  """

  def __init__(self, config):
    self.config = config

  def sample(self, context, num_future: int, num_samples: int, seed=None):
    """context [B, c, H, W, C] -> [B, num_samples, num_future, H, W, C]."""
    del seed  # Deterministic.
    last = tf.convert_to_tensor(context, tf.float32)[:, None, -1:]
    return tf.tile(last, [1, num_samples, num_future, 1, 1, 1])


BASELINES = {"copy_last_frame": CopyLastFrame}
