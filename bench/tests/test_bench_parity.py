"""bench.parity's helpers and its torch driver's torch-free parts."""

import types

import numpy as np

from bench import parity
from bench import parity_torch_driver as driver
from bench import release_study
from hvrnn_tf.training import config as train_config
from hvrnn_tf.training import schedules


def test_noise_is_the_same_on_both_sides_and_differs_by_step():
  levels = [(1, 4), (2, 3)]
  a = driver.noise(0, 5, 2, 3, levels)
  b = driver.noise(0, 5, 2, 3, levels)
  c = driver.noise(0, 6, 2, 3, levels)
  assert [x.shape for x in a] == [(2, 3, 1, 1, 4), (2, 3, 2, 2, 3)]
  for x, y, z in zip(a, b, c):
    np.testing.assert_array_equal(x, y)
    assert not np.allclose(x, z)


def test_relative_error():
  assert parity.relative_error([1.0, 1.0], [1.0, 1.0]) == 0.0
  np.testing.assert_allclose(parity.relative_error([2.0, 0.0], [1.0, 0.0]), 1.0)
  assert parity.relative_error([1e-9], [0.0]) == 1e-9  # no division by zero


def test_the_release_study_gives_the_driver_our_schedules():
  config = train_config.TrainConfig(
    num_steps=1200,
    batch_size=8,
    steps_per_epoch=200,
    learning_rate=1e-3,
    lr_warmup_epochs=0.5,
    beta_warmup_epochs=2,
  )
  options = release_study.schedule_options(config)
  args = types.SimpleNamespace(**options)
  learning_rate = schedules.WarmupLearningRate(1e-3, 100, 8, 16)
  for step in (0, 37, 100, 250, 500):
    lr, beta = driver._schedule(args, step)  # pylint: disable=protected-access
    np.testing.assert_allclose(lr, float(learning_rate(step)), rtol=1e-6)
    expected_beta = float(schedules.linear_warmup(step, 0.0, 1.0, 400))
    np.testing.assert_allclose(beta, expected_beta, rtol=1e-6)
