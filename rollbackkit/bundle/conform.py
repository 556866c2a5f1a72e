"""Read untyped columns with the dtypes a version was trained on, where nothing is lost.

JSON records and CSV files carry no dtypes: a nullable integer arrives as floats, a
datetime as ISO text, a column of nulls as objects. :func:`conform` gives each such column
the feature's dtype when no value changes, and leaves the rest for
:func:`rollbackkit.bundle.compat.check` to judge. Serving applies it to JSON requests; the
registry to live samples read from files (``check``, ``preflight``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.schema import Feature, Schema


def dtype_named(name: str) -> Any:
    """The pandas dtype a dtype name stands for (also pandas 3's ``str`` and ``string[...]`` names)."""
    if name == "str":
        return pd.StringDtype(na_value=np.nan)
    if name.startswith("str[") and name.endswith("]"):
        return pd.StringDtype(storage=name[4:-1], na_value=np.nan)
    if name.startswith("string[") and name.endswith("]"):
        return pd.StringDtype(storage=name[7:-1], na_value=pd.NA)
    return pd.api.types.pandas_dtype(name)


_UNTYPED_KINDS = {"int": "Of", "float": "Of"}
"""Dtype kinds a source without dtypes yields for a feature (default: objects). JSON and CSV
give an integer column with nulls as floats, and any number as a 64-bit float (a ``float32``
feature included); every other untyped column arrives as objects."""

_NULL_KINDS = "Of"
"""Dtype kinds a column of nulls arrives in from a source without dtypes: objects (JSON nulls,
an all-null Parquet column) or floats (an empty CSV column), whatever the feature's dtype."""


def conform(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Read untyped columns with the dtypes a version was trained on, where nothing is lost.

    For frames built from plain JSON records or CSV files, which carry no dtypes: a column of
    nulls (objects from JSON or Parquet, floats from an empty CSV column) becomes missing
    values of the feature's dtype (NaN, ``pd.NA``, NaT, a missing category) whether or not
    training had any, so that check() judges them as missing values, not as a dtype (``int64``
    and ``bool`` hold none: left as they came); floats that are whole numbers (or null) become
    the feature's integer dtype, JSON booleans its boolean dtype, ISO strings its datetime dtype. Any column that would
    change value is left as it came, and :func:`rollbackkit.bundle.compat.check` judges it.
    """
    converted: dict[Any, pd.Series] = {}
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))  # hot path: no str(dtype), no Series yet
    for feature in schema.features:
        dtype = dtypes.get(feature.name)
        if dtype is None or dtype == feature.pandas_dtype:
            continue
        kind = getattr(dtype, "kind", "")
        if kind not in _UNTYPED_KINDS.get(feature.dtype, "O") and kind not in _NULL_KINDS:
            continue  # a typed column (int32 for int64, str for category): check() declares its cast
        column = frame[feature.name]
        if isinstance(column, pd.DataFrame):
            continue
        if kind not in _UNTYPED_KINDS.get(feature.dtype, "O") and not column.isna().all():
            continue  # floats for a string feature: only a column of nulls (an empty CSV column) is untyped
        better = _conformed(column, feature)
        if better is not None:
            converted[feature.name] = better
    if not converted:
        return frame
    out = frame.copy(deep=False)
    for name, column in converted.items():
        out[name] = column
    return out


def _conformed(column: pd.Series, feature: Feature) -> pd.Series | None:
    """``column`` in the feature's dtype, or None when that would change a value."""
    try:
        target = dtype_named(feature.pandas_dtype) if feature.pandas_dtype != "category" else None
    except TypeError:
        return None
    missing = column.isna()
    if missing.all():  # only missing values: those of the trained dtype; check() judges them like any others
        if target is None:
            return pd.Series(pd.Categorical([None] * len(column), categories=feature.categories), index=column.index)
        if isinstance(target, np.dtype) and target.kind in "biu":
            return None  # int64 and bool hold no missing value (bool would read None as False)
        try:
            return pd.Series([None] * len(column), index=column.index, dtype=object).astype(target)
        except (TypeError, ValueError):
            return None
    if target is None or (missing.any() and not feature.nullable and feature.dtype in ("int", "bool")):
        return None
    present = column[~missing]
    try:
        if feature.dtype == "float" and isinstance(target, np.dtype) and target.itemsize < 8:
            return _narrowed(column, missing, target)
        if feature.dtype in ("float", "int"):
            if not all(_is_number(v) for v in present.tolist()):
                return None
            out = column.astype("float64").astype(target) if present.dtype == object else column.astype(target)
            back = out[~missing].astype("float64").to_numpy()
            if feature.dtype == "int" and present.dtype == object:  # exact, not in float: 2**63 + 5 is no int64
                return out if out[~missing].astype(object).tolist() == [int(v) for v in present.tolist()] else None
            return out if np.array_equal(back, present.astype("float64").to_numpy()) else None
        if feature.dtype == "bool":
            if not all(isinstance(v, (bool, np.bool_)) for v in present.tolist()):
                return None
            return column.astype(target)
        if feature.dtype == "datetime":
            if not all(isinstance(v, str) for v in present.tolist()):
                return None
            tz = getattr(target, "tz", None)
            parsed = pd.to_datetime(column, format="ISO8601", utc=tz is not None)
            if tz is not None:
                parsed = parsed.dt.tz_convert(tz)
            return parsed.astype(target)
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def _narrowed(column: pd.Series, missing: pd.Series, target: np.dtype) -> pd.Series | None:
    """Decimal numbers for a ``float32`` feature (an ONNX graph's input) at the model's own precision.

    JSON and CSV numbers are decimal text that no float holds exactly: rounding them to the
    precision the model computes in loses nothing it could use. Refused (None) when a value is
    not a number or overflows the narrower type.
    """
    present = column[~missing]
    if present.dtype == object and not all(_is_number(v) for v in present.tolist()):
        return None
    wide = column.astype("float64")
    narrow = wide.astype(target)
    same_finite = np.isfinite(wide[~missing].to_numpy()) == np.isfinite(narrow[~missing].to_numpy())
    return narrow if same_finite.all() else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
