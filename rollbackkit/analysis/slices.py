"""Slices: rows grouped by the values of one or more columns, each with a plain label.

Drift per slice (:func:`drift_by`) and slice gates group the same way: missing values are
a slice of their own, slices come in sorted order, and a slice's label maps each column to
a plain Python value (``{"contract": "monthly"}``), ready for JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from rollbackkit.analysis.drift import CategoricalDrift, DriftResult, drift
from rollbackkit.errors import InvalidInput

MISSING = "(missing)"
"""The slice of rows whose slice value is missing (the rollback preview, the drift log's ``by``)."""

OTHER = "(other)"
"""The slice (or category bin) gathering every value past the most frequent ones (:func:`top_values`)."""


def top_values(counts: pd.Series, limit: int) -> list[Any]:
    """The ``limit`` values with the most rows, most first, ties in the order of their text; ``counts``
    maps a value to its rows. The one top-N rule of slices and categories: the rest are :data:`OTHER`."""
    order = pd.DataFrame({"n": counts.to_numpy(), "text": counts.index.astype(str)})
    order = order.sort_values(["n", "text"], ascending=[False, True], kind="stable")
    return [counts.index[i] for i in order.index[: max(int(limit), 0)]]


@dataclass(frozen=True)
class Slice:
    """One group of rows.

    Attributes:
        key: The group's key as pandas gives it (a tuple for several columns).
        label: Each slicing column's value as a plain Python value.
        rows: The rows of the slice.
    """

    key: Any
    label: dict[str, Any]
    rows: pd.DataFrame


def slice_columns(by: str | list[str]) -> list[str]:
    """The slicing columns: ``by`` as a list."""
    return [by] if isinstance(by, str) else list(by)


def slices(frame: pd.DataFrame, by: str | list[str]) -> Iterator[Slice]:
    """The slices of ``frame`` by the values of ``by``, in sorted order (missing values are one)."""
    keys = slice_columns(by)
    for key, rows in frame.groupby(keys, dropna=False, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        yield Slice(key, {k: _plain(v) for k, v in zip(keys, values, strict=True)}, rows)


def same_segment(reference: pd.DataFrame, label: dict[str, Any]) -> pd.DataFrame:
    """The reference rows in the segment ``label`` names (a missing value matches missing values).

    Columns the reference lacks are not filtered on; an empty frame means the reference has
    no such segment.
    """
    keep = pd.Series(True, index=reference.index)
    for column, value in label.items():
        if column in reference.columns:
            column_values = reference[column]
            same = column_values.isna() if _missing(value) else (column_values == value).fillna(False)
            keep &= same.astype(bool)  # nullable columns compare to NA where missing: not this segment
    return reference[keep.to_numpy()]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def drift_by(
    reference: pd.DataFrame, current: pd.DataFrame, column: str, by: str | list[str]
) -> list[DriftResult | CategoricalDrift]:
    """Drift of ``column`` within each slice of the current data (grouped by ``by``).

    A slice absent from the reference is compared with the whole reference and says so in
    its ``slice`` dict (``"reference": "all"``).
    """
    keys = slice_columns(by)
    for frame, side in ((reference, "reference"), (current, "current")):
        missing = [k for k in [*keys, column] if k not in frame.columns]
        if missing:
            raise InvalidInput(f"The {side} data lacks column(s) {missing}.", "Check --column and --by.")
    ref_groups = {group.key: group.rows for group in slices(reference, keys)}
    results: list[DriftResult | CategoricalDrift] = []
    for group in slices(current, keys):
        ref_part = ref_groups.get(group.key)
        label = dict(group.label)
        if ref_part is None:
            ref_part, label["reference"] = reference, "all"
        result = drift(ref_part[column], group.rows[column], column)
        results.append(replace(result, slice=label))
    return results


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
