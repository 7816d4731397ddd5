"""Benchmarks: ``make bench`` prints the figures recorded in docs/benchmarks.md (not timed tests)."""
