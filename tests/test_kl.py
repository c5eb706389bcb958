"""KL per latent channel and active-unit counts."""

import numpy as np
import pytest

from hvrnn_tf.evaluation.metrics import kl


def test_mean_per_channel_over_batches_steps_and_positions():
  rng = np.random.default_rng(0)
  batches = [
    [rng.uniform(size=(b, 3, 1, 1, 4)), rng.uniform(size=(b, 3, 2, 2, 6))]
    for b in (2, 5)
  ]
  acc = kl.KLPerChannel()
  for batch in batches:
    acc.update(batch)
  for level, result in enumerate(acc.result()):
    stacked = np.concatenate([b[level] for b in batches])
    np.testing.assert_allclose(result, stacked.mean(axis=(0, 1, 2, 3)))


def test_active_units_use_the_paper_thresholds():
  units = kl.active_units([np.array([0.005, 0.02, 0.2]), np.array([0.5, 0.16])])
  assert units == {
    "active": [2, 2],
    "maximally_active": [1, 2],
    "channels": [3, 2],
  }


def test_bad_input_is_rejected():
  acc = kl.KLPerChannel()
  with pytest.raises(ValueError, match="no KL"):
    acc.result()
  with pytest.raises(ValueError, match=r"\[B, T, H, W, Z\]"):
    acc.update([np.zeros((2, 3, 4))])
  acc.update([np.zeros((1, 1, 1, 1, 4))])
  with pytest.raises(ValueError, match="channels changed"):
    acc.update([np.zeros((1, 1, 1, 1, 5))])
