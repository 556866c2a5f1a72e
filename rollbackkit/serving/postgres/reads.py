"""Reading the PostgreSQL log: gate windows, affected rows, preflight's recent inputs, queries.

Every answer has the DuckDB log's shape: the same columns and dtypes
(:mod:`~rollbackkit.serving.postgres.frames`), the same dicts, the same errors. A window
reads its newest rows per row table through the ``(name, env, deployment, time)`` index, the
latest label of each (only the window's rows' labels are aggregated), then only the input blobs
its rows point at (``log_inputs`` at ``(inputs_batch, inputs_table)``, row ``input_at``).
Every replica's rows are read; a read first flushes this process's own writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.postgres.blobs import BlobCache, scored_inputs, window_inputs
from rollbackkit.serving.postgres.frames import DuckFrames, result_table
from rollbackkit.serving.postgres.logbase import PgLogBase
from rollbackkit.serving.predlog.queries import _sample_records, window_frame
from rollbackkit.serving.predlog.schema import COLUMN_LIST, PRODUCTION_VIEW, SHADOW_TABLE, TABLES

NEWEST = 'time DESC, request_id COLLATE "C" DESC, "row" DESC'
"""Newest first, ties broken as DuckDB breaks them (request ids compared byte by byte)."""

OLDEST = 'time, request_id COLLATE "C", "row"'
"""Oldest first (see :data:`NEWEST`)."""

READ_FLUSH_WAIT = 10.0
"""Seconds a read waits for this process's queued rows to be committed before reading without them."""

WORK_MEM = "64MB"
"""Sort memory of one window read (20,000 rows with their outputs sort on disk at PostgreSQL's 4 MB)."""

_WINDOW_COLUMNS = 'request_id, "row", time, "key", inputs_table, outputs, latency_ms, error, inputs_batch, input_at'


def row_filter(
    name: str, env: str, *, deployment: str | None = None, version: str | None = None, since: str | None = None
) -> tuple[str, list[Any]]:
    """A WHERE clause (and parameters) for original rows of ``name`` in ``env``."""
    where = "name = %s AND env = %s AND replaces IS NULL"
    params: list[Any] = [name, env]
    for column, value in (("deployment", deployment), ("version", version)):
        if value is not None:
            where += f" AND {column} = %s"
            params.append(value)
    if since:
        where += " AND time >= CAST(%s AS TIMESTAMPTZ)"
        params.append(since)
    return where, params


