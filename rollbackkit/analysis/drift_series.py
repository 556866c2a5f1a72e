"""Drift over time from binned counts: one metric per time window (and per slice).

The log bins its rows where it lives (SQL in DuckDB or PostgreSQL, numpy beside the store's
input blobs) with the ONE rule of this module (:func:`bin_index`, mirrored in SQL by
:mod:`rollbackkit.serving.predlog.binning`); only counts (and per-bin sums) travel. The
reference profile is binned here the same way, and each window's metric is computed from them.
The metrics are the drift GATE's (:mod:`rollbackkit.analysis.drift`), on the gate's bins, so a
window's PSI is the PSI the gate would compute on that window's rows:

- **Bins**: :mod:`rollbackkit.analysis.drift_bins` (the reference's deciles, p1, p99 and a few
  equal-width cuts for numbers; the reference's categories plus ``(other)``).
- **Metrics**: ``psi`` and ``js`` as the gate computes them (:func:`~rollbackkit.analysis.drift_formulas.psi`,
  :func:`~rollbackkit.analysis.drift_formulas.js_distance`): numeric bins summed into the gate's decile
  bins; every category on its own, missing values as one more (the gate's own share vectors,
  :func:`~rollbackkit.analysis.drift.category_shares`: the ``(other)`` bin's values are counted
  one by one, ``others``, so a category the reference never saw is its own category, as in the gate;
  or, as the logs send them, ``unseen``: per cell, the rows of the categories the reference never
  saw and the sum of their PSI terms, counted where the log lives: :mod:`rollbackkit.serving.predlog.unseen`).
  ``wasserstein``: Wasserstein-1 between the two binned distributions with each bin's mass at its
  mean (the log's per-bin sum; without sums at the reference's bin mean, which caps the distance a
  far shift can show).
  ``tail``: the share of a window's values below the reference p1 or above its p99.
  A window without a binned value has NaN; one with fewer than :attr:`DriftSeries.min_rows`
  rows is marked low-n (its metric is mostly sampling noise).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift import MISSING_CATEGORY, category_shares
from rollbackkit.analysis.drift_bins import (
    INNER_BINS,
    MAX_CATEGORIES,
    OTHER,
    Binning,
    bin_counts,
    bin_index,
    bin_sums,
    categorical_binning,
    category_text,
    is_missing,
    numeric_binning,
    other_counts,
)
from rollbackkit.analysis.drift_formulas import js_distance, psi
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import InvalidInput

__all__ = [
    "INNER_BINS", "MAX_CATEGORIES", "METRICS", "OTHER", "ROWS_PER_BIN", "Binning", "DriftSeries", "Metric",
    "bin_counts", "bin_index", "bin_sums", "categorical_binning", "category_text", "check_metric", "drift_series",
    "is_missing", "metric_value", "numeric_binning", "other_counts", "psi_shares",
]  # fmt: skip

Metric = Literal["psi", "js", "wasserstein", "tail"]
METRICS: tuple[str, ...] = ("psi", "js", "wasserstein", "tail")
"""The metrics a drift series can show."""

ROWS_PER_BIN = 10
"""A window needs this many rows per PSI bin (:attr:`DriftSeries.min_rows`) not to be marked low-n."""


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
    ref_others: Mapping[str, int] | None = None,
    others: Mapping[str, int] | None = None,
    unseen: tuple[int, float] | None = None,
) -> float:
    """One window's metric from the reference's and the window's counts (NaN when empty); missing
    counts matter to categorical PSI/JS, and so do the :data:`OTHER` bin's values one by one
    (``ref_others``, ``others``: :func:`other_counts`), or ``unseen`` (the rows of the categories
    the reference never saw and the sum of their PSI terms, as the logs count them; ``others`` then
    names only values the reference holds), per-bin sums to Wasserstein (see the module docstring)."""
    check_metric(metric, binning)
    n, n_ref = float(np.sum(counts)), float(np.sum(reference))
    if n == 0 or n_ref == 0:
        return math.nan
    if metric in ("psi", "js") and binning.kind == "categorical":
        rows, terms = unseen or (0, 0.0)
        ref = category_counts(binning, reference, ref_missing, ref_others)
        cur = category_counts(binning, counts, missing, others, rows)
        total = int(sum(cur.values())) + rows
        _, p, q = category_shares(ref, cur, int(sum(ref.values())), total)
        if metric == "psi":
            return psi(p, q) + terms
        return js_distance(np.append(p, 0.0), np.append(q, rows / max(total, 1)))  # p = 0: linear in q
    if metric in ("psi", "js"):
        p, q = psi_shares(binning, reference, ref_missing), psi_shares(binning, counts, missing)
        return psi(p, q) if metric == "psi" else js_distance(p, q)
    if metric == "tail":
        return float((counts[0] + counts[-1]) / n)
    return _wasserstein(binning, reference, counts, ref_sums, sums)


def category_counts(
    binning: Binning, counts: np.ndarray, missing: int = 0, others: Mapping[str, int] | None = None, unseen: int = 0
) -> dict[str, int]:
    """Categorical: rows per category text, as the gate counts them (missing values as
    :data:`~rollbackkit.analysis.drift.MISSING_CATEGORY`): the listed categories, the :data:`OTHER`
    bin's values one by one (``others``), and what neither ``others`` nor ``unseen`` (rows summed
    apart) covers as one :data:`OTHER`."""
    found = {c: int(k) for c, k in zip(binning.categories, counts[:-1], strict=True) if k}
    named = dict(others or {})
    for text, k in named.items():
        found[text] = found.get(text, 0) + int(k)
    rest = int(counts[-1]) - sum(int(k) for k in named.values()) - int(unseen)
    if rest > 0:
        found[OTHER] = found.get(OTHER, 0) + rest
    if missing:
        found[MISSING_CATEGORY] = found.get(MISSING_CATEGORY, 0) + int(missing)
    return found


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
class DriftSeries(HasCard):
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
    others: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    """Categorical: ``(slice, window)``: the :data:`OTHER` bin's rows per value (:func:`other_counts`)."""
    ref_others: list[dict[str, int]] = field(default_factory=list)
    """Categorical: per slice, the reference's :data:`OTHER` bin rows per value."""
    unseen: dict[tuple[int, int], tuple[int, float]] = field(default_factory=dict)
    """Categorical: ``(slice, window)``: the rows of the categories the reference never saw and the
    sum of their PSI terms (as the logs count them; not additive across windows)."""
    regrouper: Callable[[list[range], str], DriftSeries] | None = field(default=None, compare=False, repr=False)
    """Merges windows where the counts live (the log counts the merged windows again: ``unseen``
    sums are not additive); None: merged here."""

    def card(self) -> Card:
        """The worst cells (slice x window) and how many are over the threshold."""
        from rollbackkit.analysis.series_card import drift_series_card

        return drift_series_card(self)

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
        every metric computed again from the sums; never an average of metrics). With ``unseen``
        sums, the log counts the merged windows again (:attr:`regrouper`); without one, those sums
        are added (an unseen category in several windows is then not the gate's: said in the notes)."""
        if self.unseen and self.regrouper is not None:
            return self.regrouper(groups, note)

        def merged(cells: np.ndarray) -> np.ndarray:
            return np.stack([cells[:, list(g)].sum(axis=1) for g in groups], axis=1)

        others: dict[tuple[int, int], dict[str, int]] = {}
        at = {w: k for k, g in enumerate(groups) for w in g}
        for (i, w), values in self.others.items():
            cell = others.setdefault((i, at[w]), {})
            for text, k in values.items():
                cell[text] = cell.get(text, 0) + k
        unseen: dict[tuple[int, int], tuple[int, float]] = {}
        for (i, w), (rows, terms) in self.unseen.items():
            before = unseen.get((i, at[w]), (0, 0.0))
            unseen[(i, at[w])] = (before[0] + rows, before[1] + terms)
        if any(len(g) > 1 for g in groups) and unseen:
            note += "; PSI of unseen categories summed per window (not the gate's on the merged rows)"

        return drift_series(
            self.column, self.metric, self.binning, self.reference, merged(self.counts), merged(self.missing),
            [(self.windows[g[0]][0], self.windows[g[-1]][1]) for g in groups], self.slices,
            version=self.version, by=self.by, threshold=self.threshold, notes=[*self.notes, note],
            ref_missing=self.ref_missing, sums=None if self.sums is None else merged(self.sums),
            ref_sums=self.ref_sums, per_slice_reference=self.per_slice_reference, others=others,
            ref_others=self.ref_others, unseen=unseen,
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
        together), each holding at least :attr:`min_rows` rows per slice on average where the log
        holds enough (a small slice's cells may still be low-n: they are marked)."""
        totals = self.n.sum(axis=0)
        total = int(totals.sum())
        target = max(1, min(most, total // (self.min_rows * len(self.slices))))
        before = np.concatenate([[0], np.cumsum(totals)[:-1]])
        ids = np.minimum(before * target // max(total, 1), target - 1)
        cuts = [0, *(np.flatnonzero(np.diff(ids)) + 1).tolist(), len(totals)]
        groups = [range(a, b) for a, b in itertools.pairwise(cuts)]
        return self.regroup(groups, self._rows_note(groups))

    def _rows_note(self, groups: list[range]) -> str:
        """``24 windows of 51-92 rows (about 70 each; 7 under 70 drawn hollow)``: true of every window."""
        sizes = [int(self.n[:, list(g)].sum()) for g in groups]
        one = len(self.slices) == 1
        low = sum(size < self.min_rows for size in sizes) if one else 0
        hollow = f"{low} under {self.min_rows} drawn hollow" if low else f"none under {self.min_rows}"
        if not one:
            hollow = f"a slice's cells under {self.min_rows} rows drawn hollow"
        spread = f"{min(sizes):,}-{max(sizes):,}" if min(sizes) != max(sizes) else f"{sizes[0]:,}"
        return f"{len(groups)} windows of {spread} rows (about {sum(sizes) // len(groups):,} each; {hollow})"

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
    others: dict[tuple[int, int], dict[str, int]] = extra.pop("others", None) or {}
    ref_others: list[dict[str, int]] = list(extra.pop("ref_others", None) or [])
    ref_others = ref_others if len(ref_others) == shape[0] else [ref_others[0] if ref_others else {}] * shape[0]
    unseen: dict[tuple[int, int], tuple[int, float]] = extra.pop("unseen", None) or {}
    values = np.full(shape[:2], np.nan)
    for i in range(shape[0]):
        for j in range(shape[1]):
            values[i, j] = metric_value(
                metric, binning, reference[i], counts[i, j], ref_missing=int(ref_missing[i]),
                missing=int(missing[i, j]), ref_sums=None if ref_sums is None else ref_sums[i],
                sums=None if sums is None else sums[i, j], ref_others=ref_others[i], others=others.get((i, j)),
                unseen=unseen.get((i, j)),
            )  # fmt: skip
    return DriftSeries(
        column=column, metric=metric, windows=windows, slices=slices, values=values, n=counts.sum(axis=2),
        missing=missing, counts=counts, reference=reference, binning=binning, ref_missing=ref_missing,
        sums=sums, ref_sums=ref_sums, others=others, ref_others=ref_others, unseen=unseen, **extra,
    )  # fmt: skip
