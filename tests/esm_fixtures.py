"""Tiny randomly initialised ESM-2 checkpoints in fair-esm's own on-disk format, for tests and benchmarks.

The writer lives in the library (`teacher_cache.runner.write_random_esm2`) because `cli.py demo` uses it too;
see its docstring for the exact file layout.
"""
from teacher_cache.runner import ARCHITECTURES, write_random_esm2

__all__ = ["ARCHITECTURES", "write_random_esm2"]
