"""Plumbing shared by every layer: validation, atomic writes, gin search paths, the allocator."""
