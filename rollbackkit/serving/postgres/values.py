"""Input columns as the store keeps them for SQL counts (``log_input_values``), encoded once, in one place.

A column is kept as an array per ``(batch, signature)`` blob: ``numbers`` (``n``: float64, NaN where
missing) for numeric columns, ``texts`` (``t``: :func:`~rollbackkit.analysis.drift_bins.category_text`,
NULL where missing) for text, booleans and categories (the kind the drift panels bin them by). The
writer keeps every column of a batch in its commit (:func:`frame_rows`); a read that needs a blob
written before that, or the other kind of a column, decodes it once (``binned_sql``). Both write
the same bytes: PostgreSQL's binary COPY, built with numpy (no per-value Python for numbers).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.analysis.drift_bins import category_text, is_missing
from rollbackkit.serving.postgres.encode import CATEGORIES_KEY, NAMES_KEY, typed_categories

VALUES_TABLE = "log_input_values"
"""The store's table of input columns kept as arrays, one row per blob, column and kind."""

COPY_SQL = 'COPY {table} (batch_id, signature, "column", kind, numbers, texts) FROM STDIN (FORMAT binary)'
"""The COPY statement of :func:`copy_data` (``table``: ``log_input_values`` or a staging copy of it)."""

ValueRow = tuple[str, str, str, str, bytes]
"""One kept array: batch, signature, column, kind (``n`` or ``t``) and the array in binary form."""

_FLOAT8, _TEXT = 701, 25  # PostgreSQL type oids of the arrays' elements
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_NUMBER = np.dtype([("size", ">i4"), ("value", ">f8")])


def kind_of(column: pd.Series) -> str:
    """``n`` for numbers binned by edges, ``t`` for text, booleans and categories (drift's own rule)."""
    dtype = column.dtype
    return "t" if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype) else "n"


def numbers(column: pd.Series) -> np.ndarray:
    """The column as floats, NaN where missing (as the in-process count reads it)."""
    return np.asarray(column.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")


def texts(column: pd.Series) -> list[str | None]:
    """The column as category texts, None where missing (each distinct value spelled once where the
    column holds one type: categories, text, booleans; mixed objects value by value)."""
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):  # NaT missing; spelled as the DuckDB log casts them
        codes, moments = pd.factorize(column, use_na_sentinel=True)
        return [None if c < 0 else moment_text(moments[c]) for c in codes.tolist()]
    if isinstance(dtype, pd.CategoricalDtype):
        uniques, codes = column.cat.categories.astype(object), column.cat.codes.to_numpy()
    elif isinstance(dtype, pd.StringDtype | pd.BooleanDtype) or dtype == np.dtype(bool):
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    else:
        return [None if is_missing(v) else category_text(v) for v in column.astype(object)]
    spelled = [category_text(v) for v in np.asarray(uniques, dtype=object)] + [None]
    return [spelled[c] for c in codes.tolist()]  # code -1 (missing): the last, None


def moment_text(moment: pd.Timestamp) -> str:
    """A timestamp as DuckDB's ``CAST(... AS VARCHAR)`` spells it (the DuckDB log's categories): to the
    microsecond, trailing zeros dropped; a zoned one in UTC with ``+00``."""
    aware = moment.tzinfo is not None
    moment = moment.tz_convert("UTC") if aware else moment
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + ("+00" if aware else "")


def number_array(values: np.ndarray) -> bytes:
    """A ``float8[]`` in PostgreSQL's binary form."""
    n = len(values)
    if n == 0:
        return struct.pack("!iii", 0, 0, _FLOAT8)
    body = np.empty(n, dtype=_NUMBER)
    body["size"], body["value"] = 8, values
    return struct.pack("!iiiii", 1, 0, _FLOAT8, n, 1) + body.tobytes()


