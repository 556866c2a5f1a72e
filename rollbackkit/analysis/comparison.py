"""Candidate against live: is a difference material, and is it supported by the data?

A gate with ``compare: live`` names a threshold in the harmful direction: ``max_ratio``
(candidate/live), ``max_increase`` (candidate - live) or ``max_decrease`` (live - candidate).
The estimate is **material** when it is beyond the threshold and **supported** when the lower
end of its confidence interval is beyond it too: fail = material and supported; material
but not supported = ``inconclusive`` (more data will tell); otherwise pass. So a large sample
never fails a negligible difference, and a small one never fails a noisy one.

Intervals are two-sided at the gate's ``confidence`` ``c``, so the lower end that decides a
failure is a one-sided bound at ``(1 + c) / 2`` (0.975 for the default 0.95; evidence
``one_sided``): proportions (error rate, accuracy) by Newcombe's hybrid score interval on the
difference (built from each side's Wilson interval); quantiles (latency) by exact
distribution-free order-statistic bounds per side (binomial ranks, each one-sided at
``1 - (1 - c) / 4``, so the combined bound holds at ``(1 + c) / 2``) combined into a bound on
the ratio or difference, found with :func:`numpy.partition` in O(n); a bound whose rank falls
outside a small sample is unbounded (p99 on 50 rows has no finite upper bound), so a small
sample never fails on noise; any other label metric by a percentile bootstrap (fixed seed, at
most 200 resamples of at most 20,000 rows per side).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from rollbackkit.analysis.gateresult import Insufficient

Verdict = Literal["pass", "fail", "inconclusive"]
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_ROWS = 20_000
SEED = 19
T = TypeVar("T")


@dataclass(frozen=True)
class Comparison:
    """A candidate's metric against live's, with the interval of the harmful difference or ratio."""

    candidate: float
    live: float
    key: str
    threshold: float
    estimate: float
    ci: tuple[float, float]
    n: int
    n_live: int
    confidence: float
    method: str

    @property
    def material(self) -> bool:
        """The estimate is beyond the threshold."""
        return bool(self.estimate > self.threshold)

    @property
    def supported(self) -> bool:
        """The whole interval is beyond the threshold."""
        return bool(self.ci[0] > self.threshold)

    @property
    def verdict(self) -> Verdict:
        """``fail`` (material and supported), ``inconclusive`` (material only) or ``pass``."""
        if self.material:
            return "fail" if self.supported else "inconclusive"
        return "pass"

    def evidence(self) -> dict[str, Any]:
        """The comparison for a gate's evidence (``ratio`` or ``difference``, ``ci``, ``n``...)."""
        measure = "ratio" if self.key == "max_ratio" else "difference"
        return {
            "compare": self.key,
            "candidate": self.candidate,
            "live": self.live,
            measure: self.estimate,
            "ci": [self.ci[0], self.ci[1]],
            "confidence": self.confidence,
            "one_sided": one_sided(self.confidence),
            "n": self.n,
            "n_live": self.n_live,
            "material": self.material,
            "supported": self.supported,
            "method": self.method,
        }


def one_sided(confidence: float) -> float:
    """The level of the lower end of a two-sided interval at ``confidence``: ``(1 + c) / 2``."""
    return (1 + confidence) / 2


