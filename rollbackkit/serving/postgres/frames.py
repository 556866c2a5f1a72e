"""PostgreSQL answers as the DuckDB log's frames: same columns, same dtypes, same values.

Both backends answer every log call with the same frame, so a gate, a drift report or a test
never sees which one it reads. A store's result rows and its input blobs go through Arrow into
one private in-memory DuckDB connection, which turns them into pandas exactly as the DuckDB
log's reads do (text ``str``, ``Int64`` only where a null is present, categories as text, the
session time zone on times). Preflight's :meth:`recent_inputs` keeps the scored dtypes instead
(straight from the blobs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

import pandas as pd
import pyarrow as pa

from rollbackkit.serving.postgres.encode import NAMES_KEY

_BY_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),  # bool
    20: pa.int64(),  # int8
    21: pa.int16(),  # int2
    23: pa.int32(),  # int4
    700: pa.float32(),  # float4
    701: pa.float64(),  # float8
    1700: pa.float64(),  # numeric
    25: pa.string(),  # text
    1043: pa.string(),  # varchar
    114: pa.string(),  # json
    3802: pa.string(),  # jsonb
    1184: pa.timestamp("us", tz="UTC"),  # timestamptz
    1114: pa.timestamp("us"),  # timestamp
}
"""The Arrow type of a PostgreSQL result column (by type OID), as DuckDB types the same column."""


class DuckFrames:
    """One in-memory DuckDB connection (one thread) that makes pandas frames the DuckDB log's way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._con: Any = None

    def frame(self, table: pa.Table, *, as_table: bool = False) -> pd.DataFrame:
        """``table`` as DuckDB's ``fetchdf`` gives it (``as_table``: stored in a table first, as the
        DuckDB log stores inputs, so a category is read back as text)."""
        with self._lock:
            con = self._connection()
            con.register("pg_rows", table)
            try:
                if not as_table:
                    return con.execute("SELECT * FROM pg_rows").fetchdf()
                con.execute("CREATE OR REPLACE TEMP TABLE pg_kept AS SELECT * FROM pg_rows")
                try:
                    return con.execute("SELECT * FROM pg_kept").fetchdf()
                finally:
                    con.execute("DROP TABLE IF EXISTS pg_kept")
            finally:
                con.unregister("pg_rows")

    def _connection(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(config={"threads": 1})
        return self._con

    def close(self) -> None:
        """Close the DuckDB connection (a later call opens a new one)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def result_table(description: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """A psycopg result (cursor ``description`` and fetched rows) as an Arrow table, typed by column."""
    names = [column.name for column in description]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    arrays = []
    for column, fetched in zip(description, values, strict=True):
        kind = _BY_OID.get(column.type_code)
        data: Sequence[Any] = fetched
        if kind is not None and pa.types.is_timestamp(kind) and kind.tz is not None:
            data = [None if v is None else v.astimezone(UTC) for v in data]
        if kind is not None and pa.types.is_floating(kind):
            data = [None if v is None else float(v) for v in data]
        arrays.append(pa.array(data, type=kind) if kind is not None else _guessed(data))
    return pa.Table.from_arrays(arrays, names=_unique(names))


def _guessed(data: Iterable[Any]) -> pa.Array:
    """A column of a type not mapped: as Arrow infers it, else as text."""
    values = list(data)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _unique(names: list[str]) -> list[str]:
    """Column names made unique the way DuckDB does (``x``, ``x_1``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def blob_table(blob: bytes) -> tuple[pa.Table, list[str]]:
    """An input blob as its Arrow table (columns ``c0..``) and the frame's column names as text."""
    import json

    table = pa.ipc.open_stream(blob).read_all()
    names = json.loads((table.schema.metadata or {}).get(NAMES_KEY, b"null"))
    return table, [str(n) for n in (names if names is not None else table.column_names)]


def stored_inputs(parts: list[pa.Table], names: list[str]) -> pa.Table:
    """Input rows from several blobs of one signature stacked as one Arrow table named as the DuckDB
    log names its inputs columns (dictionaries decoded, as a DuckDB table stores them)."""
    decoded = [_plain(part) for part in parts]
    table = pa.concat_tables(decoded, promote_options="permissive") if len(decoded) > 1 else decoded[0]
    return table.rename_columns(names)


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary columns decoded to their values and no pandas metadata."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
