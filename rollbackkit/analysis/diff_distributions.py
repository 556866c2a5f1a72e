"""Two versions' reference distributions of one feature, binned side by side (numpy, no plotting).

Numeric features share equal-width edges (:func:`rollbackkit.analysis.histogram.shared_histogram`);
categorical ones share their most frequent categories (the rest is ``(other)``), missing values
are counted apart. ±inf are out of any bin's range: counted apart too (``infinite``), never as
missing; the bins' shares are of the finite values. A constant feature is one bin labelled with
its value. Any number of reference rows becomes a few dozen numbers per version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from rollbackkit.analysis.histogram import shared_histogram
from rollbackkit.analysis.slices import OTHER, top_values
from rollbackkit.cards import number

BINS = 20
TOP_CATEGORIES = 15


@dataclass(frozen=True)
class FeatureDistributions:
    """One feature in versions ``a`` and ``b``: shares per bin (``labels``), and missing shares.

    Attributes:
        name: The feature.
        kind: ``numeric`` (``labels`` are bin centres as text) or ``categorical``.
        labels: One label per bin.
        centres: Bin centres (numeric) or positions (categorical), for plotting.
        a: Share of ``a``'s non-missing (numeric: finite) values in each bin.
        b: Share of ``b``'s non-missing (numeric: finite) values in each bin.
        missing: Share of rows missing (NaN, None, NA) in ``a`` and in ``b``.
        rows: Reference rows in ``a`` and in ``b``.
        infinite: Share of rows that are +inf or -inf in ``a`` and in ``b`` (numeric only).
    """

    name: str
    kind: Literal["numeric", "categorical"]
    labels: list[str]
    centres: list[float]
    a: list[float]
    b: list[float]
    missing: tuple[float, float]
    rows: tuple[int, int]
    infinite: tuple[float, float] = (0.0, 0.0)


def side_by_side(name: str, a: pd.Series, b: pd.Series, bins: int = BINS) -> FeatureDistributions | None:
    """Bin one feature's reference values of two versions on shared bins (None: no value in either)."""
    missing = (_missing_share(a), _missing_share(b))
    rows = (len(a), len(b))
    if _numeric(a) and _numeric(b):
        fa, fb = _floats(a), _floats(b)
        infinite = (_infinite_share(fa), _infinite_share(fb))
        finite = np.concatenate([fa[np.isfinite(fa)], fb[np.isfinite(fb)]])
        if finite.size and finite.min() == finite.max():  # a constant: one bin, its value
            value = float(finite[0])
            shares = [[1.0 if np.isfinite(f).any() else 0.0] for f in (fa, fb)]
            return FeatureDistributions(
                name, "numeric", [number(value)], [value], shares[0], shares[1], missing, rows, infinite
            )
        shared = shared_histogram([fa, fb], bins)
        if shared is None:
            return None
        centres = (shared.edges[:-1] + shared.edges[1:]) / 2
        return FeatureDistributions(
            name,
            "numeric",
            [number(float(c)) for c in centres],
            centres.tolist(),
            shared.shares[0].tolist(),
            shared.shares[1].tolist(),
            missing,
            rows,
            infinite,
        )
    sa, sb = a.dropna().astype(str), b.dropna().astype(str)
    if sa.empty and sb.empty:
        return None
    counts = pd.concat([sa, sb]).value_counts()
    top = top_values(counts, TOP_CATEGORIES)
    labels = top + ([OTHER] if len(counts) > len(top) else [])
    return FeatureDistributions(
        name,
        "categorical",
        [str(x) for x in labels],
        [float(i) for i in range(len(labels))],
        _category_shares(sa, top, len(labels)),
        _category_shares(sb, top, len(labels)),
        missing,
        rows,
    )


def _numeric(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s.dtype)) and not pd.api.types.is_bool_dtype(s.dtype)


def _floats(s: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan))


def _infinite_share(values: np.ndarray) -> float:
    return float(np.isinf(values).mean()) if values.size else 0.0


def _missing_share(s: pd.Series) -> float:
    return float(s.isna().mean()) if len(s) else 0.0


def _category_shares(values: pd.Series, top: list[str], n: int) -> list[float]:
    if values.empty:
        return [0.0] * n
    counts = values.value_counts()
    shares = [float(counts.get(c, 0)) / len(values) for c in top]
    if n > len(top):
        shares.append(max(0.0, 1.0 - sum(shares)))
    return shares
