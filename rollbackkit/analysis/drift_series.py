"""Drift over time from binned counts: one metric per time window (and per slice).

The log bins its rows where it lives (SQL in DuckDB or PostgreSQL, numpy beside the store's
input blobs) with the ONE rule of this module (:func:`bin_index`, mirrored in SQL by
:mod:`rollbackkit.serving.predlog.binning`); only counts (and per-bin sums) travel. The
reference profile is binned here the same way, and each window's metric is computed from them.
The metrics are the drift GATE's (:mod:`rollbackkit.analysis.drift`), on the gate's bins, so a
window's PSI is the PSI the gate would compute on that window's rows:

- **Numeric bins** are right-inclusive, ``(-inf, e0], (e0, e1], ..., (e_last, inf)``: a value
  goes to the number of edges below it. The edges are the reference's deciles (the gate's PSI
  edges, :func:`rollbackkit.analysis.drift.psi_edges`), its p99, the float just below its p1
  (so the outer bins hold exactly the values below p1 and above p99), and a few equal-width
  cuts between p1 and p99 for the histogram and Wasserstein. NaN and None are counted as
  missing, never binned; +-inf go to the outer bins.
- **Categorical bins**: the reference's categories (up to :data:`MAX_CATEGORIES`, as text:
  booleans ``true``/``false``, integers in decimal), then one bin for every other value.
- **Metrics**: ``psi`` and ``js`` as the gate computes them (:func:`~rollbackkit.analysis.drift.psi`,
  :func:`~rollbackkit.analysis.drift.js_distance`): numeric bins summed into the gate's decile
  bins; categories with missing values as one more category (as the gate counts them; a new
  category unseen in the reference shares the ``(other)`` bin). ``wasserstein``: Wasserstein-1
  between the two binned distributions with each bin's mass at its mean (the log's per-bin sum;
  without sums at the reference's bin mean, which caps the distance a far shift can show).
  ``tail``: the share of a window's values below the reference p1 or above its p99.
  A window without a binned value has NaN; one with fewer than :attr:`DriftSeries.min_rows`
  rows is marked low-n (its metric is mostly sampling noise).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift import PSI_BINS, js_distance, psi, psi_edges
from rollbackkit.errors import InvalidInput

Metric = Literal["psi", "js", "wasserstein", "tail"]
METRICS: tuple[str, ...] = ("psi", "js", "wasserstein", "tail")
"""The metrics a drift series can show."""

INNER_BINS = 10
"""Equal-width cuts between the reference's p1 and p99 (added to the gate's decile edges)."""

MAX_CATEGORIES = 250
"""The reference categories kept as bins (the rest share the last, ``(other)``, bin)."""

ROWS_PER_BIN = 10
"""A window needs this many rows per PSI bin (:attr:`DriftSeries.min_rows`) not to be marked low-n."""

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


def is_missing(value: Any) -> bool:
    """None, ``pd.NA`` or a float NaN: a value the logs count as missing, never binned."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Binning:
    """How a column's values become bins (see the module docstring for the rule)."""

    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    """Numeric: increasing edges of right-inclusive bins (``len(edges) + 1`` bins)."""
    categories: tuple[str, ...] = ()
    """Categorical: the reference's categories as text (the last bin, :data:`OTHER`, is implicit)."""
    psi_edges: tuple[float, ...] = ()
    """Numeric: the gate's PSI edges (reference deciles), each one of :attr:`edges` (empty: every edge)."""

    @property
    def n_bins(self) -> int:
        """How many bins a count vector has."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1

    @property
    def psi_groups(self) -> np.ndarray:
        """Each bin's PSI bin (numeric: the gate's decile bin holding it; categorical: itself)."""
        if self.kind == "categorical" or not self.psi_edges:
            return np.arange(self.n_bins)
        upper = np.append(np.asarray(self.edges, dtype="float64"), np.inf)
        return np.searchsorted(np.asarray(self.psi_edges, dtype="float64"), upper, side="left")

    @property
    def psi_bins(self) -> int:
        """Bins the PSI is computed on (categorical: with missing as one more category)."""
        return int(self.psi_groups.max()) + 1 + (self.kind == "categorical")

    @property
    def labels(self) -> list[str]:
        """A short label per bin."""
        if self.kind == "categorical":
            return [*self.categories, OTHER]
        e = self.edges
        inner = [f"({e[i]:.3g}, {e[i + 1]:.3g}]" for i in range(len(e) - 1)]
        return [f"≤ {e[0]:.3g}", *inner, f"> {e[-1]:.3g}"]

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Numeric: each bin's drawn span (the outer bins one median inner width wide)."""
        edges = np.asarray(self.edges, dtype="float64")
        width = float(np.median(np.diff(edges))) if edges.size > 1 else 1.0
        return np.concatenate([[edges[0] - width], edges]), np.concatenate([edges, [edges[-1] + width]])

    @property
    def centres(self) -> np.ndarray:
        """Numeric: each bin's centre (of :attr:`bounds`)."""
        lower, upper = self.bounds
        return (lower + upper) / 2


