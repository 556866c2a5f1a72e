"""The store's ``binned`` counts: SQL in PostgreSQL for the primary output, labels and input features.

An input feature is counted in SQL from the blobs' columns kept as arrays
(:mod:`rollbackkit.serving.postgres.binned_sql`); a store that has no such table yet (or a reader
that may not write it) counts beside the input blobs instead (numpy, in the process holding the
store connection). The rows and rule are :mod:`rollbackkit.serving.predlog.binning`'s, the answer
:mod:`rollbackkit.serving.predlog.binned_answer`'s, so both logs count alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.analysis.drift_series import bin_index, category_text, is_missing
from rollbackkit.serving.postgres.binned_sql import sql_groups
from rollbackkit.serving.postgres.blobs import scored_inputs
from rollbackkit.serving.postgres.frames import blob_table, result_table
from rollbackkit.serving.postgres.values import texts
from rollbackkit.serving.predlog import binning as b
from rollbackkit.serving.predlog.binned_answer import answer

_DIALECT = "postgresql"


def pg_binned(log: Any, req: b.BinRequest) -> dict[str, Any]:
    """Counts per slice, window and bin of ``req`` over every replica's rows in the store (``log``:
    the store's :class:`~rollbackkit.serving.postgres.reads.PgLogReads`, its ``_tx`` and ``_blobs``)."""
    rows, params = b.rows_sql(req, "%s", _DIALECT)
    rows = rows.replace("inputs_table, primary_output", "inputs_table, inputs_batch, input_at, primary_output")
    with log._tx(long=True) as con, con.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # every pass counts the same rows
        cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these scans (~0.5 s a query)
        cur.execute(_first_pass(rows), params)
        found = cur.fetchall()
        pairs = [(t, batch) for t, batch, _, _ in found if t is not None and batch is not None]
        latest = list({t: batch for t, batch in sorted(pairs)}.items())  # each signature's newest blob
        tables = _columns(log, cur, latest)
        b.check_columns(req, tables)
        span = b.time_range(req, lambda: _first_last(found))
        if span is None:
            return answer(req, pd.DataFrame(), None, None)
        lo, hi = span
        if not (b.is_feature(req, req.column, tables) or b.is_feature(req, req.by, tables)):
            source = b.source_sql(req, tables, _DIALECT)
            cur.execute(f"WITH r AS {rows} {b.counts_sql(req, source, lo, hi, _DIALECT)}", params)
            named = [column.name for column in cur.description or ()]
            return answer(req, pd.DataFrame(cur.fetchall(), columns=named), lo, hi)
        grouped = sql_groups(log, con, cur, req, (rows, params), tables, pairs, (lo, hi))  # counted in the store
        if grouped is not None:
            return answer(req, grouped, lo, hi)
        label = req.binning.kind == "categorical"
        output = f", {b.output_sql(req.column, _DIALECT, label=label)} AS o" if req.output else ""
        cur.execute(
            f"WITH r AS {rows} SELECT t_us, version, deployment, inputs_batch, inputs_table, input_at, "
            f"primary_output{output} FROM r ORDER BY inputs_batch, inputs_table, input_at",
            params,
        )
        description, fetched = cur.description or (), cur.fetchall()
        if not fetched:
            return answer(req, pd.DataFrame(), lo, hi)
        keys = result_table(description, fetched)
        blobs = log._blobs(cur, keys)
    return answer(req, b.reduce_categories(req, _feature_groups(req, keys, blobs, tables, lo, hi)), lo, hi)


def _first_pass(rows: str) -> str:
    """One pass over the rows: the blobs they point at, and each one's first and last time in
    microseconds, taken of the rows' ``time`` (the same integers, converted twice a blob rather
    than once a row: half the pass at 10M rows)."""
    micros = f"{b.PG_MICROS} AS t_us"
    if micros not in rows:  # the rows' SQL changed: convert every row, as the count does
        return f"WITH r AS {rows} SELECT inputs_table, inputs_batch, min(t_us), max(t_us) FROM r GROUP BY 1, 2"
    first, last = (b.PG_MICROS.replace("FROM time", f"FROM {f}(t)") for f in ("min", "max"))
    plain = rows.replace(micros, "time AS t")
    return f"WITH r AS {plain} SELECT inputs_table, inputs_batch, {first}, {last} FROM r GROUP BY 1, 2"