class PgLogReads(PgLogBase):
    """The PostgreSQL log's read side (on top of :class:`~rollbackkit.serving.postgres.logbase.PgLogBase`)."""

    if TYPE_CHECKING:

        def flush(self, timeout: float = 30.0) -> bool:
            """This process's queued rows committed (the writer's)."""
            ...

    @property
    def _duck(self) -> DuckFrames:
        frames: DuckFrames | None = getattr(self, "_duck_frames", None)
        if frames is None:
            frames = self._duck_frames = DuckFrames()
        return frames

    def _settle(self) -> None:
        """Commit this process's queued rows first, so a read sees them (nothing to do without a writer)."""
        flush = getattr(self, "flush", None)
        if flush is not None:
            flush(READ_FLUSH_WAIT)  # a store that stays away fails the read itself, a moment later

    def _typed(
        self, sql: str, params: Sequence[Any] = (), *, read_only: bool = False, long: bool = False
    ) -> pd.DataFrame:
        """A read as the frame DuckDB would give for the same columns (``read_only``: in a
        read-only transaction, so the SQL cannot change anything; ``long``: an operator's bulk
        read, allowed a long statement, see :meth:`_tx`)."""
        with self._tx(long=long) as con, con.cursor() as cur:
            if read_only:
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(sql, params)  # type: ignore[arg-type]  # SQL built by the log or its callers
            description, rows = cur.description or (), cur.fetchall()
        return self._duck.frame(result_table(description, rows))

    def window(
        self,
        name: str,
        env: str,
        *,
        deployment: str | None = None,
        version: str | None = None,
        limit: int = WINDOW_ROWS,
        since: str | None = None,
        until: str | None = None,
        answered: bool = False,
        sent: bool = False,
    ) -> pd.DataFrame:
        """The latest ``limit`` rows of a deployment (or version) as a gate window, oldest first:
        the DuckDB log's window (:meth:`~rollbackkit.serving.predlog.queries.LogReader.window`), column
        for column and dtype for dtype, over every replica's rows."""
        self._settle()
        where, params = row_filter(name, env, deployment=deployment, version=version, since=since)
        if until:
            where += " AND time <= CAST(%s AS TIMESTAMPTZ)"
            params.append(until)
        if answered:  # failed requests left out before the limit
            where += " AND error IS NULL"
        shadow = deployment is not None and self.stage_of(deployment) == "shadow"
        tables = (SHADOW_TABLE,) if shadow else TABLES
        n = int(limit)
        newest = " UNION ALL ".join(
            f"(SELECT {_WINDOW_COLUMNS} FROM {t} WHERE {where} ORDER BY {NEWEST} LIMIT {n})" for t in tables
        )
        sql = (
            f"WITH w AS (SELECT * FROM ({newest}) u ORDER BY {NEWEST} LIMIT {n}), "
            'l AS (SELECT DISTINCT ON (l.request_id, l."row") l.request_id, l."row", l.label FROM labels l '
            "WHERE l.name = %s AND l.env = %s AND EXISTS (SELECT 1 FROM w WHERE w.request_id = l.request_id "
            'AND w."row" = l."row") ORDER BY l.request_id, l."row", l.seq DESC) '
            'SELECT w.request_id, w."row", w.time, w."key", w.inputs_table, w.outputs, w.latency_ms, w.error, '
            "l.label, w.inputs_batch, w.input_at FROM w "
            'LEFT JOIN l ON l.request_id = w.request_id AND l."row" = w."row" '
            'ORDER BY w.time, w.request_id COLLATE "C", w."row"'
        )
        with self._tx() as con, con.cursor() as cur:
            cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # a window's sorts stay in memory
            cur.execute(sql, [*params * len(tables), name, env])  # type: ignore[arg-type]
            description, fetched = cur.description or (), cur.fetchall()
            if not fetched:
                return pd.DataFrame()
            where_from = result_table(description, fetched)
            blobs = self._blobs(cur, where_from)
        rows = self._duck.frame(where_from.drop_columns(["inputs_batch", "input_at"]))
        features = {
            signature: self._duck.frame(part, as_table=True)
            for signature, part in window_inputs(where_from, blobs).items()
        }
        return window_frame(rows, features, sent=sent)

    def _blobs(self, cur: Any, rows: pa.Table) -> dict[tuple[str, str], bytes]:
        """The input blobs the rows point at (and no other), by ``(batch, signature)``: from the cache
        (a blob never changes), the rest fetched in one query."""
        cache = self._blob_cache
        pairs = {
            (b, s)
            for b, s in zip(rows["inputs_batch"].to_pylist(), rows["inputs_table"].to_pylist(), strict=True)
            if b is not None and s is not None
        }
        found = {pair: blob for pair in pairs if (blob := cache.get(pair)) is not None}
        wanted = sorted(pairs - found.keys())
        if wanted:
            batch_ids, signatures = zip(*wanted, strict=True)
            cur.execute(
                "SELECT i.batch_id, i.signature, i.arrow FROM log_inputs i JOIN unnest(%s::text[], %s::text[]) "
                "AS k(batch_id, signature) ON i.batch_id = k.batch_id AND i.signature = k.signature",
                [list(batch_ids), list(signatures)],
            )
            for batch_id, signature, blob in cur.fetchall():
                found[(batch_id, signature)] = cache.put((batch_id, signature), bytes(blob))
        return found

    @property
    def _blob_cache(self) -> BlobCache:
        cache: BlobCache | None = getattr(self, "_blobs_kept", None)
        if cache is None:
            cache = self._blobs_kept = BlobCache()
        return cache

    def recent_inputs(self, name: str, env: str, limit: int = 2000) -> pd.DataFrame | None:
        """The inputs of the newest ``limit`` scored rows of ``name`` in ``env`` (every replica's,
        served answers only: no failed request, no shadow), oldest first, in the dtypes scored; None
        before the first. What preflight checks a new version against."""
        self._settle()
        where, params = row_filter(name, env)
        where += " AND error IS NULL"
        n = int(limit)
        newest = " UNION ALL ".join(
            f'(SELECT time, request_id, "row", inputs_batch, inputs_table, input_at FROM {t} WHERE {where} '
            f"ORDER BY {NEWEST} LIMIT {n})"
            for t in TABLES
        )
        sql = f"SELECT inputs_batch, inputs_table, input_at FROM (SELECT * FROM ({newest}) u "
        sql += f"ORDER BY {NEWEST} LIMIT {n}) r"
        with self._tx() as con, con.cursor() as cur:
            cur.execute(f"{sql} ORDER BY {OLDEST}", params * len(TABLES))  # type: ignore[arg-type]
            description, fetched = cur.description or (), cur.fetchall()
            if not fetched:
                return None
            keys = result_table(description, fetched)
            blobs = self._blobs(cur, keys)
        return scored_inputs(keys, blobs)

    def inputs(self, keys: pd.DataFrame) -> pd.DataFrame:
        """The stored inputs of rows ``keys`` (``inputs_batch``, ``inputs_table``, ``input_at``), in
        order and in the dtypes scored (what a backfill re-scores)."""
        tables = keys["inputs_table"].unique()
        if len(tables) != 1:
            raise InvalidInput("Rows from different input schemas cannot be read as one frame.", "Group by table.")
        table = pa.Table.from_pandas(
            keys[["inputs_batch", "inputs_table", "input_at"]].reset_index(drop=True), preserve_index=False
        )
        with self._tx() as con, con.cursor() as cur:
            blobs = self._blobs(cur, table)
        return scored_inputs(table, blobs)

    def affected(
        self, name: str, env: str, version: str, since: str | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """Rows a version wrote in ``env`` (since ``since``), every replica's: the DuckDB log's answer
        (:meth:`~rollbackkit.serving.predlog.queries.LogReader.affected`)."""
        self._settle()
        where, params = row_filter(name, env, version=version, since=since)
        totals = {"rows": 0, "quarantined": 0, "backfilled": 0}
        tables, first, last = [], None, None
        with self._tx(long=True) as con:
            for table in TABLES:
                rows, quarantined, backfilled, lo, hi = con.execute(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'quarantined'), "
                    f"count(*) FILTER (WHERE status = 'backfilled'), min(time), max(time) FROM {table} WHERE {where}",
                    params,  # type: ignore[arg-type]
                ).fetchone() or (0, 0, 0, None, None)
                if rows:
                    tables.append({"table": table, "rows": int(rows)})
                    for key, value in (("rows", rows), ("quarantined", quarantined), ("backfilled", backfilled)):
                        totals[key] += int(value)
                    first = lo if first is None or lo < first else first
                    last = hi if last is None or hi > last else last
            shadow = con.execute(f"SELECT count(*) FROM {SHADOW_TABLE} WHERE {where}", params).fetchone()  # type: ignore[arg-type]
        sample = self._typed(
            f'SELECT request_id, "row", time, deployment, status, outputs FROM ('
            f"SELECT * FROM predictions WHERE {where} UNION ALL SELECT * FROM predictions_staging WHERE {where}) a "
            f"ORDER BY {OLDEST} LIMIT {int(limit)}",
            params + params,
        )
        return {
            "name": name,
            "env": env,
            "version": version,
            **totals,
            "first": _local(first),
            "last": _local(last),
            "tables": tables,
            "sample": _sample_records(sample),
            "shadow_rows": int(shadow[0]) if shadow else 0,
        }

    def binned(
        self,
        name: str,
        env: str,
        column: str,
        edges: list[Any],
        start: str | None = None,
        end: str | None = None,
        windows: int = 24,
        by: str | None = None,
        versions: list[str] | None = None,
        output: bool = False,
        known: list[str] | None = None,
        cuts: list[int] | None = None,
    ) -> dict[str, Any]:
        """Counts per slice, time window and bin of one column, every replica's rows (the DuckDB
        log's answer: :meth:`~rollbackkit.serving.predlog.queries.LogReader.binned`)."""
        from rollbackkit.serving.postgres.binned import pg_binned
        from rollbackkit.serving.predlog.binning import BinRequest

        self._settle()
        req = BinRequest.of(name, env, column, edges, start, end, windows, by, versions, output, known, cuts)
        return pg_binned(self, req)

    def production(self, name: str | None = None) -> pd.DataFrame:
        """What downstream consumers see: the production view (every replica's rows)."""
        self._settle()
        sql = f"SELECT {COLUMN_LIST} FROM {PRODUCTION_VIEW}"
        return self._typed(sql if name is None else f"{sql} WHERE name = %s", [] if name is None else [name], long=True)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query against the log (after flushing), typed as the DuckDB log types it.

        ``sql`` takes ``?`` parameters, as the DuckDB log's :meth:`query` does, so a caller writes
        its (portable) SQL once for both backends.
        """
        self._settle()
        return self._typed(qmark(sql), params or [], read_only=True, long=True)


def qmark(sql: str) -> str:
    """``?`` parameters (outside quotes) as psycopg's ``%s``, a literal ``%`` doubled."""
    out, quote = [], ""
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        else:
            out.append("%s" if char == "?" else "%%" if char == "%" else char)
    return "".join(out)


def _local(moment: datetime | None) -> str | None:
    """A time as the DuckDB log shows it (in this machine's time zone), ISO 8601."""
    return moment.astimezone().isoformat() if moment is not None else None
