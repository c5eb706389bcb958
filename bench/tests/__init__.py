"""Tests of the benchmarks (bench/*.py), one file per module."""
