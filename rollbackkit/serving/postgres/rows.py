"""A batch of queued requests: COPY-ready rows (one :class:`Part` per input signature), and its write.

A part holds the signature's inputs as one Arrow IPC blob (``log_inputs``), each of its columns
as the array SQL counts read (``log_input_values``, :mod:`~rollbackkit.serving.postgres.values`),
and its rows as one Arrow table in the row tables' column order, built once per batch (a retried
batch reuses it). Which table a row goes to and its status are decided inside the batch's transaction
(:func:`placed`), from the stages and quarantines read there.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from pandas.api.types import union_categoricals

from rollbackkit.serving.postgres.encode import input_hashes, inputs_blob, outputs_texts
from rollbackkit.serving.postgres.schema import PG_ROW_COLUMNS
from rollbackkit.serving.postgres.values import VALUES_TABLE, ValueRow, copy_rows, frame_rows
from rollbackkit.serving.predlog.batches import Pending, primary_numbers
from rollbackkit.serving.predlog.schema import inputs_table, quote

COPY_COLUMNS = list(PG_ROW_COLUMNS)
"""The row tables' columns, in table order: what COPY writes."""

COPY_LIST = ", ".join(quote(name) for name in COPY_COLUMNS)

_META_TEXT = ("request_id", "env", "name", "version", "bundle_id", "slot", "deployment", "error", "key")


@dataclass
class Part:
    """One input signature's requests of a batch: its inputs blob and its rows."""

    signature: str
    """The input signature (``inputs_table`` of the rows; ``log_inputs.signature``)."""
    blob: bytes
    table: pa.Table
    """The rows in :data:`COPY_COLUMNS` order (``status`` null until :func:`placed`)."""
    items: list[Pending]
    owner: np.ndarray
    """The index in ``items`` of each row's request."""
    values: list[ValueRow]
    """Each input column as its kept array (written in the batch's transaction)."""


def parts(pending: list[Pending], batch_id: str, replica: str) -> list[Part]:
    """The batch's requests as parts, one per input signature (:func:`inputs_table`: column names
    and dtypes as text), so no two parts of a batch share ``log_inputs (batch_id, signature)``.

    Requests are bucketed by their dtype objects first (cheap), then buckets whose signature text
    is the same (categories differing, say) are stacked into one part (:func:`stacked`).
    """
    buckets: dict[tuple[Any, ...], list[Pending]] = {}
    for item in pending:
        key = (tuple(item.inputs.columns), dtypes(item.inputs))
        buckets.setdefault(key, []).append(item)
    same: dict[str, list[list[Pending]]] = {}
    for items in buckets.values():
        same.setdefault(inputs_table(items[0].inputs), []).append(items)
    out = []
    for signature, groups in same.items():
        for items, inputs in stacked(groups):
            out.append(_part(items, inputs, signature, batch_id, replica))
    return out


def stacked(groups: list[list[Pending]]) -> list[tuple[list[Pending], pd.DataFrame]]:
    """Buckets of one signature as one frame of their requests' inputs (in their order), column by
    column: categoricals are united (:func:`united`), other columns stacked as pandas does; the
    first bucket's column names are kept (the same as text, as the signature says).

    A categorical column that cannot be united (categories of different types) keeps its buckets
    apart: they then share a key and the writer splits the batch (slower, nothing lost).
    """
    frames = [_stack([p.inputs for p in items]) for items in groups]
    if len(frames) == 1:
        return [(groups[0], frames[0])]
    columns = []
    for at in range(frames[0].shape[1]):
        column = [frame.iloc[:, at] for frame in frames]
        categorical = all(isinstance(c.dtype, pd.CategoricalDtype) for c in column)
        try:
            columns.append(united(column) if categorical else pd.concat(column, ignore_index=True))
        except TypeError:
            return [(items, frame) for items, frame in zip(groups, frames, strict=True)]
    inputs = pd.concat(columns, axis=1, ignore_index=True).set_axis(frames[0].columns, axis=1)
    return [([item for items in groups for item in items], inputs)]


