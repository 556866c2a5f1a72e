"""An input feature binned inside PostgreSQL, by the logs' one SQL rule (as the primary output is).

PostgreSQL cannot read the Arrow input blobs (``log_inputs``), so each blob's columns are kept
beside it as arrays (``log_input_values``, :mod:`~rollbackkit.serving.postgres.values`: ``numbers``
for numeric bins, ``texts`` as :func:`~rollbackkit.analysis.drift_bins.category_text` spells them for
categories and slices, NULL where missing). The writer keeps them in the batch's commit; a read
that finds one missing (a batch written before, or a column binned in its other kind) decodes that
blob once and keeps it. A blob never changes, and its arrays go with it (``ON DELETE CASCADE``: the
log's retention prunes both). Every read counts in SQL: the rows joined to those arrays
(``unnest ... WITH ORDINALITY`` at ``input_at``), grouped by
:func:`~rollbackkit.serving.predlog.binning.counts_sql`, the DuckDB log's own bin rule
(:func:`~rollbackkit.serving.predlog.binning.bin_sql`). Ten million rows never leave the store.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.postgres.values import VALUES_TABLE, ValueRow, array_of, blob_column, copy_rows
from rollbackkit.serving.predlog import binning as b

_STAGED = "rk_values_fill"
"""The read's temporary copy of the table: filled by COPY, then added where still missing."""

COUNT_SETTINGS = (
    "SET LOCAL enable_nestloop = off",  # fresh rows have no statistics: never rows x array elements
    "SET LOCAL enable_sort = off",  # a few thousand cells: hashed, never a sort of every row to disk
    "SET LOCAL jit = off",  # the disabled nested loop's cost would buy ~0.5 s of compiling each read
)
"""The count's planner settings (this transaction only)."""

FILL_CHUNK = 200
"""Blobs fetched and decoded at a time while a column is first kept (bounds the reader's memory)."""

_REFUSED = (
    psycopg.errors.InsufficientPrivilege,  # a read-only reader
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.DeadlockDetected,  # another reader keeping the same blobs
    psycopg.errors.SerializationFailure,  # ... and committed after this read's snapshot
    ValueError,  # a text holding a NUL character
)
"""Why a read cannot keep a column's arrays (it then counts beside the blobs)."""

Wanted = tuple[str, str]
"""A feature and the kind of its array: ``n`` (numbers) or ``t`` (texts)."""


def sql_groups(
    log: Any, con: Any, cur: Any, req: b.BinRequest, rows: tuple[str, list[Any]], tables: dict[str, set[str]],
    pairs: list[tuple[str, str]], span: tuple[int, int],
) -> pd.DataFrame | None:  # fmt: skip
    """Grouped counts (:func:`~rollbackkit.serving.predlog.binning.counts_sql`'s columns) of a
    request that reads a feature, counted in SQL (``rows``: the CTE of the rows, with
    ``inputs_batch`` and ``input_at``, and its parameters; ``pairs``: the ``(signature, batch)``
    blobs they point at; ``span``: the counted range in microseconds). None when the store
    cannot (no such table yet: an older store; the reader may not write it; a column PostgreSQL
    text cannot hold, a NUL in its name or texts; another reader keeping the same blobs now): the
    caller then counts beside the blobs."""
    rows_sql, params = rows
    cur.execute(f"SELECT to_regclass('{VALUES_TABLE}') IS NOT NULL")
    found = cur.fetchone()
    wanted = _wanted(req, tables)
    if not (found and found[0]) or any("\x00" in feature for feature, _ in wanted):
        return None
    try:
        with con.transaction():  # a savepoint: a refused write leaves the read's transaction usable
            for feature, kind in wanted:
                holding = [(t, batch) for t, batch in pairs if feature in tables.get(t, ())]
                _fill(log, cur, holding, feature, kind)
    except _REFUSED:
        return None
    source, extra = _source(req, tables, wanted, pairs)
    counted = b.counts_sql(req, source, span[0], span[1], "postgresql")
    for setting in COUNT_SETTINGS:
        cur.execute(setting)
    cur.execute(f"WITH r AS {rows_sql} {counted}", [*params, *extra])
    names = [column.name for column in cur.description or ()]
    return pd.DataFrame(cur.fetchall(), columns=names)


