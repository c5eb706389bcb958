"""Tests of TrainConfig: gin names, defaults, factories and validation."""

import pytest

import gin
from hvrnn_tf.training import distribute
from hvrnn_tf.training import schedules
from hvrnn_tf.training.config import TrainConfig


def test_gin_binds_it_as_train_with_factory_references():
  gin.parse_config("""
      train.num_steps = 30
      train.batch_size = 8
      train.strategy = @distribute.mirrored_strategy
      torch_adam.beta_1 = 0.9
  """)
  config = TrainConfig()
  assert (config.num_steps, config.batch_size) == (30, 8)
  assert config.strategy is distribute.mirrored_strategy
  optimizer = config.optimizer(1e-3, config.weight_decay)
  assert isinstance(optimizer, schedules.TorchAdam)
  assert optimizer.beta_1 == 0.9 and optimizer.coupled_weight_decay == 1e-4


def test_defaults_are_the_papers_recipe():
  config = TrainConfig(num_steps=1)
  assert (config.learning_rate, config.lr_reference_batch) == (2e-5, 16)
  assert (config.lr_warmup_epochs, config.weight_decay) == (5.0, 1e-4)
  assert config.optimizer is schedules.torch_adam
  assert config.strategy is distribute.default_strategy
  assert config.steps(2.5) == 2500


@pytest.mark.parametrize(
  "overrides,message",
  [
    ({}, "Required bindings for `train` not provided in config: ['num_steps']"),
    ({"num_steps": 0}, "train.num_steps must be >= 1"),
    (
      {"num_steps": 9, "profile_steps": (1, 3)},
      "train.profile_steps: expected () or (first, last)",
    ),
    ({"num_steps": 9, "profile_steps": (4, 3)}, "train.profile_steps"),
    ({"num_steps": 1, "beta": -1.0}, "train.beta must be >= 0"),
    (
      {"num_steps": 1, "learning_rate": float("nan")},
      "train.learning_rate must be finite",
    ),
    (
      {"num_steps": 1, "precision": "float16"},
      "train.precision='float16'; expected one of",
    ),
    (
      {"num_steps": 1, "batch_size": 2.0},
      "train.batch_size: expected int, got 2.0 (float)",
    ),
    (
      {"num_steps": 1, "strategy": "mirrored"},
      "train.strategy: expected a factory such as "
      "@distribute.default_strategy, got 'mirrored'",
    ),
  ],
)
def test_bad_settings_name_the_parameter(overrides, message):
  with pytest.raises((ValueError, RuntimeError)) as error:
    TrainConfig(**overrides)
  assert message in str(error.value)


def test_strategy_by_name_for_code_that_picks_one():
  with pytest.raises(ValueError, match="'mirror'"):
    distribute.make_strategy("mirror")
  assert set(distribute.STRATEGIES) == {
    "default",
    "local_devices",
    "mirrored",
    "multi_worker",
    "one_device",
  }
