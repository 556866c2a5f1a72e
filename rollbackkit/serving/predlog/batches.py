"""Queued requests stacked into Arrow tables, one per signature: what a batch commits.

Arrow, not pandas: DuckDB scans an Arrow table without sniffing object columns (see
``bench/sideeffects.py`` and ``bench/results/sideeffects.json`` for what a batch costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.serving.predlog.arrowed import frame_table
from rollbackkit.serving.predlog.schema import COMPUTED_IN_SQL, PER_ROW, ROW_COLUMNS, inputs_table


@dataclass
class Pending:
    """One request's rows, queued for the writer (see :meth:`PredictionLog.record`)."""

    meta: dict[str, Any]
    inputs: pd.DataFrame
    outputs: pd.DataFrame | None


ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_()}
"""The Arrow type a per-request field of each SQL type is stacked as."""

META_TYPES = {
    **{
        name: ARROW_TYPES[kind]
        for name, kind in ROW_COLUMNS.items()
        if name not in PER_ROW and name not in COMPUTED_IN_SQL
    },
    "staged": pa.bool_(),
    "shadow": pa.bool_(),
}
"""Per-request fields of a queued record, as Arrow types (repeated for each of its rows): the
row columns (:data:`~rollbackkit.serving.predlog.schema.ROW_COLUMNS`) that are neither per row
nor computed in SQL, read from the record's ``meta``, and ``staged`` and ``shadow`` (which table the
rows go to)."""


@dataclass
class Group:
    """Queued requests with one input and output signature, stacked as one Arrow table.

    ``table`` holds the :data:`META_TYPES` fields plus ``row``, ``time`` and
    ``primary_output``, then the inputs as ``i0..`` and the outputs as ``o0..`` (the
    names of those are in ``inputs`` and ``outputs``). ``staged`` counts the rows that
    go to ``predictions_staging``, ``shadow`` those that go to ``predictions_shadow``.
    """

    table: pa.Table
    inputs: list[str]
    outputs: list[str]
    inputs_table: str
    staged: int
    shadow: int = 0


def groups(pending: list[Pending]) -> list[Group]:
    """Queued requests stacked into tables, one per signature (input and output columns and
    dtypes, primary output): stacking never casts one request's outputs to another's type."""
    buckets: dict[tuple[Any, ...], list[Pending]] = {}
    for item in pending:
        outputs = item.outputs
        out_cols = (tuple(outputs.columns.tolist()), tuple(outputs.dtypes.tolist())) if outputs is not None else ()
        # tolist(): iterating an Index or str()-ing dtypes is slow, per frame
        signature = (
            tuple(item.inputs.columns.tolist()),
            tuple(item.inputs.dtypes.tolist()),
            out_cols,
            item.meta.get("primary"),
        )
        buckets.setdefault(signature, []).append(item)
    return [group(items) for items in buckets.values()]


def group(items: list[Pending]) -> Group:
    """One signature's requests as one table (see :class:`Group`)."""
    sizes = np.fromiter((len(p.inputs) for p in items), dtype="int64", count=len(items))
    inputs = _stack([p.inputs for p in items])
    outputs = _stack([p.outputs if p.outputs is not None else pd.DataFrame(index=range(len(p.inputs))) for p in items])
    owner = pa.array(np.repeat(np.arange(len(items)), sizes))
    columns = {
        field: pa.array([p.meta.get(field) for p in items], kind).take(owner) for field, kind in META_TYPES.items()
    }
    columns["row"] = pa.array(np.arange(len(inputs)) - np.repeat(np.cumsum(sizes) - sizes, sizes), pa.int32())
    times = pd.to_datetime([p.meta["time"] for p in items], utc=True)  # UTC values, typed UTC (pandas 4-proof)
    columns["time"] = pa.array(times.tz_convert(None).to_numpy(), type=pa.timestamp(times.unit, tz="UTC")).take(owner)
    columns["primary_output"] = primary_numbers(outputs, items[0].meta.get("primary"))
    arrow_inputs, arrow_outputs = _arrow(inputs), _arrow(outputs)
    columns.update({f"i{k}": arrow_inputs.column(k) for k in range(arrow_inputs.num_columns)})
    columns.update({f"o{k}": arrow_outputs.column(k) for k in range(arrow_outputs.num_columns)})
    staged = int(sum(size for size, p in zip(sizes, items, strict=True) if p.meta.get("staged")))
    shadow = int(sum(size for size, p in zip(sizes, items, strict=True) if p.meta.get("shadow")))
    return Group(
        pa.table(columns),
        [str(c) for c in inputs.columns],
        [str(c) for c in outputs.columns],
        inputs_table(inputs),
        staged,
        shadow,
    )


def primary_numbers(outputs: pd.DataFrame, primary: str | None) -> pa.Array:
    """The ``primary_output`` column: a numeric copy of the primary output, or null.

    Only numbers and booleans (as 0/1) are copied; a class label that is text stays only
    in ``outputs`` (typed JSON), so no output type can make a batch fail. Missing and NaN
    values are null.
    """
    column = outputs[primary] if primary is not None and primary in outputs.columns else None
    if isinstance(column, pd.DataFrame):  # a repeated column name: the last one, as a frame would show
        column = column.iloc[:, -1]
    if column is not None and column.dtype.kind not in "biuf":  # object columns of numbers count too
        kind = pd.api.types.infer_dtype(column, skipna=True)
        column = pd.to_numeric(column) if kind in ("integer", "floating", "mixed-integer-float", "boolean") else None
    if column is None or column.dtype.kind not in "biuf":
        return pa.nulls(len(outputs), pa.float64())
    return pa.array(column.to_numpy(dtype="float64", na_value=np.nan), pa.float64(), from_pandas=True)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0].reset_index(drop=True) if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as Arrow in one chunk per column; object columns Arrow cannot type go as text.

    One chunk: text columns stacked from many requests arrive in one chunk per request,
    and DuckDB scans a column of thousands of one-row chunks slowly.
    """
    frame = frame.set_axis([f"c{k}" for k in range(frame.shape[1])], axis=1)  # names may repeat or be numbers
    return frame_table(frame).combine_chunks()
