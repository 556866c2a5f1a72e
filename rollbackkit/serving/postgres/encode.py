"""What the PostgreSQL log stores for a request: typed input blobs, output JSON texts, input hashes.

Inputs are kept as one Arrow IPC stream per committed batch and input signature
(``log_inputs``): every pandas dtype comes back exactly (float bits, ``Int64`` with NA,
``boolean``, ``string``, ``category``, datetimes). Outputs are one JSON object text per row,
the same texts :func:`rollbackkit.serving.predlog.queries.decode_outputs` reads back from
the DuckDB log, so both backends give the same typed frame.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.serving.predlog.arrowed import frame_table

NAMES_KEY = b"rollbackkit.columns"
"""The blob's schema metadata key holding the frame's column names (JSON, types kept)."""

CATEGORIES_KEY = b"rollbackkit.categories"
"""The blob's schema metadata key holding each categorical column's categories dtype."""

OBJECTS_KEY = b"rollbackkit.objects"
"""The blob's schema metadata key listing the object columns (Arrow gives text back as ``str``)."""


def inputs_blob(frame: pd.DataFrame) -> bytes:
    """``frame`` as an Arrow IPC stream whose :func:`inputs_frame` is the same frame.

    Column names may repeat or be numbers (kept in the metadata); an object column Arrow
    cannot type (mixed values) is stored as text, as the DuckDB log stores it.
    """
    names = [
        name if isinstance(name, str | int | float | bool) or name is None else str(name) for name in frame.columns
    ]
    plain = frame.set_axis([f"c{k}" for k in range(frame.shape[1])], axis=1).reset_index(drop=True)
    table = frame_table(plain)
    for k, dtype in enumerate(plain.dtypes):  # NaN stays NaN (not null), with its very bits
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            table = table.set_column(k, table.field(k), pa.array(plain.iloc[:, k].to_numpy(), from_pandas=False))
    metadata = dict(table.schema.metadata or {})
    metadata[NAMES_KEY] = json.dumps(names).encode()
    metadata[CATEGORIES_KEY] = json.dumps(
        {k: str(t.categories.dtype) for k, t in enumerate(frame.dtypes) if isinstance(t, pd.CategoricalDtype)}
    ).encode()
    metadata[OBJECTS_KEY] = json.dumps([k for k, t in enumerate(frame.dtypes) if t is np.dtype(object)]).encode()
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def inputs_frame(blob: bytes) -> pd.DataFrame:
    """The frame :func:`inputs_blob` stored: same columns, same dtypes, a RangeIndex."""
    table = pa.ipc.open_stream(blob).read_all()
    names = json.loads((table.schema.metadata or {}).get(NAMES_KEY, b"null"))
    frame = table.to_pandas()
    kinds = json.loads((table.schema.metadata or {}).get(CATEGORIES_KEY, b"{}"))
    for position, kind in kinds.items():
        frame.isetitem(int(position), typed_categories(frame.iloc[:, int(position)], kind))
    for position in json.loads((table.schema.metadata or {}).get(OBJECTS_KEY, b"[]")):  # None where missing
        frame.isetitem(position, pd.Series(table.column(position).to_pylist(), dtype=object))
    if names is not None:
        frame.columns = pd.Index(names, dtype=object) if not all(isinstance(n, str) for n in names) else names
    return frame.reset_index(drop=True)


def typed_categories(column: pd.Series, kind: str | None) -> pd.Series:
    """Categorical ``column`` as Arrow gave it back, its categories in ``kind``, the dtype they were scored in.

    Empty categories come back untyped; tz-aware ones come back naive (pyarrow drops the zone of a
    dictionary's values, which hold the UTC instants): they are localized to UTC, then told in their zone.
    """
    categories = column.cat.categories
    if kind is None or str(categories.dtype) == kind:
        return column
    dtype = pd.api.types.pandas_dtype(kind)
    if isinstance(dtype, pd.DatetimeTZDtype) and isinstance(categories, pd.DatetimeIndex) and categories.tz is None:
        return column.cat.rename_categories(categories.tz_localize("UTC").tz_convert(dtype.tz).as_unit(dtype.unit))
    return column.cat.set_categories(categories.astype(dtype))


def input_hashes(frame: pd.DataFrame) -> list[str]:
    """Each row's inputs hashed (16 hex digits): equal values in equal columns, equal hash."""
    if frame.shape[1] == 0:
        return ["0" * 16] * len(frame)
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False, categorize=True)
    return [format(value, "016x") for value in hashed.to_numpy(dtype="uint64").tolist()]


def outputs_texts(outputs: pd.DataFrame | None, rows: int) -> list[str | None]:
    """One JSON object text per row of ``outputs`` (``"{}"`` for each of ``rows`` when None).

    Text stays a JSON string, booleans ``true``/``false``, integers exact, floats in shortest
    round-trip form (``Infinity`` for infinities), missing values and NaN ``null``: what the
    DuckDB writer's ``to_json(struct_pack(...))`` gives, so ``decode_outputs`` reads both alike.
    """
    if outputs is None or outputs.shape[1] == 0:
        return ["{}"] * (rows if outputs is None else len(outputs))
    keys = [json.dumps(str(name), ensure_ascii=False) + ":" for name in outputs.columns]
    columns = [_fragments(outputs.iloc[:, k]) for k in range(outputs.shape[1])]
    texts: list[str | None] = []
    for values in zip(*columns, strict=True):
        texts.append("{" + ",".join(key + value for key, value in zip(keys, values, strict=True)) + "}")
    return texts


def _fragments(column: pd.Series) -> list[str]:
    """One column's values as JSON value texts."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _scalars(column.astype(object))
    if dtype.kind == "b":
        values = column.to_numpy(dtype=object, na_value=None)
        return ["null" if v is None else ("true" if v else "false") for v in values.tolist()]
    if dtype.kind in "iu":
        return ["null" if v is None else str(int(v)) for v in column.to_numpy(dtype=object, na_value=None).tolist()]
    if dtype.kind == "f":
        return [_float(v) for v in column.to_numpy(dtype="float64", na_value=np.nan).tolist()]
    return _scalars(column)


def _scalars(column: pd.Series) -> list[str]:
    """Text (or mixed object) values: one ``json.dumps`` per distinct value."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    values = column.to_numpy(dtype=object)
    done: dict[Any, str] = {}
    out = []
    for value in values.tolist():
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            out.append("null")
            continue
        key = (type(value), value)
        text = done.get(key)
        if text is None:
            text = done[key] = _scalar(value, kind)
        out.append(text)
    return out


def _scalar(value: Any, kind: str) -> str:
    """One value: as itself where the column is one JSON type, else as text (as DuckDB stacks it)."""
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind in ("floating", "mixed-integer-float") and isinstance(value, int | float) and not isinstance(value, bool):
        return _float(float(value))
    if kind == "floating" and isinstance(value, float):
        return _float(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def _float(value: float) -> str:
    if math.isnan(value):
        return "null"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)
