"""Benchmarks against peers (not tests): ``make bench`` or ``python -m bench [NAME ...]``."""
