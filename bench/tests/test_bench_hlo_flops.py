"""bench.hlo_flops: FLOP counts of HLO text and of a train step."""

import keras
import tensorflow as tf

from bench import common
from bench import hlo_flops


def test_flops_of_convolutions_and_matmul():
  x = tf.zeros([2, 16, 16, 8])
  k = tf.zeros([3, 3, 8, 32])
  valid = hlo_flops.function_flops(
    lambda x, k: tf.nn.conv2d(x, k, 1, "VALID"), x, k
  )
  assert valid["flops"] == 2 * 2 * 14 * 14 * 9 * 8 * 32
  # SAME: the zero padding is not counted (46 = 16 * 3 - 2 valid pairs per axis).
  same = hlo_flops.function_flops(
    lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"), x, k
  )
  assert same["flops"] == 2 * 2 * 46 * 46 * 8 * 32
  strided = hlo_flops.function_flops(
    lambda x, k: tf.nn.conv2d(x, k, 2, "VALID"), x, k
  )
  assert strided["flops"] == 2 * 2 * 7 * 7 * 9 * 8 * 32
  a, b = tf.zeros([64, 128]), tf.zeros([128, 32])
  assert (
    hlo_flops.function_flops(lambda a, b: a @ b, a, b)["flops"]
    == 2 * 64 * 128 * 32
  )
  # A stride-4 transposed conv from 1x1: each output pixel sees one input pixel.
  layer = keras.layers.Conv2DTranspose(16, 4, strides=4, padding="same")
  y = tf.zeros([3, 1, 1, 8])
  layer(y)
  assert hlo_flops.function_flops(layer, y)["flops"] == 2 * 3 * 16 * 8 * 16


def test_flops_of_gradients_are_twice_the_forward():
  x, k = tf.zeros([2, 16, 16, 8]), tf.zeros([3, 3, 8, 32])

  def loss_and_gradients(x, k):
    with tf.GradientTape() as tape:
      tape.watch([x, k])
      loss = tf.reduce_sum(tf.nn.conv2d(x, k, 1, "VALID"))
    return tape.gradient(loss, [x, k])

  counted = hlo_flops.function_flops(loss_and_gradients, x, k)
  forward = 2 * 2 * 14 * 14 * 9 * 8 * 32
  assert counted["num_convolutions"] == 3
  assert counted["flops"] == 3 * forward


def test_train_step_flops_count_small_maps_as_convolutions():
  config = common.model_config("tiny")
  trainer = common.make_trainer(config, 1)
  video = common.synthetic_video(config, 1)
  as_run = hlo_flops.function_flops(trainer.train_step.python_function, video)
  counted = hlo_flops.train_step_flops(trainer, video)
  # On its small maps the step runs its recurrent convolutions as dots over
  # patches (which XLA extracts with a convolution of its own), counting
  # SAME's zero padding; the model count has them as convolutions.
  assert as_run["num_dots"] > counted["num_dots"]
  assert counted["flops"] < as_run["flops"]
