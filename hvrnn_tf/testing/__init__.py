"""Helpers shared by tests/ and bench/: named model configs, pytest fixtures."""
