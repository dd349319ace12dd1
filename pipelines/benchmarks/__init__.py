"""Benchmarks run by `make bench` (python -m pipelines.bench)."""
