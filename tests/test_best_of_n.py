"""Best-of-N selection over samples and the per-timestep summary."""

import numpy as np
import pytest

from hvrnn_tf.evaluation.metrics import best_of_n

# [B=2, N=3, T=2]; per-sample means over time: (.3, .6, .45), (.9, .2, .5).
SCORES = np.array(
  [[[0.2, 0.4], [0.5, 0.7], [0.9, 0.0]], [[0.8, 1.0], [0.1, 0.3], [0.5, 0.5]]]
)


def test_higher_is_better_keeps_the_sample_with_the_highest_mean():
  best = best_of_n.best_of_n(SCORES, higher_is_better=True)
  np.testing.assert_array_equal(best.index, [1, 0])
  np.testing.assert_allclose(best.per_timestep, [[0.5, 0.7], [0.8, 1.0]])


def test_lower_is_better_keeps_the_sample_with_the_lowest_mean():
  best = best_of_n.best_of_n(SCORES, higher_is_better=False)
  np.testing.assert_array_equal(best.index, [0, 1])
  np.testing.assert_allclose(best.per_timestep, [[0.2, 0.4], [0.1, 0.3]])


def test_one_whole_sample_is_kept_not_the_best_frame_of_each():
  # Sequence 0's frame-wise maxima (0.9, 0.7) come from different samples.
  best = best_of_n.best_of_n(SCORES, higher_is_better=True)
  assert best.per_timestep[0].tolist() != [0.9, 0.7]


def test_metric_directions():
  assert best_of_n.HIGHER_IS_BETTER == {
    "ssim": True,
    "ssim_svg": True,
    "psnr": True,
    "lpips": False,
  }


def test_summarize_averages_over_sequences_per_timestep():
  summary = best_of_n.summarize([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
  assert summary == {
    "mean": 3.0,
    "per_timestep": [2.0, 3.0, 4.0],
    "num_sequences": 2,
  }


@pytest.mark.parametrize(
  "scores,match",
  [
    (np.zeros((2, 3)), r"\[B, N, T\]"),
    (np.zeros((2, 0, 3)), "non-empty"),
    (np.full((1, 2, 2), np.nan), "NaN"),
  ],
)
def test_bad_scores_are_rejected(scores, match):
  with pytest.raises(ValueError, match=match):
    best_of_n.best_of_n(scores, higher_is_better=True)


def test_summarize_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"\[S, T\]"):
    best_of_n.summarize(np.zeros(3))
