"""Speed paths for CPU training: GroupNorm's gradient, shared-kernel convolutions, shape helpers."""
