"""Benchmarks against ground truth: NAS-Bench-201."""
