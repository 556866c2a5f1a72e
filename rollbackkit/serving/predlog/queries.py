"""Reading the log: a version's affected rows, gate windows, stored inputs, drift counts.

Every read flushes first, so it sees every row queued before it. Outputs come back with
their types (:func:`decode_outputs`): a text label stays ``str``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog.binning import PG_JSON as _PG_JSON
from rollbackkit.serving.predlog.labels import WINDOW_LABELS
from rollbackkit.serving.predlog.outputs import _sample_records, window_frame
from rollbackkit.serving.predlog.outputs import decode_outputs as decode_outputs  # its old home
from rollbackkit.serving.predlog.schema import (
    ALL_ROWS,
    EXPORTABLE,
    PRODUCTION_VIEW,
    ROW_TABLES,
    SHADOW_TABLE,
    TABLES,
    scalar,
    sql_path,
    version_filter,
)
from rollbackkit.serving.predlog.surface import LogCalls
from rollbackkit.serving.predlog.writer import LogWriter


class LogReader(LogWriter):
    """The log's read side (on top of :class:`~rollbackkit.serving.predlog.writer.LogWriter`)."""

    def affected(
        self, name: str, env: str, version: str, since: str | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """Rows a version wrote in ``env`` (since ``since``): counts, time range, tables, rows.

        Returns:
            ``{"name", "env", "version", "rows", "quarantined", "backfilled", "first",
            "last", "tables": [{"table", "rows"}], "sample": [...], "shadow_rows"}`` (``sample``:
            the first ``limit`` rows by time, each row's ``outputs`` an object of its typed
            values; ``shadow_rows``: rows it scored as a shadow, never in production nor in ``rows``).
        """
        self.flush()
        where, params = version_filter(name, env, version, since)
        totals = {"rows": 0, "quarantined": 0, "backfilled": 0}
        tables, first, last = [], None, None
        with self._db:
            for table in TABLES:
                rows, quarantined, backfilled, lo, hi = self._con.execute(
                    "SELECT count(*), count(*) FILTER (status = 'quarantined'), "
                    f"count(*) FILTER (status = 'backfilled'), min(time), max(time) FROM {table} WHERE {where}",
                    params,
                ).fetchone() or (0, 0, 0, None, None)
                if rows:
                    tables.append({"table": table, "rows": int(rows)})
                    for key, value in (("rows", rows), ("quarantined", quarantined), ("backfilled", backfilled)):
                        totals[key] += int(value)
                    first = lo if first is None or lo < first else first
                    last = hi if last is None or hi > last else last
            sample = self._con.execute(
                f'SELECT request_id, "row", time, deployment, status, outputs FROM ('
                f"SELECT * FROM predictions WHERE {where} UNION ALL SELECT * FROM predictions_staging WHERE {where}) "
                f'ORDER BY time, request_id, "row" LIMIT {int(limit)}',
                params + params,
            ).fetchdf()
            shadow_rows = int(scalar(self._con, f"SELECT count(*) FROM {SHADOW_TABLE} WHERE {where}", params))
        return {
            "name": name,
            "env": env,
            "version": version,
            **totals,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
            "tables": tables,
            "sample": _sample_records(sample),
            "shadow_rows": shadow_rows,
        }

    def inputs(self, keys: pd.DataFrame) -> pd.DataFrame:
        """The stored inputs of rows ``keys`` (``request_id``, ``row``, ``inputs_table``), in order."""
        tables = keys["inputs_table"].unique()
        if len(tables) != 1:
            raise InvalidInput("Rows from different input schemas cannot be read as one frame.", "Group by table.")
        table = str(tables[0])
        if table not in self._input_tables:
            raise InvalidInput(f"The prediction log has no inputs table {table}.", "The log may have been pruned.")
        ordered = keys[["request_id", "row"]].assign(ord=range(len(keys)))
        with self._db:
            self._con.register("wanted_keys", ordered)
            try:
                frame = self._con.execute(
                    f'SELECT t.* EXCLUDE (request_id, "row") FROM {table} t JOIN wanted_keys k '
                    'ON t.request_id = k.request_id AND t."row" = k."row" ORDER BY k.ord'
                ).fetchdf()
            finally:
                self._con.unregister("wanted_keys")
        if len(frame) != len(keys):
            raise InvalidInput(f"{len(keys) - len(frame)} rows have no stored inputs.", "The log may have been pruned.")
        return frame

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
        """The latest ``limit`` rows of a deployment (or version) as a gate window, oldest first.

        Columns: the input features, the outputs, ``latency_ms``, ``error``, ``time``,
        ``request_id``, ``row``, ``key`` and ``label`` (each row's latest label, typed as
        ingested: ``str``, ``bool``, ``int`` or ``float``; None while it has none). Rows of
        several input schemas are stacked (missing features are null). Outputs keep their type
        (see :func:`decode_outputs`): a string label stays ``str``. A shadow deployment's rows
        come from ``predictions_shadow``; ``since`` (ISO time) keeps rows at or after it,
        ``until`` rows at or before it (applied before the limit: the newest ``limit`` rows up to
        ``until``, as a label gate's ``label_delay`` needs). ``answered`` leaves failed requests out
        before the limit. ``sent`` adds which input columns each row's request sent
        (:func:`~rollbackkit.serving.predlog.outputs.window_frame`). The join (rows, inputs, labels) runs in DuckDB.
        """
        self.flush()
        where = "name = ? AND env = ? AND replaces IS NULL" + (" AND error IS NULL" if answered else "")
        params: list[Any] = [name, env]
        for column, value in (("deployment", deployment), ("version", version)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if since:
            where += " AND time >= CAST(? AS TIMESTAMPTZ)"
            params.append(since)
        if until:
            where += " AND time <= CAST(? AS TIMESTAMPTZ)"
            params.append(until)
        shadow = deployment is not None and self.stage_of(deployment) == "shadow"
        tables = (SHADOW_TABLE,) if shadow else TABLES
        union = " UNION ALL ".join(
            f'SELECT request_id, "row", time, "key", inputs_table, outputs, latency_ms, error FROM {t} WHERE {where}'
            for t in tables
        )
        with self._db:
            self._con.execute(
                "CREATE OR REPLACE TEMP TABLE window_rows AS SELECT *, "
                'row_number() OVER (ORDER BY time, request_id, "row") AS ord FROM ('
                f'SELECT * FROM ({union}) ORDER BY time DESC, request_id DESC, "row" DESC LIMIT {int(limit)})',
                params * len(tables),
            )
            try:
                rows = self._con.execute(
                    'SELECT w.request_id, w."row", w.time, w."key", w.inputs_table, w.outputs, w.latency_ms, w.error, '
                    f"l.label FROM window_rows w LEFT JOIN ({WINDOW_LABELS}) l ON l.request_id = w.request_id "
                    'AND l."row" = w."row" ORDER BY w.ord',
                    [name, env],
                ).fetchdf()
                features = {table: self._window_inputs(str(table)) for table in rows["inputs_table"].unique().tolist()}
            finally:
                self._con.execute("DROP TABLE IF EXISTS window_rows")
        return window_frame(rows, features, sent=sent)

    def _window_inputs(self, table: str) -> pd.DataFrame:
        """The stored inputs of the ``window_rows`` of one inputs table, in window order (hold ``_db``)."""
        if table not in self._input_tables:
            raise InvalidInput(f"The prediction log has no inputs table {table}.", "The log may have been pruned.")
        frame = self._con.execute(
            f'SELECT t.* EXCLUDE (request_id, "row") FROM window_rows w JOIN {table} t '
            'ON t.request_id = w.request_id AND t."row" = w."row" WHERE w.inputs_table = ? ORDER BY w.ord',
            [table],
        ).fetchdf()
        wanted = scalar(self._con, "SELECT count(*) FROM window_rows WHERE inputs_table = ?", [table])
        if len(frame) != wanted:
            raise InvalidInput(f"{wanted - len(frame)} rows have no stored inputs.", "The log may have been pruned.")
        return frame

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
        """Counts per slice, time window and bin of one column, counted in DuckDB (see
        :mod:`~rollbackkit.serving.predlog.binning` for the rows and the rule,
        :mod:`~rollbackkit.serving.predlog.binned_answer` for the answer)."""
        from rollbackkit.serving.predlog import binning as b
        from rollbackkit.serving.predlog.binned_answer import answer

        req = b.BinRequest.of(name, env, column, edges, start, end, windows, by, versions, output, known, cuts)
        self.flush()
        with self._db:
            tables = self._input_columns()
            b.check_columns(req, tables)
            rows, params = b.rows_sql(req, "?", "duckdb")
            span = b.time_range(
                req,
                lambda: self._con.execute(f"WITH r AS {rows} SELECT min(t_us), max(t_us) FROM r", params).fetchone(),
            )
            if span is None:
                return answer(req, pd.DataFrame(), None, None)
            lo, hi = span
            counts = b.counts_sql(req, b.source_sql(req, tables, "duckdb"), lo, hi, "duckdb")
            # not materialized: each use of r scans the tables again, cheaper than holding 10M rows
            groups = self._con.execute(f"WITH r AS NOT MATERIALIZED {rows} {counts}", params).fetchdf()
        return answer(req, groups, lo, hi)

    def _input_columns(self) -> dict[str, set[str]]:
        """Each inputs table's feature columns (hold ``_db``)."""
        found: dict[str, set[str]] = {}
        for table, column in self._con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name LIKE 'inputs_%'"
        ).fetchall():
            if column not in ("request_id", "row"):
                found.setdefault(table, set()).add(column)
        return found

    def production(self, name: str | None = None) -> pd.DataFrame:
        """What downstream consumers see: the production view."""
        self.flush()
        with self._db:
            if name is None:
                return self._con.execute(f"SELECT * FROM {PRODUCTION_VIEW}").fetchdf()
            return self._con.execute(f"SELECT * FROM {PRODUCTION_VIEW} WHERE name = ?", [name]).fetchdf()

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query against the log (after flushing)."""
        self.flush()
        with self._db:
            return self._con.execute(sql, params or []).fetchdf()

    def verify_batches(self) -> list[str]:
        """Batches whose committed rows do not match their recorded count (empty when whole)."""
        with self._db:
            found = " + ".join(f"(SELECT count(*) FROM {t} x WHERE x.batch_id = b.batch_id)" for t in ROW_TABLES)
            rows = self._con.execute(
                f"SELECT b.batch_id, b.rows, {found} AS found FROM log_batches b WHERE b.rows <> found"
            ).fetchall()
        return [f"batch {r[0]}: {r[2]} of {r[1]} rows" for r in rows]

    def export_parquet(self, path: str | Path, view: str = PRODUCTION_VIEW) -> Path:
        """Write a table or view as Parquet (for gates, drift or Dask past one machine)."""
        if view not in EXPORTABLE:
            raise InvalidInput(
                f"Unknown log table {view!r}.",
                f"Use one of {', '.join(EXPORTABLE)}.",
            )
        self.flush()
        target = Path(path)
        with self._db:
            self._con.execute(f"COPY (SELECT * FROM {view}) TO '{sql_path(target)}' (FORMAT parquet)")
        return target


_SCORED = f"FROM {ALL_ROWS} AS r WHERE name = ? AND env = ? AND version = ? AND replaces IS NULL AND error IS NULL"
"""A version's original, successfully scored rows in one environment (staged or not); SQL both
log backends run (``?`` parameters: the PostgreSQL log's ``query`` takes them too)."""


def primary_outputs(log: LogCalls, name: str, env: str, version: str) -> pd.Series:
    """The ``primary_output`` values a version logged in ``env`` (null for a text label).

    ``log`` is either log (:data:`~rollbackkit.serving.predlog.surface.PredictionStore`).
    """
    return log.query(f"SELECT primary_output {_SCORED}", [name, env, version])["primary_output"]


_PG_VALUE = (
    f"regexp_replace(CAST(CAST({_PG_JSON} AS JSON) -> CAST(? AS TEXT) AS VARCHAR), "
    "'^\"\\\\u0001(-?Infinity)\"$', '\\1')"
)
"""One output's JSON text on PostgreSQL, as DuckDB's ``json_extract`` gives it (``Infinity`` bare)."""


def output_counts(log: LogCalls, name: str, env: str, version: str, column: str) -> pd.DataFrame:
    """How often a version logged each value of output ``column`` in ``env``.

    Returns:
        Columns ``value`` (the value as JSON text; null where a row lacks it) and ``n``.
    """
    if getattr(log, "dialect", "duckdb") == "postgresql":  # the store's log: a JSON key, PostgreSQL's way
        value, key = _PG_VALUE, column
    else:
        value, key = "CAST(json_extract(outputs, ?) AS VARCHAR)", "/" + column.replace("~", "~0").replace("/", "~1")
    return log.query(f"SELECT {value} AS value, count(*) AS n {_SCORED} GROUP BY 1", [key, name, env, version])
