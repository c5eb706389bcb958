"""Experiments reproducing the paper's ablations (see docs/REPRODUCTION.md)."""
