"""Learning-rate and KL-weight (beta) schedules."""

import keras
import tensorflow as tf


def linear_warmup(step, start: float, end: float, warmup_steps: int):
  """Linear ramp from `start` at step 0 to `end` at `warmup_steps`, then flat."""
  if warmup_steps <= 0:
    return tf.constant(end, tf.float32)
  fraction = tf.minimum(tf.cast(step, tf.float32) / warmup_steps, 1.0)
  return start + (end - start) * fraction


class WarmupLearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """Linear learning-rate warmup, scaled by the linear scaling rule.

  The paper warms up from 2e-5 to 1.6e-4 over 5 epochs for a global batch of
  16; both ends are multiplied by global_batch_size / reference_batch_size.
  """

  def __init__(self, start: float, end: float, warmup_steps: int,
               global_batch_size: int, reference_batch_size: int = 16):
    self.config = dict(start=start, end=end, warmup_steps=warmup_steps,
                       global_batch_size=global_batch_size,
                       reference_batch_size=reference_batch_size)
    self.scale = global_batch_size / reference_batch_size

  def __call__(self, step):
    return linear_warmup(step, self.config["start"] * self.scale,
                         self.config["end"] * self.scale,
                         self.config["warmup_steps"])

  def get_config(self):
    return dict(self.config)
