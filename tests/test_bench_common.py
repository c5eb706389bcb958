"""bench.common and bench.hlo_flops: configs, tables, and the HLO FLOP counter."""

import keras
import pytest
import tensorflow as tf

from bench import common
from bench import hlo_flops
import gin
from hvrnn_tf.model import convlstm


def test_configs_are_their_gin_files_models():
  # The paper's model is ModelConfig's default, and gin/bair.gin's.
  assert common.model_config("bair_h3") == common.ModelConfig()
  assert common.model_config("bair_h1").latent_resolutions == (1,)
  assert common.model_config("bair_h1_d1").decoder_convlstm_layers == 1
  quick = common.model_config("smmnist_quick")
  assert (
    quick.image_size,
    quick.n_hid,
    quick.latent_channels,
    quick.decoder_skips,
  ) == (32, 8, (64, 64), True)
  assert gin.config_str() == ""  # reading a gin file leaves no bindings


def test_tiny_and_micro_shrink_gin_tiny():
  tiny_gin = common.gin_model_config("tiny.gin")
  for name, size in (("tiny", 16), ("micro", 8)):
    config = common.model_config(name)
    assert config.image_size == size
    assert (config.n_hid, config.channels, config.context_frames) == (
      tiny_gin.n_hid,
      tiny_gin.channels,
      tiny_gin.context_frames,
    )
  assert common.model_config("tiny", future_frames=5).future_frames == 5


def test_every_config_is_valid_and_described():
  for name in common.CONFIGS:
    common.model_config(name)
    assert name in common.DESCRIPTIONS


def test_markdown_table_and_hardware_record():
  table = common.markdown_table(["a", "b"], [[1, 2.5], ["x", None]])
  assert table.splitlines()[0].startswith("| a")
  assert len(table.splitlines()) == 4
  info = common.hardware_info()
  for key in (
    "cpu_model",
    "logical_cores",
    "physical_devices",
    "gpus",
    "tensorflow",
  ):
    assert key in info


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


def test_config_cases_parse_and_reject_unknown_configs():
  assert common.config_cases("tiny:2, micro:1,") == [("tiny", 2), ("micro", 1)]
  with pytest.raises(ValueError, match="Unknown config 'nope'"):
    common.config_cases("tiny:2,nope:1")


def test_config_cases_with_a_third_field():
  assert common.config_cases("tiny:2:xla", "mode") == [("tiny", 2, "xla")]
  assert common.config_cases(
    "tiny:2,micro:1:a+b", "variants", optional=True
  ) == [("tiny", 2, None), ("micro", 1, "a+b")]
  with pytest.raises(
    ValueError, match=r"Case 'tiny:2' is not config:N:mode \(N a positive"
  ):
    common.config_cases("tiny:2", "mode")


@pytest.mark.parametrize(
  "item", ["tiny", "tiny:x", "tiny:0", "tiny:-1", "tiny:2:xla"]
)
def test_bad_cases_are_one_clear_error(item):
  with pytest.raises(
    ValueError, match=rf"Case '{item}' is not config:N \(N a positive integer\)"
  ):
    common.config_case(item)


class _RecurrentStep:
  """Trainer-shaped: train_step calls the tf.function _replica_step, here
  the gradients of a normalised ConvLSTM over 3 frames of 4x4 maps."""

  def __init__(self):
    self.lstm = convlstm.NormConvLSTM(16)
    self.state = (tf.zeros([1, 4, 4, 16]), tf.zeros([1, 4, 4, 16]))
    self._replica_step = tf.function(self._replica_step_fn)

  def _replica_step_fn(self, video):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(self.lstm(video, self.state)[0])
    return tape.gradient(loss, self.lstm.trainable_variables)

  @tf.function
  def train_step(self, video):
    return self._replica_step(video)


def test_train_step_flops_count_small_maps_as_convolutions():
  trainer = _RecurrentStep()
  video = tf.zeros([1, 3, 4, 4, 2])
  as_run = hlo_flops.function_flops(trainer.train_step.python_function, video)
  counted = hlo_flops.train_step_flops(trainer, video)
  # On these small maps the step runs its recurrent convolutions as dots over
  # patches (which XLA extracts with a convolution of its own), counting
  # SAME's zero padding; the model count has them as convolutions.
  assert as_run["num_dots"] > 0 and counted["num_dots"] == 0
  assert counted["flops"] < as_run["flops"]
  # The trainer's own step keeps its trace, with the dots.
  again = hlo_flops.function_flops(trainer.train_step.python_function, video)
  assert again["num_dots"] == as_run["num_dots"]
