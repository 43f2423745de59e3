"""Scripts that print measured tables; each runs from the repository root as `python -m benchmarks.NAME`."""