def _z(confidence: float) -> float:
    from scipy.stats import norm  # imported when first needed: scipy.stats costs every CLI command ~0.4 s

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n``."""
    z, p = _z(confidence), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportions(k: int, n: int, k_live: int, n_live: int, key: str, threshold: float, confidence: float) -> Comparison:
    """Compare two proportions (``max_increase``: candidate - live; ``max_decrease``: live - candidate).

    The interval is Newcombe's hybrid score interval (method 10) on the difference.
    """
    if key not in ("max_increase", "max_decrease"):
        raise ValueError(f"proportions compare by max_increase or max_decrease, not {key}")
    p, q = k / n, k_live / n_live
    (l1, u1), (l2, u2) = wilson(k, n, confidence), wilson(k_live, n_live, confidence)
    low = (p - q) - math.sqrt((p - l1) ** 2 + (u2 - q) ** 2)
    high = (p - q) + math.sqrt((u1 - p) ** 2 + (q - l2) ** 2)
    if key == "max_decrease":  # the harm is live - candidate
        estimate, ci = q - p, (-high, -low)
    else:
        estimate, ci = p - q, (low, high)
    return Comparison(p, q, key, threshold, estimate, ci, n, n_live, confidence, "newcombe")


def _ranks(n: int, q: float, level: float) -> tuple[int | None, int | None]:
    """0-based ranks of exact one-sided order-statistic bounds at ``level`` on the ``q`` quantile
    (None: the rank falls outside the sample, the bound is unbounded).

    ``P(X(k+1) >= quantile) = P(Binomial(n, q) <= k)``: the upper rank is the smallest ``k``
    with that at least ``level``; the lower rank is the largest ``j`` with
    ``P(Binomial(n, q) <= j - 1) <= 1 - level``.
    """
    from scipy.stats import binom

    high = int(binom.ppf(level, n, q))
    high_rank = high if high <= n - 1 and binom.cdf(high, n, q) >= level else None
    low = int(binom.ppf(1 - level, n, q))
    if binom.cdf(low, n, q) > 1 - level:
        low -= 1
    low_rank = low if low >= 0 else None  # X(low + 1), 1-based
    return low_rank, high_rank


def _quantile_with_bounds(values: np.ndarray, q: float, level: float) -> tuple[float, float, float]:
    """The ``q`` quantile (linear interpolation, as numpy) and its one-sided lower and upper
    bounds at ``level`` each (0 and infinity when their rank falls outside the sample), in O(n)."""
    n = values.size
    low_rank, high_rank = _ranks(n, q, level)
    h = (n - 1) * q
    below = math.floor(h)
    above = min(below + 1, n - 1)
    ranks = sorted({r for r in (low_rank, high_rank, below, above) if r is not None})
    part = np.partition(values, ranks)
    point = float(part[below] + (h - below) * (part[above] - part[below]))
    low = float(part[low_rank]) if low_rank is not None else (0.0 if float(part.min()) >= 0 else -math.inf)
    high = float(part[high_rank]) if high_rank is not None else math.inf
    return point, low, high


def quantiles(
    values: np.ndarray, live: np.ndarray, q: float, key: str, threshold: float, confidence: float
) -> Comparison:
    """Compare a quantile (latency) by ``max_ratio`` (candidate/live) or ``max_increase`` (candidate - live).

    Each side's bounds are one-sided at ``1 - (1 - confidence) / 4``; each end of the combined
    interval uses two of them, so it holds at ``(1 + confidence) / 2`` at least (Bonferroni), as
    the other methods' lower ends do.
    """
    if key not in ("max_ratio", "max_increase"):
        raise ValueError(f"quantiles compare by max_ratio or max_increase, not {key}")
    side = 1 - (1 - confidence) / 4
    point, low, high = _quantile_with_bounds(values, q, side)
    point_live, low_live, high_live = _quantile_with_bounds(live, q, side)
    if key == "max_ratio":
        estimate = _ratio(point, point_live)
        ci = (_ratio(low, high_live), _ratio(high, low_live))
    else:
        estimate, ci = point - point_live, (low - high_live, high - low_live)
    return Comparison(point, point_live, key, threshold, estimate, ci, values.size, live.size, confidence, "order")


def _ratio(a: float, b: float) -> float:
    if math.isinf(b):
        return 0.0
    if b > 0:
        return a / b
    return 1.0 if a <= 0 else math.inf


def harm(candidate: float, live: float, key: str) -> float:
    """The harmful change by ``key``: the ratio, the increase or the decrease."""
    if key == "max_ratio":
        return _ratio(candidate, live)
    return candidate - live if key == "max_increase" else live - candidate


def bootstrap(
    data: T,
    live: T,
    measure: Callable[[T], float],
    take: Callable[[T, np.ndarray], T],
    sizes: tuple[int, int],
    key: str,
    threshold: float,
    confidence: float,
) -> Comparison:
    """Compare any metric by a percentile bootstrap of the harmful change (fixed seed, bounded work).

    Each side is subsampled to :data:`BOOTSTRAP_ROWS` rows, then resampled
    :data:`BOOTSTRAP_RESAMPLES` times; a resample whose metric is undefined is left out (over
    half left out: the interval is unbounded, so nothing is supported).
    """
    rng = np.random.default_rng(SEED)
    n, n_live = sizes
    candidate, baseline = measure(data), measure(live)
    sub = take(data, rng.choice(n, BOOTSTRAP_ROWS, replace=False)) if n > BOOTSTRAP_ROWS else data
    sub_live = take(live, rng.choice(n_live, BOOTSTRAP_ROWS, replace=False)) if n_live > BOOTSTRAP_ROWS else live
    m, m_live = min(n, BOOTSTRAP_ROWS), min(n_live, BOOTSTRAP_ROWS)
    changes = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        try:
            a = measure(take(sub, rng.integers(0, m, m)))
            b = measure(take(sub_live, rng.integers(0, m_live, m_live)))
        except Insufficient:
            continue
        changes.append(harm(a, b, key))
    estimate = harm(candidate, baseline, key)
    if len(changes) < BOOTSTRAP_RESAMPLES / 2:
        ci = (-math.inf, math.inf)
    else:
        tail = (1 - confidence) / 2
        ci = (float(np.quantile(changes, tail)), float(np.quantile(changes, 1 - tail)))
    return Comparison(candidate, baseline, key, threshold, estimate, ci, n, n_live, confidence, "bootstrap")
