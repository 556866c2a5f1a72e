"""Drift over time from binned counts: one metric per time window (and per slice).

The log bins its rows where it lives (SQL in DuckDB or PostgreSQL, numpy beside the store's
input blobs) with the ONE rule of this module (:func:`bin_index`, mirrored in SQL by
:mod:`rollbackkit.serving.predlog.binning`); only counts travel. The reference profile is
binned here the same way, and each window's metric is computed from the two count vectors:

- **Numeric bins**: ``k`` equal-width bins between the reference's 1st and 99th percentile
  (``lo``, ``hi``), plus one bin below ``lo`` and one above ``hi``: ``k + 2`` bins. A value
  ``v`` goes to ``0`` when ``v < lo``, ``k + 1`` when ``v > hi``, else to
  ``1 + min(floor((v - lo) * k / (hi - lo)), k - 1)``. NaN and None are counted as missing,
  never binned; +-inf go to the outer bins.
- **Categorical bins**: the reference's most frequent categories (as text: booleans
  ``true``/``false``, integers in decimal), then one bin for every other value.
- **Metrics**: ``psi`` and ``js`` (:func:`rollbackkit.analysis.drift.psi` and
  :func:`~rollbackkit.analysis.drift.js_distance` on the bin shares), ``wasserstein``
  (Wasserstein-1 between the two binned distributions placed at the bin centres, the outer
  bins half a bin beyond ``lo``/``hi``; as ``scipy.stats.wasserstein_distance`` with weights)
  and ``tail`` (the share of a window's values below the reference p1 or above its p99:
  the two outer bins). A window without a binned value has NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift import js_distance, psi
from rollbackkit.errors import InvalidInput

Metric = Literal["psi", "js", "wasserstein", "tail"]
METRICS: tuple[str, ...] = ("psi", "js", "wasserstein", "tail")
"""The metrics a drift series can show."""

INNER_BINS = 30
"""Equal-width bins between the reference's p1 and p99."""

MAX_CATEGORIES = 30
"""The reference categories kept as bins (the rest share the last, ``(other)``, bin)."""

OTHER = "(other)"
"""The bin of values the reference's categories do not name."""


def category_text(value: Any) -> str:
    """A category as the logs write it in SQL (``CAST(v AS VARCHAR)``): booleans ``true``/``false``,
    integers in decimal, text as it is."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Binning:
    """How a column's values become bins (see the module docstring for the rule)."""

    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    """Numeric: ``k + 1`` equal-width edges from ``lo`` (reference p1) to ``hi`` (reference p99)."""
    categories: tuple[str, ...] = ()
    """Categorical: the reference's categories as text (the last bin, :data:`OTHER`, is implicit)."""

    @property
    def n_bins(self) -> int:
        """How many bins a count vector has."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1

    @property
    def labels(self) -> list[str]:
        """A short label per bin."""
        if self.kind == "categorical":
            return [*self.categories, OTHER]
        e = self.edges
        inner = [f"[{e[i]:.4g}, {e[i + 1]:.4g})" for i in range(len(e) - 1)]
        return [f"< {e[0]:.4g}", *inner, f"> {e[-1]:.4g}"]

    @property
    def centres(self) -> np.ndarray:
        """Numeric: each bin's centre (the outer bins half a bin beyond ``lo`` and ``hi``)."""
        edges = np.asarray(self.edges, dtype="float64")
        width = (edges[-1] - edges[0]) / (len(edges) - 1)
        inner = (edges[:-1] + edges[1:]) / 2
        return np.concatenate([[edges[0] - width / 2], inner, [edges[-1] + width / 2]])


