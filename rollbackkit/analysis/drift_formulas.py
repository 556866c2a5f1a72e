"""The drift metrics' formulas, on share vectors or sorted samples: one home for each.

- **PSI** over bins cut at the reference's deciles (:func:`psi_edges`: linear interpolation,
  numpy's default; tied deciles merge bins), right-inclusive: (-inf, d1], (d1, d2], ..., (d9, inf)
  (:func:`bin_shares`). Shares are floored at ``EPSILON = 1e-4`` before the log (:func:`psi_terms`),
  so PSI stays finite; the floor is the only smoothing.
- **Kolmogorov-Smirnov** statistic (two-sided, right-continuous ECDFs, as ``scipy.stats.ks_2samp``)
  and **Wasserstein-1** (as ``scipy.stats.wasserstein_distance``) from one chunked merge of the two
  sorted samples (:func:`ks_wasserstein`), so their temporaries stay small; the asymptotic KS p-value
  (``kstwo`` at the effective sample size, :func:`ks_pvalue`).
- **Jensen-Shannon distance** (base 2) of two share vectors (:func:`js_distance`).

The results built from them: :mod:`rollbackkit.analysis.drift`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EPSILON = 1e-4
PSI_BINS = 10
_MERGE_CHUNK = 1 << 20


def sorted_quantile(sorted_values: np.ndarray, q: float) -> float:
    """numpy's default (linear) quantile of an already sorted array."""
    pos = q * (sorted_values.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_values.size - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def psi_edges(reference_sorted: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates merged)."""
    return np.unique([sorted_quantile(reference_sorted, i / bins) for i in range(1, bins)])


def bin_shares(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in each right-inclusive bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    counts = np.diff(np.concatenate([[0], cuts, [sorted_values.size]]))
    return counts / max(sorted_values.size, 1)


def psi_terms(expected: Any, actual: Any, ln: Any = np.log, floor: Any = np.maximum) -> Any:
    """Each category's (or bin's) PSI term, ``(q - p) ln(q / p)`` with both shares floored at
    EPSILON: the ONE formula, in numpy by default; the logs' SQL renders it with their own ``ln``
    and ``floor`` (:func:`rollbackkit.serving.predlog.unseen.unseen_psi_sql`)."""
    p, q = floor(expected, EPSILON), floor(actual, EPSILON)
    return (q - p) * ln(q / p)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors (floored at EPSILON)."""
    return float(np.sum(psi_terms(expected, actual)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) of two share vectors."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def ks_wasserstein(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 of two sorted samples, in one chunked merge."""
    n, m = u.size, v.size
    i = j = 0
    ks, w1 = 0.0, 0.0
    last_x: float | None = None
    last_d = 0.0
    while i < n or j < m:
        if i < n:
            edge = u[min(i + _MERGE_CHUNK, n) - 1]
            k = int(np.searchsorted(u, edge, "right"))  # never split a tie group
            jj = int(np.searchsorted(v, edge, "right"))
        else:
            k, jj = n, m
        block = np.concatenate([u[i:k], v[j:jj]])
        order = np.argsort(block, kind="stable")
        xs = block[order]
        from_u = np.cumsum(order < (k - i))
        cu = from_u + i
        cv = np.arange(1, xs.size + 1) - from_u + j
        ends = np.flatnonzero(np.append(xs[1:] != xs[:-1], True))
        d = cu[ends] / n - cv[ends] / m
        xe = xs[ends]
        ks = max(ks, float(np.max(np.abs(d))))
        if last_x is not None:
            w1 += abs(last_d) * float(xe[0] - last_x)
        w1 += float(np.sum(np.abs(d[:-1]) * np.diff(xe)))
        last_x, last_d = float(xe[-1]), float(d[-1])
        i, j = k, jj
    return ks, w1


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided KS p-value at the effective sample size."""
    from scipy.stats import kstwo

    effective = round(n * m / (n + m))
    return float(kstwo.sf(statistic, effective)) if effective > 0 else float("nan")
