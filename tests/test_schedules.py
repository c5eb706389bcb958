"""Tests of the learning-rate and beta schedules."""

import numpy as np

from hvrnn_tf import schedules


def test_linear_warmup_ramps_then_stays():
  values = [float(schedules.linear_warmup(s, 1.0, 3.0, 10))
            for s in (0, 5, 10, 50)]
  np.testing.assert_allclose(values, [1.0, 2.0, 3.0, 3.0])
  assert float(schedules.linear_warmup(0, 0.0, 2.0, 0)) == 2.0


def test_learning_rate_follows_linear_scaling_rule():
  schedule = schedules.WarmupLearningRate(2e-5, 1.6e-4, 100,
                                          global_batch_size=64)
  np.testing.assert_allclose(float(schedule(0)), 8e-5, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(100)), 6.4e-4, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(50)), (8e-5 + 6.4e-4) / 2,
                             rtol=1e-6)
  assert schedules.WarmupLearningRate(**schedule.get_config()).scale == 4.0
