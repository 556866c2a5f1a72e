"""How a logged column's values become bins: the ONE rule both logs and the reference follow.

The log bins its rows where it lives (SQL in DuckDB or PostgreSQL, mirrored by
:func:`rollbackkit.serving.predlog.binning.bin_sql`; numpy beside the store's input blobs) with
:func:`bin_index`; the reference profile is binned here the same way.

- **Numeric bins** are right-inclusive, ``(-inf, e0], (e0, e1], ..., (e_last, inf)``: a value
  goes to the number of edges below it. The edges are the reference's deciles (the drift gate's
  PSI edges, :func:`rollbackkit.analysis.drift_formulas.psi_edges`), its p99, the float just below its p1
  (so the outer bins hold exactly the values below p1 and above p99), and a few equal-width cuts
  between p1 and p99 (those at least half a cut's width from the other edges: no sliver bins).
  NaN and None are counted as missing, never binned; +-inf go to the outer bins.
- **Categorical bins**: the reference's categories (up to :data:`MAX_CATEGORIES`, as text:
  booleans ``True``/``False``, integers in decimal), then one bin, :data:`OTHER`, for every other value.
  The :data:`OTHER` bin's values are also counted one by one (:func:`other_counts`), so the drift
  series' PSI and JS count every category on its own, as the gate does
  (:func:`rollbackkit.analysis.drift.category_shares`): a category the reference never saw is never
  merged with another one. The logs send the reference's own :data:`OTHER` values as ``others`` and
  sum the terms of the ones it never saw where they count (``unseen``:
  :mod:`rollbackkit.serving.predlog.unseen`, from :func:`rollbackkit.analysis.drift_formulas.psi_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift_formulas import PSI_BINS, psi_edges
from rollbackkit.analysis.series import label_text
from rollbackkit.analysis.slices import OTHER as SLICE_OTHER
from rollbackkit.analysis.slices import top_values
from rollbackkit.errors import InvalidInput

INNER_BINS = 10
"""Equal-width cuts between the reference's p1 and p99 (added to the gate's decile edges)."""

MAX_CATEGORIES = 250
"""The reference categories kept as bins (the rest share the last, ``(other)``, bin)."""

OTHER = SLICE_OTHER
"""The bin of values the reference's categories do not name (named as :data:`rollbackkit.analysis.slices.OTHER`)."""


def category_text(value: Any) -> str:
    """A category as text: the labels' one spelling (:func:`~rollbackkit.analysis.series.label_text`:
    booleans ``True``/``False``, integers in decimal, text as it is), as the logs' SQL writes it too
    (:func:`~rollbackkit.serving.predlog.binning.label_sql`)."""
    return label_text(value)


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

    def spans(self, counts: np.ndarray, sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Numeric: each bin's drawn span for one sample: :attr:`bounds`, with an outer bin stretched
        outwards until its centre is the sample's mean there (``sums / counts``), so values far below
        the reference's p1 or above its p99 are drawn where they are (no sums: :attr:`bounds`)."""
        lower, upper = (bound.copy() for bound in self.bounds)
        if sums is None:
            return lower, upper
        counts, sums = np.asarray(counts, dtype="float64"), np.asarray(sums, dtype="float64")
        if counts[0] > 0 and np.isfinite(sums[0]):
            lower[0] = min(lower[0], 2 * sums[0] / counts[0] - upper[0])
        if counts[-1] > 0 and np.isfinite(sums[-1]):
            upper[-1] = max(upper[-1], 2 * sums[-1] / counts[-1] - lower[-1])
        return lower, upper

    @property
    def centres(self) -> np.ndarray:
        """Numeric: each bin's centre (of :attr:`bounds`)."""
        lower, upper = self.bounds
        return (lower + upper) / 2


def numeric_binning(reference: Any, bins: int = INNER_BINS) -> Binning:
    """The gate's decile edges of the reference's finite values, plus its p1 (the float below) and
    p99 and the ``bins - 1`` equal-width cuts between them that are not within half a cut of those
    (see the module docstring)."""
    values = np.asarray(pd.Series(reference).to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    finite = np.sort(values[np.isfinite(values)])
    if not finite.size:
        raise InvalidInput("The reference profile holds no finite value of this column.", "Pick another column.")
    deciles = psi_edges(finite, PSI_BINS)
    lo, hi = (float(x) for x in np.quantile(finite, [0.01, 0.99]))
    grid = np.linspace(lo, hi, bins + 1)[1:-1] if hi > lo else np.array([])
    kept = np.concatenate([[lo, hi], deciles])
    apart = np.abs(grid[:, None] - kept[None, :]).min(axis=1, initial=np.inf) >= (hi - lo) / max(bins, 1) / 2
    below = float(np.nextafter(lo, -np.inf))
    below = -np.finfo("float64").tiny if lo == 0 else below  # no subnormal edge: PostgreSQL may refuse it
    edges = np.unique(np.concatenate([[below, hi], deciles, grid[apart]]))
    return Binning("numeric", edges=tuple(map(float, edges)), psi_edges=tuple(map(float, deciles)))


def categorical_binning(reference: Any, limit: int = MAX_CATEGORIES) -> Binning:
    """The reference's ``limit`` most frequent categories (as :func:`category_text`)."""
    series = pd.Series(reference).dropna()
    texts = pd.Series([category_text(v) for v in series.tolist()], dtype=object)
    if texts.empty:
        raise InvalidInput("The reference profile holds no value of this column.", "Pick another column.")
    return Binning("categorical", categories=tuple(top_values(texts.value_counts(), limit)))


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


def other_counts(values: Any, binning: Binning) -> dict[str, int]:
    """Categorical: the rows of each value in the :data:`OTHER` bin, by its text (a category the
    reference never saw, or one past its :data:`MAX_CATEGORIES`): what the PSI counts on its own."""
    listed = set(binning.categories)
    texts = [category_text(v) for v in _values(values, binning) if not is_missing(v)]
    found = pd.Series([t for t in texts if t not in listed], dtype=object).value_counts()
    return {str(k): int(n) for k, n in found.items()}