def united(columns: list[pd.Series]) -> pd.Series:
    """Categorical columns as one, every value exact: their categories united in first-seen order;
    ordered when all are ordered over the same categories in the same order, unordered else (a
    batch holding two orders has no one order).

    Raises:
        TypeError: the categories have different types (columns with no category take the others' type).
    """
    values = [column.array for column in columns]
    typed = [v.categories.dtype for v in values if len(v.categories)]
    if typed:  # no category (every value missing): untyped categories, typed as the others' here
        values = [v if len(v.categories) else v.set_categories(pd.Index([], dtype=typed[0])) for v in values]
    ignore = any(v.dtype != values[0].dtype for v in values)
    return pd.Series(union_categoricals(values, ignore_order=ignore), copy=False)


def dtypes(frame: pd.DataFrame) -> tuple[Any, ...]:
    """``frame``'s column dtypes, fast: ``frame.dtypes`` builds a Series (10 us a request, half a
    batch's cost for one-row requests); the block manager's list is the same, without it."""
    try:
        return tuple(frame._mgr.get_dtypes().tolist())
    except AttributeError:  # a pandas without it
        return tuple(frame.dtypes.tolist())


def _part(items: list[Pending], inputs: pd.DataFrame, signature: str, batch_id: str, replica: str) -> Part:
    sizes = np.fromiter((len(p.inputs) for p in items), dtype="int64", count=len(items))
    starts = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(len(items)), sizes)
    total = int(sizes.sum())
    texts, primary = _outputs(items, sizes, starts, total)
    take = pa.array(owner)
    times = pd.to_datetime([p.meta["time"] for p in items], utc=True)
    columns: dict[str, pa.Array] = {
        name: pa.array([_text(p.meta.get(name)) for p in items], pa.string()).take(take) for name in _META_TEXT
    }
    columns["row"] = pa.array(np.arange(total) - np.repeat(starts, sizes), pa.int32())
    columns["time"] = pa.array(times.tz_convert(None).to_numpy(), pa.timestamp(times.unit, tz="UTC")).take(take)
    columns["latency_ms"] = pa.array([p.meta.get("latency_ms") for p in items], pa.float64()).take(take)
    columns["input_hash"] = pa.array(input_hashes(inputs), pa.string())
    columns["inputs_table"] = pa.array([signature] * total, pa.string())
    columns["outputs"] = pa.array(texts, pa.string())
    columns["primary_output"] = pa.array(primary, pa.float64(), from_pandas=True)
    columns["status"] = pa.nulls(total, pa.string())
    columns["replaces"] = pa.nulls(total, pa.string())
    columns["batch_id"] = columns["inputs_batch"] = pa.array([batch_id] * total, pa.string())
    columns["replica"] = pa.array([replica] * total, pa.string())
    columns["input_at"] = pa.array(np.arange(total), pa.int32())
    table = pa.table({name: columns[name] for name in COPY_COLUMNS})
    blob = inputs_blob(inputs)
    return Part(signature, blob, table, items, owner, frame_rows(inputs, batch_id, signature, blob))


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0].reset_index(drop=True) if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _outputs(items: list[Pending], sizes: np.ndarray, starts: np.ndarray, total: int) -> tuple[list[Any], np.ndarray]:
    """Each row's outputs JSON text and primary number, stacked per output signature."""
    buckets: dict[tuple[Any, ...], list[int]] = {}
    for k, item in enumerate(items):
        out = item.outputs
        cols = (tuple(out.columns), dtypes(out)) if out is not None else ()
        buckets.setdefault((cols, item.meta.get("primary")), []).append(k)
    texts: list[Any] = [None] * total
    primary = np.full(total, np.nan)
    for (_, name), members in buckets.items():
        frames = [_outputs_of(items[k]) for k in members]
        outputs = _stack(frames)
        if len(members) == len(items):
            at = np.arange(total)
        else:
            at = np.concatenate([np.arange(starts[k], starts[k] + sizes[k]) for k in members])
        bucket_texts = outputs_texts(outputs, len(outputs))
        for position, text in zip(at.tolist(), bucket_texts, strict=True):
            texts[position] = text
        primary[at] = primary_numbers(outputs, name).to_numpy(zero_copy_only=False)
    return texts, primary


