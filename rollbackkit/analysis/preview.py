"""What a rollback would change, computed on two versions' answers to the same rows (pure numpy/pandas).

``before`` is what the version serving now answered (its logged outputs), ``after`` what the
rollback target answers for the same inputs. A *decision* is a classifier's predicted class,
or a regressor's prediction compared with a decision threshold; it *flips* when the two
versions decide differently. Two missing decisions are the same decision; a missing one
beside a present one is a flip. Score deltas are ``after - before`` of the primary output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rollbackkit.errors import InvalidInput

MISSING = "(missing)"
"""The slice of rows whose slice value is missing."""

OTHER = "(other)"
"""The slice that gathers the rarest values past :data:`MAX_SLICES`."""

MAX_SLICES = 30
"""Slices shown at most (the most frequent values; the rest are :data:`OTHER`)."""


@dataclass(frozen=True)
class SliceDelta:
    """One slice's share of flipped decisions and its score deltas.

    Attributes:
        slice: The slice value (as text), ``"all"`` for every row.
        n: Rows in the slice.
        flips: Rows whose decision flips (None without decisions).
        flip_share: ``flips / n`` (None without decisions).
        mean: Mean of ``after - before`` of the primary output (None when it is not numeric).
        p5: Its 5th percentile.
        p95: Its 95th percentile.
    """

    slice: str
    n: int
    flips: int | None
    flip_share: float | None
    mean: float | None
    p5: float | None
    p95: float | None


@dataclass(frozen=True)
class Transition:
    """How many rows go from decision ``before`` to decision ``after``."""

    before: str
    after: str
    rows: int


def _keys(values: pd.Series | np.ndarray | list[object]) -> np.ndarray:
    """Decisions as comparable text: ``True``, ``1``, ``"yes"``; None for a missing one."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    out = np.empty(len(series), dtype=object)
    missing = pd.isna(series).to_numpy()
    for i, value in enumerate(series.to_numpy()):
        if missing[i]:
            out[i] = None
        elif isinstance(value, bool | np.bool_):
            out[i] = str(bool(value))
        elif isinstance(value, int | np.integer):
            out[i] = str(int(value))
        elif isinstance(value, float | np.floating) and float(value).is_integer():
            out[i] = str(int(value))  # an integer label read back as a float (a log column with gaps)
        else:
            out[i] = str(value)
    return out


def flipped(before: pd.Series | np.ndarray | list[object], after: pd.Series | np.ndarray | list[object]) -> np.ndarray:
    """Per row, whether the decision differs (booleans; see the module for missing decisions).

    Raises:
        InvalidInput: The two have different lengths.
    """
    if len(before) != len(after):
        raise InvalidInput(
            f"Cannot compare {len(before)} decisions with {len(after)}.",
            "Pass both versions' answers to the same rows.",
        )
    a, b = _keys(before), _keys(after)
    return np.fromiter((x != y for x, y in zip(a, b, strict=True)), dtype=bool, count=len(a))


def flip_share(
    before: pd.Series | np.ndarray | list[object], after: pd.Series | np.ndarray | list[object]
) -> float | None:
    """The share of rows whose decision differs between ``before`` and ``after`` (None without rows)."""
    flips = flipped(before, after)
    return float(flips.mean()) if len(flips) else None


def decisions(primary: pd.Series, threshold: float) -> pd.Series:
    """Decisions at a threshold on a score: ``"> t"`` or ``"<= t"`` (missing where the score is)."""
    values = pd.to_numeric(primary, errors="coerce").astype("float64")
    above = np.where(values > threshold, f"> {threshold:g}", f"<= {threshold:g}").astype(object)
    above[values.isna().to_numpy()] = None
    return pd.Series(above, index=primary.index, dtype=object)


def transitions(
    before: pd.Series | np.ndarray | list[object], after: pd.Series | np.ndarray | list[object], top: int = 10
) -> list[Transition]:
    """The most frequent flips (``before -> after`` with their row counts), most rows first."""
    a, b = _keys(before), _keys(after)
    moved = pd.DataFrame({"before": a, "after": b})[flipped(before, after)].fillna(MISSING)
    if moved.empty:
        return []
    counts = moved.value_counts().head(top)
    return [Transition(str(x), str(y), int(n)) for (x, y), n in counts.items()]


def slice_labels(values: pd.Series, limit: int = MAX_SLICES) -> pd.Series:
    """Slice values as text: missing ones :data:`MISSING`, past the ``limit`` most frequent :data:`OTHER`."""
    text = pd.Series(_keys(values), index=values.index, dtype=object).fillna(MISSING)
    keep = set(text.value_counts().head(limit).index)
    return text.where(text.isin(keep), OTHER)


def deltas_by_slice(
    before: pd.Series | None,
    after: pd.Series | None,
    flips: np.ndarray | None,
    by: pd.Series | None = None,
) -> list[SliceDelta]:
    """Flip share and score deltas for every row (``"all"`` first), then per slice, largest first.

    Args:
        before: The serving version's primary output (None when it is not numeric).
        after: The target's primary output for the same rows (None likewise).
        flips: :func:`flipped` per row (None without decisions, e.g. a regressor with no threshold).
        by: The slice value per row (None: only ``"all"``).

    Raises:
        InvalidInput: The arrays have different lengths.
    """
    sizes = {len(x) for x in (before, after, flips, by) if x is not None}
    if len(sizes) > 1:
        raise InvalidInput("The rows to compare have different lengths.", "Pass every array for the same rows.")
    delta = None
    if before is not None and after is not None:
        delta = pd.to_numeric(after, errors="coerce").to_numpy(dtype="float64", na_value=np.nan) - pd.to_numeric(
            before, errors="coerce"
        ).to_numpy(dtype="float64", na_value=np.nan)
    n = sizes.pop() if sizes else 0
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(n, dtype=bool))]
    if by is not None:
        labels = slice_labels(by.reset_index(drop=True))
        order = labels.value_counts()
        groups += [(str(value), (labels == value).to_numpy()) for value in order.index]
    return [_summary(name, mask, delta, flips) for name, mask in groups]


def _summary(name: str, mask: np.ndarray, delta: np.ndarray | None, flips: np.ndarray | None) -> SliceDelta:
    rows = int(mask.sum())
    changed = int(flips[mask].sum()) if flips is not None else None
    share = changed / rows if changed is not None and rows else None
    mean = p5 = p95 = None
    if delta is not None:
        values = delta[mask]
        values = values[np.isfinite(values)]
        if values.size:
            mean, (p5, p95) = float(values.mean()), (float(q) for q in np.quantile(values, [0.05, 0.95]))
    return SliceDelta(name, rows, changed, share, mean, p5, p95)
