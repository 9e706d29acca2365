"""Benchmarks: run one with ``python -m benchmarks.<name>``; each exposes ``run(...) -> dict``."""
