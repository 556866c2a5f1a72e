"""What a rollback would change, computed on two versions' answers to the same rows (pure numpy/pandas).

``before`` is what the version serving now answered (its logged outputs), ``after`` what the
rollback target answers for the same inputs. A *decision* is a classifier's predicted class,
or a regressor's prediction compared with a decision threshold; it *flips* when the two
versions decide differently. Two missing decisions are the same decision; a missing one
beside a present one is counted apart (``missing``), neither a flip nor in the flip share's
denominator. Decisions are compared only when both versions have the same class set
(:func:`class_mismatch`); score deltas are ``after - before`` of a numeric score both versions
output (:func:`score_column`), never of class ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rollbackkit.analysis.series import label_text
from rollbackkit.analysis.slices import MISSING, OTHER, top_values
from rollbackkit.errors import InvalidInput

Answers = pd.Series | np.ndarray | list[object]
"""One version's decisions for a set of rows."""

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
        missing: Rows where one version decided and the other did not (not counted as flips).
    """

    slice: str
    n: int
    flips: int | None
    flip_share: float | None
    mean: float | None
    p5: float | None
    p95: float | None
    missing: int = 0


@dataclass(frozen=True)
class Transition:
    """How many rows go from decision ``before`` to decision ``after``."""

    before: str
    after: str
    rows: int


def _keys(values: pd.Series | np.ndarray | list[object]) -> np.ndarray:
    """Decisions as comparable text by the labels' one spelling (:func:`~rollbackkit.analysis.series.label_text`:
    ``True``, ``1`` for ``1.0``, ``"yes"``); None for a missing one."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    missing = pd.isna(series).to_numpy()
    texts = [None if gone else label_text(v) for v, gone in zip(series.to_numpy(), missing, strict=True)]
    return np.array(texts, dtype=object)


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
    return np.fromiter(
        (x is not None and y is not None and x != y for x, y in zip(a, b, strict=True)), dtype=bool, count=len(a)
    )


def one_sided(
    before: pd.Series | np.ndarray | list[object], after: pd.Series | np.ndarray | list[object]
) -> np.ndarray:
    """Per row, whether exactly one of the two versions has no decision."""
    a, b = pd.isna(pd.Series(_keys(before), dtype=object)), pd.isna(pd.Series(_keys(after), dtype=object))
    return (a != b).to_numpy()


def flip_share(
    before: pd.Series | np.ndarray | list[object], after: pd.Series | np.ndarray | list[object]
) -> float | None:
    """The share of flipped decisions among rows where both or neither decided (None without such rows)."""
    flips, missing = flipped(before, after), one_sided(before, after)
    compared = len(flips) - int(missing.sum())
    return float(flips.sum()) / compared if compared else None


def class_mismatch(before: list[str] | None, after: list[str] | None) -> str | None:
    """Why two versions' decisions cannot be compared: their class sets differ (None: same set).

    ``before``/``after`` are the output contracts' ``classes`` (None for a regressor). The same
    tree trained on 0/1 and on False/True labels answers ``1`` and ``True``: not the same class.
    """
    if before is None and after is None:
        return None
    if before is None or after is None or set(before) != set(after):

        def words(c: list[str] | None) -> str:
            return "none (a regressor)" if c is None else ", ".join(sorted(c)[:8]) + (" ..." if len(c) > 8 else "")

        return f"classes differ ({words(before)} vs {words(after)}): decisions are not comparable"
    return None


def score_column(before: list[str], after_kind: str, after_primary: str, after: list[str]) -> str | None:
    """The numeric score both versions output (a regressor's ``prediction`` or a ``proba_*``
    column present in both), or None: class labels and class ids are never differenced.

    Args:
        before: The serving version's output columns.
        after_kind: The target's output kind (``classification`` or ``regression``).
        after_primary: The target's primary output.
        after: The target's output columns.
    """
    numeric = after_kind == "regression" or after_primary.startswith("proba_")
    return after_primary if numeric and after_primary in before and after_primary in after else None


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
    """Slice values as text: missing ones :data:`MISSING`, past the ``limit`` most frequent :data:`OTHER`;
    a numeric column with more than ``limit`` values is cut into :data:`BINS` quantile ranges."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > limit:
        return _ranges(values)
    text = pd.Series(_keys(values), index=values.index, dtype=object).fillna(MISSING)
    keep = set(top_values(text.value_counts(), limit))
    return text.where(text.isin(keep), OTHER)


BINS = 10
"""Quantile ranges a continuous slice column is cut into."""


def _ranges(values: pd.Series) -> pd.Series:
    """``[lo, hi)`` quantile ranges of a continuous column as text (missing ones :data:`MISSING`)."""
    numbers = values.astype("float64")
    edges = np.unique(np.nanquantile(numbers.to_numpy(), np.linspace(0, 1, BINS + 1)))
    index = np.clip(np.searchsorted(edges, numbers.to_numpy(), side="right") - 1, 0, len(edges) - 2)
    names = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}" for i in range(len(edges) - 1)]
    text = np.array(names, dtype=object)[index]
    text[numbers.isna().to_numpy()] = MISSING
    return pd.Series(text, index=values.index, dtype=object)


def deltas_by_slice(
    before: pd.Series | None,
    after: pd.Series | None,
    flips: np.ndarray | None,
    by: pd.Series | None = None,
    missing: np.ndarray | None = None,
) -> list[SliceDelta]:
    """Flip share and score deltas for every row (``"all"`` first), then per slice, largest first.

    Args:
        before: The serving version's primary output (None when it is not numeric).
        after: The target's primary output for the same rows (None likewise).
        flips: :func:`flipped` per row (None without decisions, e.g. a regressor with no threshold).
        by: The slice value per row (None: only ``"all"``).
        missing: :func:`one_sided` per row (left out of the flip share; None: none).

    Raises:
        InvalidInput: The arrays have different lengths.
    """
    sizes = {len(x) for x in (before, after, flips, by, missing) if x is not None}
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
    return [_summary(name, mask, delta, flips, missing) for name, mask in groups]


def _summary(
    name: str, mask: np.ndarray, delta: np.ndarray | None, flips: np.ndarray | None, missing: np.ndarray | None
) -> SliceDelta:
    rows = int(mask.sum())
    changed = int(flips[mask].sum()) if flips is not None else None
    apart = int(missing[mask].sum()) if missing is not None else 0
    share = changed / (rows - apart) if changed is not None and rows > apart else None
    mean = p5 = p95 = None
    if delta is not None:
        values = delta[mask]
        values = values[np.isfinite(values)]
        if values.size:
            mean, (p5, p95) = float(values.mean()), (float(q) for q in np.quantile(values, [0.05, 0.95]))
    return SliceDelta(name, rows, changed, share, mean, p5, p95, apart)


def scored_words(n: int, refused: int, *, done: bool = False, why: str | None = None) -> str:
    """What a flip share is of, and the rows the target would refuse: ``flip of 62 scoreable rows;
    238 of 300 (79%) would be refused: without visits`` (``done``: the rollback happened; ``why``:
    the largest refused column set's reason)."""
    text = f"{'flipped' if done else 'flip'} of {n:,} scoreable row{'s' if n != 1 else ''}"
    if refused:
        total = n + refused
        text += f"; {refused:,} of {total:,} ({refused / total:.0%}) {'are' if done else 'would be'} refused"
        text += f": {why}" if why else ""
    return text
