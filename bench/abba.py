"""A/B latency in alternating blocks (ABBA) and the p99 ratio with a block-bootstrap interval.

Two modes (log on/off, shadow on/off) take turns in short blocks, A B B A A B B A ..., so slow
drift of the machine hits both alike. Each block's timings stay together: requests within a
block are not independent, so the interval resamples whole blocks. The A/A noise floor
compares two interleaved halves of the B blocks: how far two identical runs differ here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def abba(blocks: int, a: str, b: str) -> Iterator[str]:
    """The mode of each of ``blocks`` blocks: ``a, b, b, a, a, b, b, a, ...``."""
    order = (a, b, b, a)
    for block in range(blocks):
        yield order[block % len(order)]


def timed(items: Sequence[T], call: Callable[[T], object]) -> list[float]:
    """Milliseconds of ``call(item)`` for each item, in order."""
    timings = []
    for item in items:
        started = time.perf_counter()
        call(item)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(samples: np.ndarray) -> dict[str, float]:
    """p50, p95, p99, mean and n of latency samples (ms)."""
    p50, p95, p99 = np.quantile(samples, [0.5, 0.95, 0.99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(samples.mean()), "n": len(samples)}


def bootstrap_ratio(on: list[list[float]], off: list[list[float]], draws: int = 2000) -> tuple[float, float]:
    """90% interval of p99(on) / p99(off), resampling whole blocks (they are not independent samples)."""
    rng = np.random.default_rng(0)
    on_blocks, off_blocks = [np.asarray(b) for b in on], [np.asarray(b) for b in off]
    ratios = []
    for _ in range(draws):
        a = np.concatenate([on_blocks[i] for i in rng.integers(len(on_blocks), size=len(on_blocks))])
        b = np.concatenate([off_blocks[i] for i in rng.integers(len(off_blocks), size=len(off_blocks))])
        ratios.append(np.quantile(a, 0.99) / np.quantile(b, 0.99))
    low, high = np.quantile(ratios, [0.05, 0.95])
    return float(low), float(high)


def p99_comparison(on: list[list[float]], off: list[list[float]], names: tuple[str, str, str]) -> dict[str, Any]:
    """Both modes' :func:`summary`, the p99 ratio on/off with its 90% interval, and the A/A floor.

    ``names`` are the keys of the on summary, the off summary and the noise floor.
    """
    on_key, off_key, floor_key = names
    flat_on, flat_off = np.concatenate(on), np.concatenate(off)
    low, high = bootstrap_ratio(on, off)
    halves = [np.concatenate(off[0::2]), np.concatenate(off[1::2])]
    return {
        off_key: summary(flat_off),
        on_key: summary(flat_on),
        "p99_ratio": float(np.quantile(flat_on, 0.99) / np.quantile(flat_off, 0.99)),
        "p99_ratio_90ci": [low, high],
        floor_key: float(np.quantile(halves[1], 0.99) / np.quantile(halves[0], 0.99)),
        "blocks_per_mode": len(on),
    }
