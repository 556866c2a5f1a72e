"""Frames on the wire: the one JSON form in which a frame crosses the HTTP API.

``records`` (``[{"a": 1.5, ...}]``) cannot carry NaN, ``pd.NA`` or dtypes: JSON has no NaN,
a column of nulls has no type, and integers past 2**53 become floats once a null sits among
them. So every frame the API sends (``--features`` for deploy and rollback, logged windows)
goes column by column with its dtype::

    {"format": "rollbackkit.frame/1", "rows": 2, "columns": [
        {"name": "age", "dtype": "float64", "values": [31.5, null]},
        {"name": "plan", "dtype": "category", "values": ["pro", null],
         "categories": {"dtype": "str", "values": ["basic", "pro"]}, "ordered": false},
        {"name": "seen", "dtype": "datetime64[us, UTC]", "values": ["2026-01-05T09:30:00+00:00", null]}]}

``null`` is the missing value of the column's dtype (NaN, ``pd.NA`` or NaT). Floats that
JSON cannot write are the strings ``"Infinity"``, ``"-Infinity"`` and, in the nullable
``Float32``/``Float64`` dtypes where NaN and NA differ, ``"NaN"``. Datetimes are ISO 8601
strings with their offset; timedeltas count units of their dtype. The index is not sent.

``POST /predict`` also takes plain ``records`` or ``columns``+``data`` rows, for curl: those
carry no dtypes, so :func:`conform` reads each column with the dtype the scoring version was
trained on, where that loses nothing (a ``null`` becomes NaN in a float feature, whole-number
floats become integers, ISO strings become datetimes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.conform import dtype_named
from rollbackkit.errors import InvalidInput

FLOAT_ROWS = 64  # requests up to this many rows of plain floats skip pandas' type inference

FORMAT = "rollbackkit.frame/1"
_SPECIAL = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
_NAT = np.iinfo("int64").min
_MASKED = pd.core.dtypes.dtypes.BaseMaskedDtype  # Int64, Float64, boolean...: values + NA mask


# --------------------------------------------------------------------------- encode
def encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """``frame`` as a JSON-ready dict in the wire form (see the module docstring).

    Raises:
        InvalidInput: A column has a dtype the wire form cannot carry (periods, intervals,
            Arrow-backed dtypes...); the hint says to convert it.
    """
    return {
        "format": FORMAT,
        "rows": len(frame),
        "columns": [_encode_column(name, frame.iloc[:, i]) for i, name in enumerate(frame.columns)],
    }


def _encode_column(name: Any, column: pd.Series) -> dict[str, Any]:
    label = name if isinstance(name, str) or (isinstance(name, int) and not isinstance(name, bool)) else str(name)
    dtype = column.dtype
    out: dict[str, Any] = {"name": label, "dtype": _dtype_name(dtype, label)}
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _values(pd.Series(dtype.categories))
        out["categories"] = {"dtype": _dtype_name(dtype.categories.dtype, label), "values": categories}
        out["ordered"] = bool(dtype.ordered)
        out["values"] = [None if code < 0 else categories[code] for code in column.cat.codes.tolist()]
    else:
        out["values"] = _values(column)
    return out


def _dtype_name(dtype: Any, column: Any) -> str:
    if isinstance(dtype, pd.StringDtype):
        nan_variant = dtype.na_value is not pd.NA
        default = pd.StringDtype(na_value=np.nan if nan_variant else pd.NA).storage
        if nan_variant:
            return "str" if dtype.storage == default else f"str[{dtype.storage}]"
        return f"string[{dtype.storage}]"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, np.dtype) and dtype.kind not in "biufMmO":
        raise _unsupported(column, dtype)
    if isinstance(dtype, (np.dtype, pd.DatetimeTZDtype, _MASKED)):
        return str(dtype)
    raise _unsupported(column, dtype)


def _unsupported(column: Any, dtype: Any) -> InvalidInput:
    return InvalidInput(
        f"Column {column!r} has dtype {dtype}, which cannot be sent to a server.",
        "Convert it to a number, string, boolean, category or datetime column first.",
    )


def _values(column: pd.Series) -> list[Any]:
    """The column's values as JSON scalars (``None`` for missing)."""
    dtype = column.dtype
    missing = column.isna().to_numpy()
    if isinstance(dtype, pd.DatetimeTZDtype):  # as UTC: historical offsets (LMT +00:09:21) are not ISO 8601
        return [None if m else v.isoformat() for v, m in zip(column.dt.tz_convert("UTC"), missing, strict=True)]
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return [None if m else v.isoformat() for v, m in zip(column, missing, strict=True)]
    if isinstance(dtype, np.dtype) and dtype.kind == "m":
        ticks = column.to_numpy().view("int64")
        return [None if m else int(t) for t, m in zip(ticks, missing, strict=True)]
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return [None if m else _float(v) for v, m in zip(column.to_numpy().tolist(), missing, strict=True)]
    if isinstance(dtype, _MASKED):
        array = column.array
        data, mask = array._data, array._mask  # the values and the NA mask, without a float detour
        floats = data.dtype.kind == "f"
        return [
            None if m else (_float(v, nan="NaN") if floats else v)
            for v, m in zip(data.tolist(), mask.tolist(), strict=True)
        ]
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return column.to_numpy().tolist()  # type: ignore[no-any-return]
    return [None if m else _scalar(v) for v, m in zip(column.tolist(), missing, strict=True)]


def _float(value: float, nan: str | None = None) -> float | str | None:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return nan
    return "Infinity" if value > 0 else "-Infinity"


