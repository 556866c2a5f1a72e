"""Logged rows back as typed frames: a gate window's frame and outputs decoded to their types.

Both log backends build their frames here (:func:`window_frame`, :func:`decode_outputs`): a
text label stays ``str``, integers stay exact.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.serving.predlog.labels import decode_labels


def window_frame(rows: pd.DataFrame, features: dict[str, pd.DataFrame], *, sent: bool = False) -> pd.DataFrame:
    """A gate window from its rows (``request_id``, ``row``, ``time``, ``key``, ``inputs_table``,
    ``outputs``, ``latency_ms``, ``error``, ``label``; oldest first) and each inputs table's rows in
    window order: inputs, typed outputs, then the row's facts. Both log backends build it here.

    ``sent`` adds the fact :data:`SENT_COLUMNS`: the input columns each row's request sent (its
    inputs table holds exactly those, a column sent empty included), see :func:`sent_mask`."""
    if rows.empty:
        return pd.DataFrame()
    outputs = decode_outputs(rows["outputs"].tolist())
    meta = rows[["latency_ms", "error", "time", "request_id"]].assign(
        row=rows["row"].astype("int64"),
        key=pd.Series(_objects(rows["key"]), index=rows.index, dtype=object),
        label=pd.Series(decode_labels(rows["label"]), index=rows.index, dtype=object),
    )
    parts = []
    for table, group in rows.groupby("inputs_table", sort=False):
        parts.append(pd.concat([features[table].set_axis(group.index), outputs.loc[group.index]], axis=1))
    frame = pd.concat(parts).sort_index()
    if sent:
        masks = pd.Series("", index=rows.index, dtype=object)
        for table, group in rows.groupby("inputs_table", sort=False):
            masks[group.index] = sent_mask(frame.columns, features[table].columns)
        meta[SENT_COLUMNS] = masks
    return pd.concat([frame, meta], axis=1)


SENT_COLUMNS = "sent_columns"
"""A sample window's fact: which of the window's columns the row's request sent (:func:`sent_mask`)."""


def sent_mask(columns: pd.Index, sent: pd.Index) -> str:
    """The columns of ``columns`` (a window's, by position) that are in ``sent``, as a hex bit mask
    (bit k: column k); :func:`sent_names` reads it back."""
    positions = columns.get_indexer_for(sent)
    return format(sum(1 << int(k) for k in set(positions.tolist()) if k >= 0), "x")


def sent_names(columns: pd.Index, mask: str) -> list[str]:
    """The column names a :func:`sent_mask` of ``columns`` holds, in ``columns``' order."""
    bits = int(mask, 16)
    return [str(c) for k, c in enumerate(columns) if bits >> k & 1]


def _objects(values: pd.Series) -> np.ndarray:
    """Text values as an object array, None where missing."""
    out = values.to_numpy(dtype=object, copy=True)
    out[pd.isna(values).to_numpy()] = None
    return out


def decode_outputs(texts: Sequence[str]) -> pd.DataFrame:
    """Logged outputs (one JSON object per row) as a frame, every column with its type back.

    Text stays ``str``, booleans ``bool``, integers ``int64`` and floats ``float64`` (null:
    NaN). Where some rows lack a value (a failed request logs ``{}``) integers and booleans
    become pandas' nullable ``Int64`` and ``boolean``, never floats or objects.
    """
    fast = _arrow_outputs(texts)
    if fast is not None:
        return fast
    records = [json.loads(text) for text in texts]
    names = list(dict.fromkeys(name for record in records for name in record))
    columns = {name: _typed([record.get(name) for record in records]) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


def _arrow_outputs(texts: Sequence[str]) -> pd.DataFrame | None:
    """:func:`decode_outputs` by Arrow's JSON reader (a million rows in well under a second), or
    None when a column is not one JSON scalar type (mixed, nested, beyond int64): then the
    rows are read one by one."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    if not texts:
        return None
    try:
        table = pa_json.read_json(io.BytesIO("\n".join(texts).encode()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(texts):
        return None
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind, missing = column.type, column.null_count > 0
        if pa.types.is_boolean(kind):
            values = column.to_numpy(zero_copy_only=False)
            columns[name] = pd.array(values, dtype="boolean") if missing else values.astype(bool)
        elif pa.types.is_int64(kind):
            # Int64 straight from Arrow: through float64 a 2**53 + 1 would lose its last bit
            exact = column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array
            columns[name] = exact if missing else column.to_numpy()
        elif pa.types.is_float64(kind):
            columns[name] = column.to_numpy(zero_copy_only=False).astype("float64")
        elif pa.types.is_string(kind):
            columns[name] = pd.array(column.to_numpy(zero_copy_only=False), dtype="str")
        elif pa.types.is_null(kind):
            columns[name] = np.full(len(texts), np.nan)
        else:
            return None
    return pd.DataFrame(columns, index=pd.RangeIndex(len(texts)))


def _typed(values: list[Any]) -> Any:
    """One output column's JSON values as the array type they were written from."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    missing = len(present) < len(values)
    if kinds == {bool}:
        return pd.array(values, dtype="boolean") if missing else np.array(values, dtype=bool)
    if kinds == {int} and all(-(2**63) <= v < 2**63 for v in present):
        return pd.array(values, dtype="Int64") if missing else np.array(values, dtype=np.int64)
    if kinds == {float} or kinds == {float, int}:  # doubles are written with a point or exponent
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if not kinds:  # nothing but nulls: no type is left to give back
        return np.full(len(values), np.nan)
    if kinds == {str}:
        return pd.array(values, dtype="str")
    return np.array(values, dtype=object)


def _sample_records(sample: pd.DataFrame) -> list[dict[str, Any]]:
    """``affected`` sample rows, JSON-ready, each with its outputs as an object (non-finite floats: null)."""
    from rollbackkit.analysis.series import json_safe  # analysis is below serving

    records: list[dict[str, Any]] = json.loads(
        sample.drop(columns="outputs").to_json(orient="records", date_format="iso")
    )
    for record, text in zip(records, sample["outputs"], strict=True):
        record["outputs"] = json_safe(json.loads(text))
    return records