def _first_last(found: list[tuple[Any, ...]]) -> tuple[Any, Any]:
    """The first and last time of the rows (None, None: no row) from the grouped pass."""
    firsts, lasts = [f for *_, f, _ in found if f is not None], [x for *_, x in found if x is not None]
    return (min(firsts), max(lasts)) if firsts else (None, None)


def _columns(log: Any, cur: Any, latest: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Each signature's feature names, read from the newest blob of it among the rows."""
    if not latest:
        return {}
    pointers = pa.table({"inputs_batch": [x[1] for x in latest], "inputs_table": [x[0] for x in latest]})
    blobs = log._blobs(cur, pointers)
    return {table: set(blob_table(blobs[(batch, table)])[1]) for table, batch in latest if (batch, table) in blobs}


def _feature_groups(
    req: b.BinRequest,
    keys: pa.Table,
    blobs: dict[tuple[str, str], bytes],
    tables: dict[str, set[str]],
    lo: int,
    hi: int,
) -> pd.DataFrame:
    """Grouped counts (``s``, ``w`` the equal window, ``b``, ``n``; ``total``: the sum of finite values;
    ``u``: a value of the ``(other)`` category bin, as text) from the decoded inputs (summed as the
    SQL sums them by :func:`~rollbackkit.serving.predlog.binning.reduce_categories`)."""
    frame = scored_inputs(keys, blobs)
    n = len(frame)
    if req.output:  # sliced by a feature: the output comes along with the rows
        values = pd.Series(keys["o"].to_pylist(), dtype=object)
    elif req.column == b.PRIMARY:
        values = pd.Series(keys["primary_output"].to_numpy(zero_copy_only=False), dtype="float64")
    elif req.column in frame.columns:
        values = _spelled(frame[req.column])
    else:
        values = pd.Series([None] * n, dtype=object)
    numbers, other = np.zeros(n), pd.Series([None] * n, dtype=object)
    if req.binning.kind == "numeric":
        numbers = pd.Series(values).to_numpy(dtype="float64", na_value=np.nan)
        bins = bin_index(numbers, req.binning)
    else:
        raw = pd.Series(values).astype(object).to_numpy()
        bins = bin_index(raw, req.binning)
        past = np.flatnonzero(bins == len(req.binning.categories))
        other.iloc[past] = [category_text(v) for v in raw[past]]
    if req.by is None:
        slices: Any = [None] * n
    elif b.is_feature(req, req.by, tables):
        slices = [None if is_missing(v) else category_text(v) for v in _spelled(frame[req.by]).astype(object)]
    else:
        slices = keys[req.by].to_pylist()
    t_us = keys["t_us"].to_numpy().astype("int64")
    groups = pd.DataFrame(
        {
            "s": pd.Series(slices, dtype=object),
            "w": b.window_index(t_us, lo, hi, req.windows),
            "b": np.where(bins < 0, np.nan, bins),
            "total": np.where(np.isfinite(numbers), numbers, 0.0),
            "u": other,
        }
    )
    cells = groups.groupby(["s", "w", "b", "u"], dropna=False, sort=False)
    return cells.size().rename("n").to_frame().join(cells["total"].sum()).reset_index()


def _spelled(column: pd.Series) -> pd.Series:
    """Datetimes as the SQL counts read them (:func:`~rollbackkit.serving.postgres.values.texts`:
    NaT missing, DuckDB's spelling); any other column as it is."""
    return pd.Series(texts(column), dtype=object) if pd.api.types.is_datetime64_any_dtype(column.dtype) else column
