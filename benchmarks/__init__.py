"""Benchmarks: speed and memory reported as side-by-side ratios (not test assertions)."""
