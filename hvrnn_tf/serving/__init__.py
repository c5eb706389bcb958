"""Serving: the SavedModel signature and its in-graph sampler."""
