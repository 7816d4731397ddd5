"""Benchmarks: ``make bench`` prints the figures recorded in the README (not timed tests)."""