def numeric_binning(reference: Any, bins: int = INNER_BINS) -> Binning:
    """The gate's decile edges of the reference's finite values, plus its p1 (the float below) and
    p99 and ``bins`` equal-width cuts between them (see the module docstring)."""
    values = np.asarray(pd.Series(reference).to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    finite = np.sort(values[np.isfinite(values)])
    if not finite.size:
        raise InvalidInput("The reference profile holds no finite value of this column.", "Pick another column.")
    deciles = psi_edges(finite, PSI_BINS)
    lo, hi = (float(x) for x in np.quantile(finite, [0.01, 0.99]))
    grid = np.linspace(lo, hi, bins + 1)[1:-1] if hi > lo else np.array([])
    edges = np.unique(np.concatenate([[np.nextafter(lo, -np.inf), hi], deciles, grid]))
    return Binning("numeric", edges=tuple(map(float, edges)), psi_edges=tuple(map(float, deciles)))


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
        return np.array([-1 if is_missing(v) else position.get(category_text(v), other) for v in values], dtype="int64")
    v = np.asarray(values, dtype="float64")
    index = np.searchsorted(np.asarray(binning.edges, dtype="float64"), v, side="left")
    return np.where(np.isnan(v), -1, index).astype("int64")


def _values(values: Any, binning: Binning) -> np.ndarray:
    series = pd.Series(values)
    if binning.kind == "numeric":
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return series.astype(object).to_numpy()


def bin_counts(values: Any, binning: Binning) -> tuple[np.ndarray, int]:
    """Count vector and missing count of a sample (numpy; the reference side, and a direct check)."""
    index = bin_index(_values(values, binning), binning)
    missing = int((index < 0).sum())
    return np.bincount(index[index >= 0], minlength=binning.n_bins).astype("int64"), missing


def bin_sums(values: Any, binning: Binning) -> np.ndarray:
    """Numeric: the sum of a sample's finite values per bin (where each bin's mass sits: sum / count)."""
    v = _values(values, binning)
    index = bin_index(v, binning)
    keep = np.isfinite(v)
    return np.bincount(index[keep], weights=v[keep], minlength=binning.n_bins)


def check_metric(metric: str, binning: Binning) -> None:
    """Refuse an unknown metric, or a numeric-only one (``wasserstein``, ``tail``) on categories."""
    if metric not in METRICS:
        raise InvalidInput(f"Unknown drift metric {metric!r}.", f"Use one of: {', '.join(METRICS)}.")
    if metric in ("wasserstein", "tail") and binning.kind != "numeric":
        raise InvalidInput(
            f"The {metric} metric needs a numeric column; this one is categorical.",
            "Use metric='psi' or metric='js' (category shares).",
        )


def psi_shares(binning: Binning, counts: np.ndarray, missing: int = 0) -> np.ndarray:
    """The shares the gate's PSI/JS compare: numeric bins summed into its decile bins; categories
    with missing values as one more category."""
    grouped = np.bincount(binning.psi_groups, weights=np.asarray(counts, dtype="float64"))
    if binning.kind == "categorical":
        grouped = np.append(grouped, float(missing))
    return grouped / max(grouped.sum(), 1.0)


def metric_value(
    metric: str,
    binning: Binning,
    reference: np.ndarray,
    counts: np.ndarray,
    *,
    ref_missing: int = 0,
    missing: int = 0,
    ref_sums: np.ndarray | None = None,
    sums: np.ndarray | None = None,
) -> float:
    """One window's metric from the reference's and the window's counts (NaN when empty); missing
    counts matter to categorical PSI/JS, per-bin sums to Wasserstein (see the module docstring)."""
    check_metric(metric, binning)
    n, n_ref = float(np.sum(counts)), float(np.sum(reference))
    if n == 0 or n_ref == 0:
        return math.nan
    if metric in ("psi", "js"):
        p, q = psi_shares(binning, reference, ref_missing), psi_shares(binning, counts, missing)
        return psi(p, q) if metric == "psi" else js_distance(p, q)
    if metric == "tail":
        return float((counts[0] + counts[-1]) / n)
    return _wasserstein(binning, reference, counts, ref_sums, sums)


def _wasserstein(
    binning: Binning, reference: np.ndarray, counts: np.ndarray, ref_sums: np.ndarray | None, sums: np.ndarray | None
) -> float:
    """W1 of the two binned distributions, each bin's mass at its mean (else at the reference's)."""
    ref, cur = np.asarray(reference, dtype="float64"), np.asarray(counts, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        at_ref = binning.centres if ref_sums is None else np.where(ref > 0, ref_sums / ref, binning.centres)
        at_cur = at_ref if sums is None else np.where(cur > 0, np.asarray(sums, dtype="float64") / cur, at_ref)
    at_cur = np.where(np.isfinite(at_cur), at_cur, at_ref)
    x = np.concatenate([at_ref, at_cur])
    mass = np.concatenate([ref / ref.sum(), -cur / cur.sum()])
    order = np.argsort(x, kind="stable")
    return float(np.sum(np.abs(np.cumsum(mass[order])[:-1]) * np.diff(x[order])))


@dataclass(frozen=True)
class DriftSeries:
    """A drift metric per time window and slice, with the counts it came from.

    ``values[s][w]``, ``n[s][w]`` (binned rows), ``missing[s][w]`` (NaN/None rows, never binned),
    ``counts[s][w][b]`` and ``sums[s][w][b]`` (numeric, when the log sends them) are per slice ``s``
    of :attr:`slices` (``(all rows)`` without ``by``) and window ``w`` of :attr:`windows` (UTC);
    ``reference[s]`` (and ``ref_missing[s]``, ``ref_sums[s]``) is what slice ``s`` is compared with:
    the same slice of the reference when :attr:`per_slice_reference`, else the whole reference.
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
    ref_missing: np.ndarray | None = None
    sums: np.ndarray | None = None
    ref_sums: np.ndarray | None = None
    per_slice_reference: bool = False

    @property
    def kind(self) -> str:
        """``numeric`` or ``categorical``."""
        return self.binning.kind

    @property
    def min_rows(self) -> int:
        """Rows a cell needs not to be low-n: :data:`ROWS_PER_BIN` per PSI bin (100 for deciles)."""
        return ROWS_PER_BIN * self.binning.psi_bins

    @property
    def low_n(self) -> np.ndarray:
        """``[s][w]``: cells with fewer than :attr:`min_rows` binned rows (their metric is mostly noise)."""
        return self.n < self.min_rows

    @property
    def compared_with(self) -> str:
        """What each slice is compared with, in words."""
        return "the same slice of the reference" if self.per_slice_reference else "the whole reference"

    def frame(self) -> pd.DataFrame:
        """One row per slice and window: ``slice``, ``start``, ``end``, the metric, ``n``, ``missing``, ``low_n``."""
        rows = [
            (
                s,
                start,
                end,
                float(self.values[i, j]),
                int(self.n[i, j]),
                int(self.missing[i, j]),
                bool(self.low_n[i, j]),
            )
            for i, s in enumerate(self.slices)
            for j, (start, end) in enumerate(self.windows)
        ]
        return pd.DataFrame(rows, columns=["slice", "start", "end", self.metric, "n", "missing", "low_n"])

    def regroup(self, groups: list[range], note: str) -> DriftSeries:
        """The series with each run of adjacent windows in ``groups`` merged (counts and sums summed,
        every metric computed again from the sums; never an average of metrics)."""

        def merged(cells: np.ndarray) -> np.ndarray:
            return np.stack([cells[:, list(g)].sum(axis=1) for g in groups], axis=1)

        return drift_series(
            self.column, self.metric, self.binning, self.reference, merged(self.counts), merged(self.missing),
            [(self.windows[g[0]][0], self.windows[g[-1]][1]) for g in groups], self.slices,
            version=self.version, by=self.by, threshold=self.threshold, notes=[*self.notes, note],
            ref_missing=self.ref_missing, sums=None if self.sums is None else merged(self.sums),
            ref_sums=self.ref_sums, per_slice_reference=self.per_slice_reference,
        )  # fmt: skip

    def coarser(self, most_cells: int) -> DriftSeries:
        """The same series in at most ``most_cells`` slice x window cells (adjacent windows merged)."""
        windows = len(self.windows)
        per_slice = max(1, most_cells // max(len(self.slices), 1))
        if windows <= per_slice:
            return self
        step = -(-windows // per_slice)
        groups = [range(k, min(k + step, windows)) for k in range(0, windows, step)]
        return self.regroup(groups, f"{windows} windows merged into {len(groups)} to draw")

    def by_rows(self, most: int) -> DriftSeries:
        """Adjacent windows merged into at most ``most`` windows of about equal row counts (all slices
        together), each holding at least :attr:`min_rows` rows where the log holds enough."""
        totals = self.n.sum(axis=0)
        total = int(totals.sum())
        target = max(1, min(most, total // self.min_rows))
        before = np.concatenate([[0], np.cumsum(totals)[:-1]])
        ids = np.minimum(before * target // max(total, 1), target - 1)
        cuts = [0, *(np.flatnonzero(np.diff(ids)) + 1).tolist(), len(totals)]
        groups = [range(a, b) for a, b in itertools.pairwise(cuts)]
        note = f"{len(groups)} windows of about {total // len(groups):,} rows each (at least {self.min_rows} wanted)"
        return self.regroup(groups, note)

    def shares(self, slice_: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``slice_``'s reference and one cell's bin shares (zeros when the cell is empty)."""
        cell = self.counts[slice_, window].astype("float64")
        ref = self.reference[slice_].astype("float64")
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
    """The metric of every cell of ``counts`` (``[slice][window][bin]``) against ``reference``
    (one count vector for every slice, or one per slice ``[slice][bin]``)."""
    check_metric(metric, binning)
    shape = (len(slices), len(windows), binning.n_bins)
    counts = np.asarray(counts, dtype="int64").reshape(shape)
    missing = np.asarray(missing, dtype="int64").reshape(shape[:2])
    reference = np.array(np.broadcast_to(np.asarray(reference, dtype="int64"), (shape[0], shape[2])))
    ref_missing = extra.pop("ref_missing", None)
    ref_missing = np.broadcast_to(np.asarray(0 if ref_missing is None else ref_missing, "int64"), shape[:1]).copy()
    sums = extra.pop("sums", None)
    sums = None if sums is None else np.asarray(sums, dtype="float64").reshape(shape)
    ref_sums = extra.pop("ref_sums", None)
    ref_sums = None if ref_sums is None else np.array(np.broadcast_to(np.asarray(ref_sums, "float64"), reference.shape))
    values = np.full(shape[:2], np.nan)
    for i in range(shape[0]):
        for j in range(shape[1]):
            values[i, j] = metric_value(
                metric, binning, reference[i], counts[i, j], ref_missing=int(ref_missing[i]),
                missing=int(missing[i, j]), ref_sums=None if ref_sums is None else ref_sums[i],
                sums=None if sums is None else sums[i, j],
            )  # fmt: skip
    return DriftSeries(
        column=column, metric=metric, windows=windows, slices=slices, values=values, n=counts.sum(axis=2),
        missing=missing, counts=counts, reference=reference, binning=binning, ref_missing=ref_missing,
        sums=sums, ref_sums=ref_sums, **extra,
    )  # fmt: skip
