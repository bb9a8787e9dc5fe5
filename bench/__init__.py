"""Benchmarks: each module prints figures; none is a pass/fail test."""