def text_array(values: list[str | None]) -> bytes:
    """A ``text[]`` in PostgreSQL's binary form (NULL elements where None).

    Raises:
        ValueError: a text holds a NUL character (PostgreSQL text cannot).
    """
    if not values:
        return struct.pack("!iii", 0, 0, _TEXT)
    parts = [struct.pack("!iiiii", 1, int(any(v is None for v in values)), _TEXT, len(values), 1)]
    spelled: dict[str, bytes] = {}
    for value in values:
        if value is None:
            parts.append(b"\xff\xff\xff\xff")
            continue
        encoded = spelled.get(value)
        if encoded is None:
            raw = _no_nul(value).encode()
            encoded = spelled[value] = struct.pack("!i", len(raw)) + raw
        parts.append(encoded)
    return b"".join(parts)


def _no_nul(text: str) -> str:
    """``text``, which PostgreSQL text can hold.

    Raises:
        ValueError: it holds a NUL character.
    """
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold a NUL character.")
    return text


def array_of(column: pd.Series, kind: str) -> bytes:
    """One column as the array of ``kind``, in binary form."""
    return number_array(numbers(column)) if kind == "n" else text_array(texts(column))


def blob_column(blob: bytes, feature: str) -> pd.Series | None:
    """One column of an input blob in the dtype it was scored in (as
    :func:`~rollbackkit.serving.postgres.encode.inputs_frame` gives it; text's missing values may
    read NaN rather than None, both missing), decoding no other column."""
    table = pa.ipc.open_stream(blob).read_all()
    metadata = table.schema.metadata or {}
    names = json.loads(metadata.get(NAMES_KEY, b"null"))
    names = [str(n) for n in (names if names is not None else table.column_names)]
    if feature not in names:
        return None
    at = names.index(feature)
    column = table.select([at]).to_pandas().iloc[:, 0]
    kind = json.loads(metadata.get(CATEGORIES_KEY, b"{}")).get(str(at))
    if kind is not None:
        column = typed_categories(column, kind)
    return column.reset_index(drop=True)


def frame_rows(frame: pd.DataFrame, batch_id: str, signature: str, blob: bytes) -> list[ValueRow]:
    """Every column of a batch's inputs (``frame``, as its blob holds it), each in the kind it is
    binned by; a name held twice is kept once (the first, as a read finds it in the blob). A column
    whose arrays cannot be built (a NUL character in its name or its texts, say) is not kept: the batch
    never fails for it (its blob keeps it; a read counts it beside the blobs). An object column is
    read back from the batch's ``blob`` (mixed values are stored as text there), so both ways agree."""
    kept: list[ValueRow] = []
    seen: set[str] = set()
    for at, name in enumerate(frame.columns):
        column = frame.iloc[:, at]
        key = str(name)
        if key in seen:
            continue
        seen.add(key)
        try:
            _no_nul(key)
            if column.dtype == np.dtype(object):
                column = blob_column(blob, key)
            kind = kind_of(column)
            kept.append((batch_id, signature, key, kind, array_of(column, kind)))
        except (ValueError, TypeError, OverflowError, pa.ArrowException):  # not kept: the request is written
            continue
    return kept


def copy_data(rows: Iterable[ValueRow]) -> bytes:
    """The rows as one binary COPY stream for :data:`COPY_SQL`."""
    parts = [_HEADER]
    for batch_id, signature, column, kind, array in rows:
        parts.append(struct.pack("!h", 6))
        for text in (batch_id, signature, column, kind):
            raw = text.encode()
            parts.append(struct.pack("!i", len(raw)) + raw)
        numbers_field, texts_field = (array, None) if kind == "n" else (None, array)
        for field in (numbers_field, texts_field):
            parts.append(b"\xff\xff\xff\xff" if field is None else struct.pack("!i", len(field)) + field)
    parts.append(struct.pack("!h", -1))
    return b"".join(parts)


def copy_rows(cur: Any, rows: list[ValueRow], table: str = VALUES_TABLE) -> None:
    """Write ``rows`` into ``table`` by one binary COPY on ``cur`` (in its open transaction)."""
    if rows:
        with cur.copy(COPY_SQL.format(table=table)) as copy:
            copy.write(copy_data(rows))
