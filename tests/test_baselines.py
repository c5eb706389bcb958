"""Tests of hvrnn_tf.evaluation.baselines."""

import numpy as np

from hvrnn_tf.evaluation import baselines


def test_copy_last_frame_repeats_the_last_context_frame():
  context = np.random.default_rng(0).uniform(size=(2, 3, 8, 8, 1))
  predicted = baselines.CopyLastFrame(config=None).sample(context, 4, 5)
  assert predicted.shape == (2, 5, 4, 8, 8, 1)
  for b in range(2):
    np.testing.assert_allclose(
      predicted[b].numpy(),
      np.broadcast_to(context[b, -1], (5, 4, 8, 8, 1)),
      rtol=1e-6,
    )