def numeric_binning(reference: Any, bins: int = INNER_BINS) -> Binning:
    """Equal-width bins between the reference's finite p1 and p99 (its min and max when those
    are equal; one unit wide around a constant)."""
    values = np.asarray(pd.Series(reference).to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise InvalidInput("The reference profile holds no finite value of this column.", "Pick another column.")
    lo, hi = (float(x) for x in np.quantile(finite, [0.01, 0.99]))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return Binning("numeric", edges=tuple(float(x) for x in np.linspace(lo, hi, bins + 1)))


def categorical_binning(reference: Any, limit: int = MAX_CATEGORIES) -> Binning:
    """The reference's ``limit`` most frequent categories (as :func:`category_text`)."""
    series = pd.Series(reference).dropna()
    texts = pd.Series([category_text(v) for v in series.tolist()], dtype=object)
    if texts.empty:
        raise InvalidInput("The reference profile holds no value of this column.", "Pick another column.")
    counts = texts.value_counts()
    top = sorted(counts.index[:limit], key=lambda c: (-int(counts[c]), c))
    return Binning("categorical", categories=tuple(top))


def bin_index(values: np.ndarray, binning: Binning) -> np.ndarray:
    """Each value's bin (-1: missing), by the module's rule; what the log's SQL computes too."""
    if binning.kind == "categorical":
        position = {c: k for k, c in enumerate(binning.categories)}
        other = len(binning.categories)
        return np.array([-1 if _missing(v) else position.get(category_text(v), other) for v in values], dtype="int64")
    v = np.asarray(values, dtype="float64")
    lo, hi, k = binning.edges[0], binning.edges[-1], len(binning.edges) - 1
    with np.errstate(invalid="ignore"):
        inner = 1 + np.minimum(np.floor((v - lo) * k / (hi - lo)), k - 1)
        out = np.where(v < lo, 0, np.where(v > hi, k + 1, inner))
    return np.where(np.isnan(v), -1, out).astype("int64")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def bin_counts(values: Any, binning: Binning) -> tuple[np.ndarray, int]:
    """Count vector and missing count of a sample (numpy; the reference side, and a direct check)."""
    series = pd.Series(values)
    if binning.kind == "numeric":
        index = bin_index(series.to_numpy(dtype="float64", na_value=np.nan), binning)
    else:
        index = bin_index(series.astype(object).to_numpy(), binning)
    missing = int((index < 0).sum())
    return np.bincount(index[index >= 0], minlength=binning.n_bins).astype("int64"), missing


def check_metric(metric: str, binning: Binning) -> None:
    """Refuse an unknown metric, or a numeric-only one (``wasserstein``, ``tail``) on categories."""
    if metric not in METRICS:
        raise InvalidInput(f"Unknown drift metric {metric!r}.", f"Use one of: {', '.join(METRICS)}.")
    if metric in ("wasserstein", "tail") and binning.kind != "numeric":
        raise InvalidInput(
            f"The {metric} metric needs a numeric column; this one is categorical.",
            "Use metric='psi' or metric='js' (category shares).",
        )


def metric_value(metric: str, binning: Binning, reference: np.ndarray, counts: np.ndarray) -> float:
    """One window's metric from the reference's and the window's count vectors (NaN when empty)."""
    n, n_ref = float(counts.sum()), float(reference.sum())
    if n == 0 or n_ref == 0:
        return math.nan
    p, q = reference / n_ref, counts / n
    if metric == "psi":
        return psi(p, q)
    if metric == "js":
        return js_distance(p, q)
    check_metric(metric, binning)
    if metric == "tail":
        return float((counts[0] + counts[-1]) / n)
    if metric == "wasserstein":
        return float(np.sum(np.abs(np.cumsum(p) - np.cumsum(q))[:-1] * np.diff(binning.centres)))
    raise InvalidInput(f"Unknown drift metric {metric!r}.", f"Use one of: {', '.join(METRICS)}.")


@dataclass(frozen=True)
class DriftSeries:
    """A drift metric per time window and slice, with the counts it came from.

    ``values[s][w]``, ``n[s][w]`` (binned rows), ``missing[s][w]`` (NaN/None rows, never binned)
    and ``counts[s][w][b]`` are per slice ``s`` of :attr:`slices` (``(all rows)`` without ``by``)
    and window ``w`` of :attr:`windows`; :attr:`reference` holds the reference's counts.
    """

    column: str
    metric: str
    windows: list[tuple[datetime, datetime]]
    slices: list[str]
    values: np.ndarray
    n: np.ndarray
    missing: np.ndarray
    counts: np.ndarray
    reference: np.ndarray
    binning: Binning
    version: str = ""
    by: str | None = None
    threshold: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``numeric`` or ``categorical``."""
        return self.binning.kind

    def frame(self) -> pd.DataFrame:
        """One row per slice and window: ``slice``, ``start``, ``end``, the metric, ``n``, ``missing``."""
        rows = [
            (s, start, end, float(self.values[i, j]), int(self.n[i, j]), int(self.missing[i, j]))
            for i, s in enumerate(self.slices)
            for j, (start, end) in enumerate(self.windows)
        ]
        return pd.DataFrame(rows, columns=["slice", "start", "end", self.metric, "n", "missing"])

    def coarser(self, most_cells: int) -> DriftSeries:
        """The same series in at most ``most_cells`` slice x window cells: adjacent windows merged
        (their counts summed, every metric computed again from the sums; never an average of metrics)."""
        windows = len(self.windows)
        per_slice = max(1, most_cells // max(len(self.slices), 1))
        if windows <= per_slice:
            return self
        step = -(-windows // per_slice)
        groups = [range(k, min(k + step, windows)) for k in range(0, windows, step)]
        counts = np.stack([self.counts[:, list(g)].sum(axis=1) for g in groups], axis=1)
        missing = np.stack([self.missing[:, list(g)].sum(axis=1) for g in groups], axis=1)
        spans = [(self.windows[g[0]][0], self.windows[g[-1]][1]) for g in groups]
        return drift_series(
            self.column, self.metric, self.binning, self.reference, counts, missing, spans, self.slices,
            version=self.version, by=self.by, threshold=self.threshold,
            notes=[*self.notes, f"{windows} windows merged into {len(groups)} to draw"],
        )  # fmt: skip

    def shares(self, slice_: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """The reference's and one cell's bin shares (zeros when the cell is empty)."""
        cell = self.counts[slice_, window].astype("float64")
        ref = self.reference.astype("float64")
        return ref / max(ref.sum(), 1.0), cell / max(cell.sum(), 1.0)


def drift_series(
    column: str,
    metric: str,
    binning: Binning,
    reference: np.ndarray,
    counts: np.ndarray,
    missing: np.ndarray,
    windows: list[tuple[datetime, datetime]],
    slices: list[str],
    **extra: Any,
) -> DriftSeries:
    """The metric of every cell of ``counts`` (``[slice][window][bin]``) against ``reference``."""
    check_metric(metric, binning)
    counts = np.asarray(counts, dtype="int64").reshape(len(slices), len(windows), binning.n_bins)
    values = np.full((len(slices), len(windows)), np.nan)
    for i in range(len(slices)):
        for j in range(len(windows)):
            values[i, j] = metric_value(metric, binning, reference, counts[i, j])
    return DriftSeries(
        column=column,
        metric=metric,
        windows=windows,
        slices=slices,
        values=values,
        n=counts.sum(axis=2),
        missing=np.asarray(missing, dtype="int64").reshape(len(slices), len(windows)),
        counts=counts,
        reference=np.asarray(reference, dtype="int64"),
        binning=binning,
        **extra,
    )
