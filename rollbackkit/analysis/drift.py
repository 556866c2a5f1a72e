"""Drift between a reference and a current sample: numeric, categorical, class labels.

Numeric metrics share one sort of each sample (:class:`NumericProfile`; the two sorts run in
parallel threads, numpy releases the GIL), after which everything is linear or logarithmic:
PSI over the reference's deciles, Kolmogorov-Smirnov statistic and asymptotic p-value,
Wasserstein-1 raw and divided by the reference standard deviation, Jensen-Shannon distance
(the formulas: :mod:`rollbackkit.analysis.drift_formulas`), and the **tails**: p1, p5, p50, p95,
p99 of both samples, the share of current values below the reference p1 or above its p99, mean
and std of both, and the mean shift in reference-std units. The KS p-value is informative only:
on millions of rows it flags any shift, so gates default to effect sizes (PSI, normalised
Wasserstein, JS).

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

from rollbackkit.analysis.drift_formulas import (
    bin_shares,
    js_distance,
    ks_pvalue,
    ks_wasserstein,
    psi,
    psi_edges,
    sorted_quantile,
)
from rollbackkit.analysis.series import as_labels, as_series, is_numeric, json_safe

TAILS = {"p1": 0.01, "p5": 0.05, "p50": 0.5, "p95": 0.95, "p99": 0.99}


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
    quantiles = {name: (sorted_quantile(u, q_), sorted_quantile(v, q_)) for name, q_ in TAILS.items()}
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
