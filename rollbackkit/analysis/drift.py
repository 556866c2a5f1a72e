"""Drift between a reference and a current sample: numeric, categorical, per slice.

Numeric metrics share one sort of each sample (the two sorts run in parallel threads;
numpy releases the GIL), after which everything is linear or logarithmic:

- **PSI** over 10 bins cut at the reference's deciles (linear interpolation, numpy's
  default), right-inclusive: (-inf, d1], (d1, d2], ..., (d9, inf). Tied deciles merge bins.
  Empty bins are floored at ``EPSILON = 1e-4`` (as a share) before the log, so PSI stays
  finite; the floor is the only smoothing.
- **Kolmogorov-Smirnov** statistic (two-sided, right-continuous ECDFs, as
  ``scipy.stats.ks_2samp``) and its asymptotic p-value (``kstwo`` at the effective sample
  size). The p-value is informative only: on millions of rows it flags any shift, so gates
  default to effect sizes (PSI, normalised Wasserstein, JS).
- **Wasserstein-1** (as ``scipy.stats.wasserstein_distance``), raw and divided by the
  reference standard deviation. KS and W1 come from one chunked merge of the two sorted
  samples, so their temporaries stay small.
- **Jensen-Shannon distance** (base 2) over the PSI bins.
- **Tails**: p1, p5, p50, p95, p99 of both samples, and the share of current values below
  the reference p1 or above its p99. Mean and std of both, and the mean shift in
  reference-std units.

NaN and +-inf are never silently dropped: they are counted per side and reported, and the
metrics are computed on the finite values. Categorical metrics (PSI and JS over category
shares, new-category share) treat missing values as their own category. Class labels
(:func:`label_drift`) are categorical whatever their dtype: string, boolean or integer
classes are compared by their shares, ``1`` and ``1.0`` being one class.

Inputs are any sample :func:`rollbackkit.analysis.series.as_series` takes (numpy, pandas,
pyarrow, a Parquet path, Dask); results are identical across input kinds. Drift per slice
is :mod:`rollbackkit.analysis.slices`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.series import as_labels, as_series, is_numeric, json_safe

EPSILON = 1e-4
PSI_BINS = 10
TAILS = {"p1": 0.01, "p5": 0.05, "p50": 0.5, "p95": 0.95, "p99": 0.99}
_MERGE_CHUNK = 1 << 20


# ----------------------------------------------------------------------------- numeric
@dataclass(frozen=True)
class NumericProfile:
    """A sample reduced to what drift needs: its sorted finite values and what was left out.

    Build it once for a reference (:meth:`of`) and reuse it against many current windows.
    """

    sorted: np.ndarray
    nan: int
    inf: int

    @classmethod
    def of(cls, data: Any, column: str | None = None) -> NumericProfile:
        """Profile any supported input (see :func:`as_series`)."""
        return _profiles([(data, column)])[0]

    @property
    def n(self) -> int:
        """Number of finite values."""
        return int(self.sorted.size)


def _finite(data: Any, column: str | None) -> tuple[np.ndarray, int, int]:
    if isinstance(data, np.ndarray) and data.dtype.kind in "iuf":
        values = data.astype("float64", copy=False)
    else:
        series = as_series(data, column)
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    nan = int(np.count_nonzero(np.isnan(values)))
    finite_mask = np.isfinite(values)
    finite = values[finite_mask] if not finite_mask.all() else values.copy()
    return finite, nan, int(values.size - finite.size - nan)


def _profiles(items: Sequence[tuple[Any, str | None]]) -> list[NumericProfile]:
    """Profile several inputs, sorting them in parallel threads (numpy sorts release the GIL)."""
    finites = [_finite(data, column) for data, column in items]

    def sort_in_place(values: np.ndarray) -> np.ndarray:
        values.sort()
        return values

    if len(finites) > 1 and sum(f[0].size for f in finites) > 200_000:
        with ThreadPoolExecutor(len(finites)) as pool:
            sorted_values = list(pool.map(sort_in_place, [f[0] for f in finites]))
    else:
        sorted_values = [sort_in_place(f[0]) for f in finites]
    return [NumericProfile(s, f[1], f[2]) for s, f in zip(sorted_values, finites, strict=True)]


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """numpy's default (linear) quantile of an already sorted array."""
    pos = q * (sorted_values.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_values.size - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def psi_edges(reference_sorted: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates merged)."""
    return np.unique([_quantile(reference_sorted, i / bins) for i in range(1, bins)])


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


@dataclass(frozen=True)
class DriftResult:
    """Drift of one numeric column (optionally within one slice)."""

    column: str
    n_ref: int
    n_cur: int
    psi: float
    ks: float
    ks_pvalue: float
    js: float
    wasserstein: float
    wasserstein_norm: float
    quantiles: dict[str, tuple[float, float]]
    tail_share: dict[str, float]
    nan: dict[str, int]
    inf: dict[str, int]
    mean: tuple[float, float]
    std: tuple[float, float]
    mean_shift: float
    slice: dict[str, Any] | None = None
    kind: str = "numeric"

    def metric(self, name: str) -> float:
        """A metric by name (``psi``, ``ks``, ``js``, ``wasserstein_norm``, ``mean_shift`` ...)."""
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit drift --json``)."""
        out = {
            "column": self.column,
            "kind": self.kind,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "psi": self.psi,
            "ks": self.ks,
            "ks_pvalue": self.ks_pvalue,
            "js": self.js,
            "wasserstein": self.wasserstein,
            "wasserstein_norm": self.wasserstein_norm,
            "quantiles": {k: list(v) for k, v in self.quantiles.items()},
            "tail_share": self.tail_share,
            "nan": self.nan,
            "inf": self.inf,
            "mean": list(self.mean),
            "std": list(self.std),
            "mean_shift": self.mean_shift,
        }
        if self.slice is not None:
            out["slice"] = self.slice
        return json_safe(out)


def numeric_drift(reference: Any, current: Any, column: str | None = None) -> DriftResult:
    """All numeric drift metrics between two samples (or a prebuilt reference profile)."""
    if isinstance(reference, NumericProfile):
        ref, cur = reference, _profiles([(current, column)])[0]
    else:
        ref, cur = _profiles([(reference, column), (current, column)])
    return _numeric_from_profiles(ref, cur, column or "value")


def _numeric_from_profiles(ref: NumericProfile, cur: NumericProfile, column: str) -> DriftResult:
    u, v = ref.sorted, cur.sorted
    nan, inf = {"ref": ref.nan, "cur": cur.nan}, {"ref": ref.inf, "cur": cur.inf}
    if u.size == 0 or v.size == 0:
        none = float("nan")
        return DriftResult(
            column,
            u.size,
            v.size,
            none,
            none,
            none,
            none,
            none,
            none,
            {},
            {},
            nan,
            inf,
            (none, none),
            (none, none),
            none,
        )
    edges = psi_edges(u)
    p, q = bin_shares(u, edges), bin_shares(v, edges)
    ks, w1 = ks_wasserstein(u, v)
    mean_ref, mean_cur = float(u.mean()), float(v.mean())
    std_ref, std_cur = float(u.std()), float(v.std())
    quantiles = {name: (_quantile(u, q_), _quantile(v, q_)) for name, q_ in TAILS.items()}
    below = int(np.searchsorted(v, quantiles["p1"][0], side="left"))
    above = v.size - int(np.searchsorted(v, quantiles["p99"][0], side="right"))
    return DriftResult(
        column=column,
        n_ref=int(u.size),
        n_cur=int(v.size),
        psi=psi(p, q),
        ks=ks,
        ks_pvalue=ks_pvalue(ks, u.size, v.size),
        js=js_distance(p, q),
        wasserstein=w1,
        wasserstein_norm=_ratio(w1, std_ref),
        quantiles=quantiles,
        tail_share={"below_p1": below / v.size, "above_p99": above / v.size},
        nan=nan,
        inf=inf,
        mean=(mean_ref, mean_cur),
        std=(std_ref, std_cur),
        mean_shift=_ratio(mean_cur - mean_ref, std_ref),
    )


def _ratio(value: float, scale: float) -> float:
    if scale > 0:
        return value / scale
    return 0.0 if value == 0 else math.copysign(math.inf, value)


# ----------------------------------------------------------------------------- categorical
@dataclass(frozen=True)
class CategoricalDrift:
    """Drift of one categorical column: category shares, PSI/JS, new categories."""

    column: str
    n_ref: int
    n_cur: int
    psi: float
    js: float
    new_category_share: float
    new_categories: list[str]
    shares: dict[str, tuple[float, float]]
    nan: dict[str, int]
    slice: dict[str, Any] | None = None
    kind: str = "categorical"

    def metric(self, name: str) -> float:
        """A metric by name (``psi``, ``js``, ``new_category_share``)."""
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = {
            "column": self.column,
            "kind": self.kind,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "psi": self.psi,
            "js": self.js,
            "new_category_share": self.new_category_share,
            "new_categories": self.new_categories,
            "shares": {k: list(v) for k, v in self.shares.items()},
            "nan": self.nan,
        }
        if self.slice is not None:
            out["slice"] = self.slice
        return json_safe(out)


MISSING_CATEGORY = "<missing>"
"""The category missing values count as (the gate's categorical PSI/JS; the drift panels' too)."""


def category_shares(
    ref_counts: Any, cur_counts: Any, n_ref: int, n_cur: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The categorical PSI/JS's share vectors: every category either side counts (``ref_counts``
    and ``cur_counts`` map a category's text to its rows, :data:`MISSING_CATEGORY` included),
    sorted, each divided by its side's rows. The gate's one rule, which the drift panels reuse."""
    ref_counts, cur_counts = pd.Series(ref_counts, dtype="float64"), pd.Series(cur_counts, dtype="float64")
    categories = sorted(set(ref_counts.index) | set(cur_counts.index))
    p = ref_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64") / max(n_ref, 1)
    q = cur_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64") / max(n_cur, 1)
    return categories, p, q


def categorical_drift(reference: Any, current: Any, column: str | None = None) -> CategoricalDrift:
    """Category-share drift; missing values count as their own category."""
    ref, cur = as_series(reference, column), as_series(current, column)
    ref_counts = ref.astype("object").where(ref.notna(), MISSING_CATEGORY).astype(str).value_counts()
    cur_counts = cur.astype("object").where(cur.notna(), MISSING_CATEGORY).astype(str).value_counts()
    categories, p, q = category_shares(ref_counts, cur_counts, len(ref), len(cur))
    new = [c for c in categories if c not in ref_counts.index]
    new_share = float(cur_counts.reindex(new, fill_value=0).sum() / max(len(cur), 1))
    return CategoricalDrift(
        column=column or "value",
        n_ref=len(ref),
        n_cur=len(cur),
        psi=psi(p, q),
        js=js_distance(p, q),
        new_category_share=new_share,
        new_categories=new,
        shares={c: (float(a), float(b)) for c, a, b in zip(categories, p, q, strict=True)},
        nan={"ref": int(ref.isna().sum()), "cur": int(cur.isna().sum())},
    )


def label_drift(reference: Any, current: Any, column: str | None = None) -> CategoricalDrift:
    """Drift of a class-label column: class shares (see :func:`as_labels`), PSI, JS, new classes."""
    return categorical_drift(as_labels(reference, column), as_labels(current, column), column)


# ----------------------------------------------------------------------------- entry points
def drift(reference: Any, current: Any, column: str | None = None) -> DriftResult | CategoricalDrift:
    """Numeric or categorical drift, chosen by the reference's dtype."""
    if isinstance(reference, NumericProfile):
        return numeric_drift(reference, current, column)
    ref = reference if isinstance(reference, np.ndarray) else as_series(reference, column)
    numeric = ref.dtype.kind in "iuf" if isinstance(ref, np.ndarray) else is_numeric(ref)
    if numeric:
        return numeric_drift(ref, current, column)
    return categorical_drift(ref, current, column)
