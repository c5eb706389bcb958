"""Tests of the reconstruction losses."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model.losses import reconstruction_nll


def test_values_match_numpy():
  logits = tf.random.stateless_normal([2, 3, 4, 4, 1], seed=[0, 1])
  targets = tf.random.stateless_uniform([2, 3, 4, 4, 1], seed=[0, 2])
  p, x = tf.sigmoid(logits).numpy(), targets.numpy()
  np.testing.assert_allclose(
    reconstruction_nll(logits, targets, "l1"),
    np.abs(p - x).sum((1, 2, 3, 4)),
    rtol=1e-5,
  )
  np.testing.assert_allclose(
    reconstruction_nll(logits, targets, "l2"),
    ((p - x) ** 2).sum((1, 2, 3, 4)),
    rtol=1e-5,
  )
  bce = -(x * np.log(p) + (1 - x) * np.log(1 - p))
  np.testing.assert_allclose(
    reconstruction_nll(logits, targets, "bernoulli"),
    bce.sum((1, 2, 3, 4)),
    rtol=1e-4,
  )


def test_perfect_prediction_has_zero_l1_l2():
  targets = tf.constant(0.25, shape=[1, 2, 2, 2, 1])
  logits = tf.math.log(targets / (1 - targets))
  for kind in ("l1", "l2"):
    np.testing.assert_allclose(
      reconstruction_nll(logits, targets, kind), 0, atol=1e-5
    )


def test_unknown_kind_is_rejected():
  with pytest.raises(ValueError, match="'huber'"):
    reconstruction_nll(
      tf.zeros([1, 1, 1, 1, 1]), tf.zeros([1, 1, 1, 1, 1]), "huber"
    )