def _outputs_of(item: Pending) -> pd.DataFrame:
    return item.outputs if item.outputs is not None else pd.DataFrame(index=range(len(item.inputs)))


def placed(part: Part, where: Callable[[Pending], tuple[str, str]]) -> dict[str, bytes]:
    """The part's rows as CSV for COPY, per row table; ``where(item)`` gives ``(table, status)``."""
    decided = [where(item) for item in part.items]
    tables = np.array([d[0] for d in decided], dtype=object)[part.owner]
    statuses = pa.array([d[1] for d in decided], pa.string()).take(pa.array(part.owner))
    rows = part.table.set_column(COPY_COLUMNS.index("status"), "status", statuses)
    out = {}
    targets = list(dict.fromkeys(tables.tolist()))
    for table in targets:
        chosen = rows if len(targets) == 1 else rows.filter(pa.array(tables == table))
        sink = io.BytesIO()
        pa_csv.write_csv(chosen, sink, pa_csv.WriteOptions(include_header=False))
        out[str(table)] = sink.getvalue()
    return out


TABLE_OF = {"staging": "predictions_staging", "shadow": "predictions_shadow"}
"""The row table of a stage (any other stage: ``predictions``)."""


def write(con: psycopg.Connection[Any], batch_id: str, size: int, replica: str, parts: list[Part]) -> bool:
    """Write one batch inside ``con``'s open transaction; False when ``log_batches`` already has it.

    The batch's row first (a batch committed before a lost connection is skipped: exactly once),
    then where each request goes (:func:`placement`), then one inputs blob per part, its columns
    as arrays (when the store has their table) and its rows, by COPY.
    """
    fresh = con.execute(
        "INSERT INTO log_batches (batch_id, rows, written, replica) VALUES (%s, %s, now(), %s) "
        f"ON CONFLICT (batch_id) DO NOTHING RETURNING to_regclass('{VALUES_TABLE}') IS NOT NULL",
        (batch_id, size, replica),
    ).fetchone()
    if fresh is None:
        return False
    where = placement(con, [item for part in parts for item in part.items])
    for part in parts:
        con.execute(
            "INSERT INTO log_inputs (batch_id, signature, arrow) VALUES (%s, %s, %s)",
            (batch_id, part.signature, part.blob),
        )
        if fresh[0]:  # an older store without the table: a read keeps them on first use
            with con.cursor() as cur:
                copy_rows(cur, part.values)
        for table, data in placed(part, where).items():
            with con.cursor() as cur, cur.copy(f"COPY {table} ({COPY_LIST}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(data)
    return True


def placement(con: psycopg.Connection[Any], items: list[Pending]) -> Callable[[Pending], tuple[str, str]]:
    """``item -> (table, status)`` from the stages and quarantines as they stand now, read
    ``FOR SHARE`` (a promote or quarantine running now waits for this batch, or it waits for them)."""
    deployments = sorted({str(item.meta["deployment"]) for item in items})
    stages = dict(
        con.execute(
            "SELECT deployment, stage FROM log_deployments WHERE deployment = ANY(%s) FOR SHARE", (deployments,)
        ).fetchall()
    )
    names = sorted({str(item.meta["name"]) for item in items})
    quarantined = {
        tuple(row)
        for row in con.execute(
            "SELECT name, env, version FROM log_quarantine WHERE name = ANY(%s) FOR SHARE", (names,)
        ).fetchall()
    }

    def where(item: Pending) -> tuple[str, str]:
        meta = item.meta
        table = TABLE_OF.get(str(stages.get(meta["deployment"], "production")), "predictions")
        late = (meta["name"], meta["env"], meta["version"]) in quarantined
        return table, "quarantined" if late else "ok"

    return where
