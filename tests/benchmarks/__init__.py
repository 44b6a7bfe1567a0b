"""Tests of the benchmarks: the tiny size runs end to end."""