def _wanted(req: b.BinRequest, tables: dict[str, set[str]]) -> list[Wanted]:
    """The features the request reads, each with the kind of array it is counted from."""
    wanted: list[Wanted] = []
    if b.is_feature(req, req.column, tables):
        wanted.append((req.column, "n" if req.binning.kind == "numeric" else "t"))
    if req.by is not None and b.is_feature(req, req.by, tables) and (req.by, "t") not in wanted:
        wanted.append((req.by, "t"))
    return wanted


def _fill(log: Any, cur: Any, holding: list[tuple[str, str]], feature: str, kind: str) -> None:
    """Keep ``feature`` as an array for each ``(signature, batch)`` blob of ``holding`` that has none yet."""
    if not holding:
        return
    cur.execute(
        f"SELECT k.batch_id, k.signature FROM unnest(%s::text[], %s::text[]) AS k(batch_id, signature) WHERE NOT "
        f"EXISTS (SELECT 1 FROM {VALUES_TABLE} x WHERE x.batch_id = k.batch_id AND x.signature = k.signature AND "
        'x."column" = %s AND x.kind = %s)',
        [[batch for _, batch in holding], [t for t, _ in holding], feature, kind],
    )
    lacking = sorted(cur.fetchall())  # one order for every reader: two keeping the same blobs never deadlock
    if not lacking:
        return
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGED} (LIKE {VALUES_TABLE}) ON COMMIT DROP")
    for start in range(0, len(lacking), FILL_CHUNK):
        chunk = lacking[start : start + FILL_CHUNK]
        pointers = pa.table({"inputs_batch": [p[0] for p in chunk], "inputs_table": [p[1] for p in chunk]})
        blobs = log._blobs(cur, pointers)
        gone = [pair for pair in chunk if tuple(pair) not in blobs]
        if gone:
            raise InvalidInput(f"{len(gone)} input batches of the range are gone.", "The log may have been pruned.")
        kept: list[ValueRow] = []
        for batch, signature in chunk:
            values = blob_column(blobs[(batch, signature)], feature)
            if values is not None:
                kept.append((batch, signature, feature, kind, array_of(values, kind)))
        copy_rows(cur, kept, _STAGED)
    cur.execute(f"INSERT INTO {VALUES_TABLE} SELECT * FROM {_STAGED} ON CONFLICT DO NOTHING")  # another reader's
    cur.execute(f"TRUNCATE {_STAGED}")


def _source(
    req: b.BinRequest, tables: dict[str, set[str]], wanted: list[Wanted], pairs: list[tuple[str, str]]
) -> tuple[str, list[Any]]:
    """``SELECT t_us, s, v`` over the CTE ``r`` (:func:`~rollbackkit.serving.predlog.binning.source_sql`'s
    contract), the features read from the arrays of the rows' blobs (``pairs``, given as parameters:
    ``r`` read once, so never materialised); and the parameters it adds."""
    joins, extra, alias = [], list[Any](), {}
    signatures, batches = [t for t, _ in pairs], [batch for _, batch in pairs]
    for k, (feature, kind) in enumerate(wanted):
        alias[feature] = f"f{k}"
        listed = "numbers" if kind == "n" else "texts"
        joins.append(
            f"LEFT JOIN (SELECT x.batch_id, x.signature, u.val, u.k FROM {VALUES_TABLE} x CROSS JOIN LATERAL "
            f'unnest(x.{listed}) WITH ORDINALITY AS u(val, k) WHERE x."column" = %s AND x.kind = %s AND '
            "(x.batch_id, x.signature) IN (SELECT * FROM unnest(%s::text[], %s::text[]))) "
            f"f{k} ON f{k}.batch_id = r.inputs_batch AND f{k}.signature = r.inputs_table AND f{k}.k = r.input_at + 1"
        )
        extra += [feature, kind, batches, signatures]
    kind_sql = "DOUBLE PRECISION" if req.binning.kind == "numeric" else "TEXT"
    if req.column in alias and b.is_feature(req, req.column, tables):
        value = f"{alias[req.column]}.val"
    elif req.output:
        value = f"CAST({b.output_sql(req.column, 'postgresql', label=kind_sql == 'TEXT')} AS {kind_sql})"
    else:
        value = f"CAST(r.primary_output AS {kind_sql})"
    if req.by is None:
        slice_ = "NULL"
    elif b.is_feature(req, req.by, tables):
        slice_ = f"{alias[req.by]}.val"
    else:
        slice_ = f"CAST(r.{req.by} AS TEXT)"
    return f"SELECT r.t_us, {slice_} AS s, {value} AS v FROM r {' '.join(joins)}", extra
