"""KL per latent channel and active units (the paper's Fig. 4).

A channel's KL is its per-element KL averaged over test sequences, predicted
steps and spatial positions, so levels of different resolution share one
scale. A channel is active above 0.01 nats and maximally active above 0.15.
"""

import numpy as np

ACTIVE_THRESHOLD = 0.01
MAX_ACTIVE_THRESHOLD = 0.15


class KLPerChannel:
  """Running mean of per-element KL per channel, for every latent level."""

  def __init__(self):
    self._sums = None  # per level: float64 [Z_l]
    self._counts = None  # per level: elements per channel seen so far

  def update(self, kl_per_level) -> None:
    """Adds a batch: per level (top first) KL [B, T, H_l, W_l, Z_l]."""
    arrays = [np.asarray(k, np.float64) for k in kl_per_level]
    if not arrays or any(a.ndim != 5 for a in arrays):
      raise ValueError(
        "kl_per_level must be a non-empty list of "
        "[B, T, H, W, Z] arrays, got shapes "
        f"{[a.shape for a in arrays]}"
      )
    if self._sums is None:
      self._sums = [np.zeros(a.shape[-1]) for a in arrays]
      self._counts = [0] * len(arrays)
    if [a.shape[-1] for a in arrays] != [s.size for s in self._sums]:
      raise ValueError(
        "latent channels changed between batches: "
        f"{[a.shape[-1] for a in arrays]}"
      )
    for level, a in enumerate(arrays):
      self._sums[level] += a.sum(axis=(0, 1, 2, 3))
      self._counts[level] += a.size // a.shape[-1]

  def result(self) -> list[np.ndarray]:
    """Per level (top first): mean KL per channel, float64 [Z_l]."""
    if self._sums is None:
      raise ValueError("no KL seen yet")
    return [s / n for s, n in zip(self._sums, self._counts)]


def active_units(kl_per_channel: list[np.ndarray]) -> dict:
  """Counts per level of active (> 0.01) and maximally active (> 0.15)
  channels, from `KLPerChannel.result()`."""
  return {
    "active": [int((k > ACTIVE_THRESHOLD).sum()) for k in kl_per_channel],
    "maximally_active": [
      int((k > MAX_ACTIVE_THRESHOLD).sum()) for k in kl_per_channel
    ],
    "channels": [int(k.size) for k in kl_per_channel],
  }
