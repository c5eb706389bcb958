"""The paper's best-of-N protocol over sampled futures, and per-timestep curves.

For every test sequence the N samples are scored per frame; the sample whose
score averaged over the predicted frames is best (highest SSIM / PSNR, lowest
LPIPS) is kept, whole, and its per-frame scores form that sequence's curve.
Choosing one sample per sequence (rather than the best sample independently at
every frame) is what a person looking at one predicted video would see.
"""

import dataclasses

import numpy as np

SELECTION = (
  "per sequence, the one sample (of N) whose score averaged over "
  "the predicted frames is best"
)
# Whether a higher score is better, for the metrics this package computes.
HIGHER_IS_BETTER = {
  "ssim": True,
  "ssim_svg": True,
  "psnr": True,
  "lpips": False,
}


@dataclasses.dataclass(frozen=True)
class BestOfN:
  """The sample kept per sequence.

  index: int [B], which of the N samples was kept.
  per_timestep: [B, T] the kept sample's per-frame scores.
  """

  index: np.ndarray
  per_timestep: np.ndarray


def best_of_n(scores, higher_is_better: bool) -> BestOfN:
  """Keeps, per sequence, the sample with the best mean score over time.

  Args:
    scores: [B, N, T] per-frame scores of N samples of B sequences.
    higher_is_better: True for SSIM / PSNR, False for LPIPS.

  Raises:
    ValueError: scores is not [B, N, T] with N, T >= 1, or contains NaN.
  """
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 3 or 0 in scores.shape:
    raise ValueError(
      f"scores must be [B, N, T] and non-empty, got {scores.shape}"
    )
  if np.isnan(scores).any():
    raise ValueError("scores contain NaN")
  mean = scores.mean(axis=2)
  index = (np.argmax if higher_is_better else np.argmin)(mean, axis=1)
  return BestOfN(index=index, per_timestep=scores[np.arange(len(index)), index])


def summarize(per_timestep) -> dict:
  """Test-set summary of kept-sample curves.

  Args:
    per_timestep: [S, T] curves of S sequences.

  Returns:
    {"mean": mean over sequences and frames, "per_timestep": [T] list of means
    over sequences, "num_sequences": S}.
  """
  per_timestep = np.asarray(per_timestep, np.float64)
  if per_timestep.ndim != 2 or 0 in per_timestep.shape:
    raise ValueError(
      f"per_timestep must be [S, T] and non-empty, got {per_timestep.shape}"
    )
  return {
    "mean": float(per_timestep.mean()),
    "per_timestep": per_timestep.mean(axis=0).tolist(),
    "num_sequences": per_timestep.shape[0],
  }
