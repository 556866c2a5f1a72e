"""The one per-column rule of compatibility: may this live column become the trained dtype?

:func:`conversion` decides for one column: no change, a declared lossless cast (dtype widening
such as int32 -> int64, or values that convert exactly: whole-number floats to an integer
feature, Python booleans to a boolean one, as :func:`rollbackkit.bundle.conform.conform`
reads untyped columns), or a refusal saying what the values are.
:func:`rollbackkit.bundle.compat.check` turns it into findings and
:func:`converted` applies it when a version scores, so ``check`` and ``predict`` cannot
disagree about a column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rollbackkit.bundle.conform import _conformed
from rollbackkit.bundle.schema import Feature, logical_type
from rollbackkit.errors import IncompatibleInput


@dataclass(frozen=True)
class Conversion:
    """How one live column becomes its feature's dtype.

    Attributes:
        cast: ``""`` when the dtype already matches, the trained dtype's name for a lossless
            cast, None when no safe conversion exists.
        detail: The finding's text: the cast and why it is lossless, or why it is refused.
        values: The converted column when deciding needed it (value-checked conversions).
    """

    cast: str | None
    detail: str = ""
    values: pd.Series | None = None


_WIDER_INT = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8}
_VALUES = {"int": "whole numbers", "float": "numbers", "bool": "booleans", "datetime": "ISO dates"}


def conversion(feature: Feature, column: pd.Series) -> Conversion:
    """Decide how ``column`` becomes ``feature``'s trained dtype (see :class:`Conversion`)."""
    if str(column.dtype) == feature.pandas_dtype:
        return Conversion("")
    cast = _cast_for(feature, column)
    if cast and not _holds_missing(cast, column):
        return _refused(feature, column, f"{int(column.isna().sum())} missing value(s), which {cast} cannot hold")
    if cast:
        return Conversion(cast, f"{column.dtype} -> {cast} (lossless widening)")
    values = _conformed(column, feature)
    if values is not None:
        kind = "missing values only" if column.isna().all() else _VALUES.get(feature.dtype, "values kept")
        return Conversion(feature.pandas_dtype, f"{column.dtype} -> {feature.pandas_dtype} ({kind}; lossless)", values)
    return _refused(feature, column, _values_kind(feature, column))


def converted(feature: Feature, column: pd.Series, declared: str) -> pd.Series:
    """``column`` in the trained dtype through the conversion ``declared`` (``""``: none).

    Raises:
        IncompatibleInput: The column has no safe conversion, or needs one the adaptation
            does not declare (one line naming the column).
    """
    rule = conversion(feature, column)
    if rule.cast is None:
        raise IncompatibleInput(f"{feature.name}: dtype ({rule.detail}).", _HINT)
    if rule.cast == "":
        return column
    if rule.cast != declared:
        raise IncompatibleInput(
            f"{feature.name}: needs the conversion {rule.detail}, which the adaptation does not declare.", _HINT
        )
    if rule.values is not None:
        return rule.values
    try:
        if rule.cast == "category":  # a category never seen becomes a missing one (check counts them)
            text = column.astype(str).where(column.notna())
            known = text.where(text.isin(feature.categories)) if feature.categories else text
            return known.astype(pd.CategoricalDtype(feature.categories or None))
        return column.astype(rule.cast)
    except (TypeError, ValueError, OverflowError) as exc:  # a widening the dtype allows but a value refuses
        raise IncompatibleInput(f"{feature.name}: {column.dtype} -> {rule.cast} fails ({exc}).", _HINT) from exc


_HINT = "Check the frame with rollbackkit.bundle.compat.check(bundle, frame); send the column as it was trained."


def _refused(feature: Feature, column: pd.Series, why: str) -> Conversion:
    got = f"{logical_type(column)} ({column.dtype})"
    return Conversion(None, f"trained as {feature.dtype} ({feature.pandas_dtype}), got {got}{why}: no safe conversion")


def _values_kind(feature: Feature, column: pd.Series) -> str:
    """What the values are, when that is why they do not convert (``""`` when the dtype says it)."""
    present = column.dropna()
    if present.empty:
        return ""
    if pd.api.types.is_float_dtype(present.dtype) and feature.dtype == "int":
        fractional = present[present.astype("float64") % 1 != 0]
        return f" with fractions such as {float(fractional.iloc[0]):g}" if len(fractional) else " with missing values"
    if present.dtype == object or pd.api.types.is_string_dtype(present.dtype):
        kinds = sorted({_KINDS.get(type(v).__name__, type(v).__name__) for v in present.tolist()[:1000]})
        return f" holding {'/'.join(kinds)} such as {str(present.iloc[0])[:20]!r}"
    return ""


_KINDS = {"str": "text", "bool": "booleans", "int": "integers", "float": "numbers"}


def _holds_missing(cast: str, column: pd.Series) -> bool:
    """False when the column has missing values a numpy int/bool dtype cannot hold."""
    try:
        kind = pd.api.types.pandas_dtype(cast).kind if cast != "category" else "O"
    except TypeError:
        return True
    return kind not in "biu" or not bool(column.isna().any())


def _cast_for(feature: Feature, column: pd.Series) -> str | None:
    """A dtype name for a lossless dtype widening, None when the dtypes alone allow none."""
    live, want = logical_type(column), feature.dtype
    if want == "float" and live in ("float", "int", "bool"):
        size = pd.api.types.pandas_dtype  # also knows Float64, which np.dtype does not
        if live == "float" and size(column.dtype).itemsize > size(feature.pandas_dtype).itemsize:
            return None  # float64 -> float32 loses precision
        return feature.pandas_dtype
    if want == "int" and live in ("int", "bool"):
        return feature.pandas_dtype if _int_fits(str(column.dtype), feature.pandas_dtype) else None
    if want in ("string", "category") and live in ("string", "category"):
        return feature.pandas_dtype
    if want == live and want in ("bool", "datetime"):
        return feature.pandas_dtype
    return None


def _int_fits(live: str, want: str) -> bool:
    live, want = live.lower(), want.lower()
    if live == "bool":
        return True
    if live not in _WIDER_INT or want not in _WIDER_INT:
        return False
    if live.startswith("u") and not want.startswith("u"):
        return _WIDER_INT[live] < _WIDER_INT[want]
    if not live.startswith("u") and want.startswith("u"):
        return False
    return _WIDER_INT[live] <= _WIDER_INT[want]
