"""Evaluation: metrics, the best-of-N protocol, baselines, plots, sample pictures."""