def _scalar(value: Any) -> Any:
    """A value of a string or object column as JSON (numbers and booleans kept as such)."""
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --------------------------------------------------------------------------- decode
def is_wire_frame(obj: Any) -> bool:
    """Whether ``obj`` is a frame in the wire form (rather than records)."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def decode_frame(obj: Any) -> pd.DataFrame:
    """The frame :func:`encode_frame` encoded (also accepts a list of plain records).

    Raises:
        InvalidInput: ``obj`` is not a wire frame or records, or a column does not match
            its declared dtype.
    """
    if isinstance(obj, list):
        return records_frame(obj)
    if not is_wire_frame(obj) or not isinstance(obj.get("columns"), list):
        raise InvalidInput(
            f'A frame must be {{"format": "{FORMAT}", "rows": N, "columns": [...]}} or a list of records.',
            "Build it with rollbackkit.serving.wire.encode_frame.",
        )
    rows = obj.get("rows")
    columns = [_decode_column(c) for c in obj["columns"]]
    if not columns:
        return pd.DataFrame(index=pd.RangeIndex(int(rows or 0)))
    frame = pd.concat(columns, axis=1)
    frame.columns = pd.Index([c.name for c in columns])
    if rows is not None and len(frame) != rows:
        raise InvalidInput(f"The frame says {rows} rows but its columns have {len(frame)}.", "Send equal lengths.")
    return frame


def _floats(values: Any) -> bool:
    return all(type(v) is float for v in values)


def records_frame(records: list[Any]) -> pd.DataFrame:
    """A frame from plain JSON records (pandas infers the dtypes; see :func:`conform`)."""
    if not all(isinstance(r, dict) for r in records):
        raise InvalidInput("Records must be JSON objects, one per row.", 'Send [{"feature": value, ...}, ...].')
    keys = list(records[0]) if records else []
    if keys and len(records) <= FLOAT_ROWS and all(list(r) == keys and _floats(r.values()) for r in records):
        # every value a float, every row the same keys: the frame pandas would infer, in one array (5x
        # faster for a one-row request; beyond FLOAT_ROWS rows checking each value costs what it saves)
        return pd.DataFrame(np.array([list(r.values()) for r in records], dtype="float64"), columns=keys)
    return pd.DataFrame.from_records(records)


def _decode_column(spec: Any) -> pd.Series:
    if not isinstance(spec, dict) or not isinstance(spec.get("values"), list) or "dtype" not in spec:
        raise InvalidInput("Each column needs a name, a dtype and a list of values.", f"See the {FORMAT} form.")
    name, values = spec.get("name"), spec["values"]
    try:
        if spec["dtype"] == "category":
            listed = spec["categories"]["values"]
            categories = pd.Index(_decode_values(listed, spec["categories"]["dtype"]))
            code_of = {_key(v): i for i, v in enumerate(listed)}
            codes = [-1 if v is None else code_of[_key(v)] for v in values]
            dtype = pd.CategoricalDtype(categories, ordered=bool(spec.get("ordered")))
            return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), name=name)
        return pd.Series(_decode_values(values, spec["dtype"]), name=name)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise InvalidInput(
            f"Column {name!r} does not hold {spec.get('dtype')} values: {exc}.", "Send values of the declared dtype."
        ) from exc


def _decode_values(values: list[Any], name: str) -> Any:
    """An array of dtype ``name`` from its JSON values."""
    dtype = dtype_named(name)
    mask = np.array([v is None for v in values], dtype=bool)
    if isinstance(dtype, pd.StringDtype):
        return pd.array([v if v is None else str(v) for v in values], dtype=dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        objects = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):  # one by one: a JSON list stays one value
            objects[i] = value
        return objects
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        tz = getattr(dtype, "tz", None)
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=tz is not None)
        if tz is not None:
            parsed = parsed.dt.tz_convert(tz)
        unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
        return parsed.dt.as_unit(unit).array
    if isinstance(dtype, np.dtype) and dtype.kind == "m":
        ticks = np.array([_NAT if v is None else int(v) for v in values], dtype="int64")
        return ticks.view(dtype)
    if isinstance(dtype, _MASKED):
        numpy_dtype = dtype.numpy_dtype
        fill: Any = False if numpy_dtype.kind == "b" else 0
        data = np.array([fill if v is None else _special(v) for v in values], dtype=numpy_dtype)
        return type(pd.array([], dtype=dtype))(data, mask)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return np.array([math.nan if v is None else _special(v) for v in values], dtype=dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        if mask.any():
            raise ValueError(f"{name} cannot hold null")
        return np.array(values, dtype=dtype)
    raise ValueError(f"unknown dtype {name}")


def _key(value: Any) -> tuple[str, Any]:
    """A category's lookup key: JSON ``1``, ``1.0`` and ``true`` are different categories."""
    return type(value).__name__, value


def _special(value: Any) -> Any:
    return _SPECIAL[value] if isinstance(value, str) and value in _SPECIAL else value


# --------------------------------------------------------------------------- JSON-typed rows
def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame`` as plain records that JSON can write (missing and non-finite values are null).

    Built column by column (one ``tolist`` per column, then one zip), not cell by cell: on
    a one-row answer this is a fifth of ``to_dict(orient="records")``'s cost.
    """
    keys = list(frame.columns)
    columns = [_json_values(frame.iloc[:, i]) for i in range(len(keys))]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_values(column: pd.Series) -> list[Any]:
    """One column's values as Python scalars, missing and non-finite values as None."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        values = column.to_numpy()
        out: list[Any] = values.tolist()
        if dtype.kind == "f" and not np.isfinite(values).all():
            out = [v if math.isfinite(v) else None for v in out]
        return out
    return [_plain(v) for v in column.to_numpy(dtype=object, na_value=None).tolist()]


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value; a non-finite float as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
