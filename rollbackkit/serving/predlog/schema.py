"""The prediction log's table layout: the one home of its SQL schema and column names.

One DuckDB file holds:

- ``predictions`` and ``predictions_staging``: one row per scored row (:data:`COLUMNS`);
  a deployment under evaluation writes to staging until it is promoted.
- ``predictions_shadow``: the rows a shadow deployment scored off the request path (same
  columns); never in the production view, sinks, quarantine or backfill.
- ``predictions_production``: the view downstream consumers read (``ok`` and
  ``backfill`` rows only: never a staged, quarantined or superseded row).
- ``inputs_<hash>``: the typed inputs of one input signature (:func:`inputs_table`),
  keyed by ``(request_id, row)``.
- ``log_batches`` (one row per committed batch, with its row count),
  ``log_deployments`` (each deployment's stage), ``log_quarantine`` (quarantined
  versions) and ``backfill_audit`` (old -> new outputs per corrected row).
- ``labels``: ground truth that arrived later (:mod:`rollbackkit.serving.predlog.labels`).
- ``gate_evaluations``: the watchdog's evaluations over time, thinned
  (:mod:`rollbackkit.serving.gate_history`, :mod:`rollbackkit.serving.predlog.gatelog`).

A file written by an earlier release is migrated when opened (:func:`create`): missing row
columns are added (null in old rows) and missing tables created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.serving.gate_history import GATE_COLUMNS


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


ROW_COLUMNS: dict[str, str] = {
    "request_id": "VARCHAR",
    "row": "INTEGER",
    "time": "TIMESTAMPTZ",
    "env": "VARCHAR",
    "name": "VARCHAR",
    "version": "VARCHAR",
    "bundle_id": "VARCHAR",
    "slot": "VARCHAR",
    "deployment": "VARCHAR",
    "input_hash": "VARCHAR",
    "inputs_table": "VARCHAR",
    "outputs": "VARCHAR",
    "primary_output": "DOUBLE",
    "latency_ms": "DOUBLE",
    "error": "VARCHAR",
    "status": "VARCHAR",
    "replaces": "VARCHAR",
    "batch_id": "VARCHAR",
    "key": "VARCHAR",
}
"""The columns of ``predictions``, ``predictions_staging`` and ``predictions_shadow``, in table order: name -> SQL type.

The one list of them: the tables, the writer's INSERT and the backfill's rows are built from
it. Append a new column at the end (existing files keep their order). ``CREATE TABLE IF NOT
EXISTS`` never adds a column to an existing log file: :func:`create` adds every missing one
(``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``) when a file is opened. A new column's VALUE
comes from code, per kind:

- a per-request value: a key of the same name in the ``meta`` that
  :meth:`LogWriter.record` receives (built in ``serving/request_path.py``), typed by
  ``batches.ARROW_TYPES``;
- a per-row value: :func:`rollbackkit.serving.predlog.batches.group` (like ``row``, ``time``,
  ``primary_output``), also listed in :data:`PER_ROW`;
- a value computed in SQL at insert: ``LogWriter._insert_group`` in ``writer.py``, also
  listed in :data:`COMPUTED_IN_SQL`;
- a backfilled row copies the original row's value unless ``LogLifecycle._backfill_batch``
  (``lifecycle.py``) sets another;
- sinks store it only if it is added to :data:`SINK_COLUMNS` too.
"""

PER_ROW = ("row", "time", "primary_output")
"""Row columns that :func:`rollbackkit.serving.predlog.batches.group` computes per row."""

COMPUTED_IN_SQL = ("input_hash", "inputs_table", "outputs", "replaces")
"""Row columns the writer computes in its INSERT (the rest come from the batch's Arrow table)."""

FIELDS = list(ROW_COLUMNS)
"""The names in :data:`ROW_COLUMNS`, in order."""

COLUMNS = ", ".join(f"{quote(name)} {kind}" for name, kind in ROW_COLUMNS.items())
"""The columns of ``predictions`` and ``predictions_staging``, as SQL."""

COLUMN_LIST = ", ".join(quote(name) for name in FIELDS)
"""The row columns as a SQL column list, in table order (for INSERT and SELECT)."""

TABLES = ("predictions", "predictions_staging")
"""The two row tables of served answers: production rows and staged rows."""

SHADOW_TABLE = "predictions_shadow"
"""The rows of shadow deployments: answers never returned, never in production, sinks or backfill."""

ROW_TABLES = (*TABLES, SHADOW_TABLE)
"""Every table of logged rows (what a batch writes, what labels join to, what prune trims)."""

STAGES = ("staging", "production", "shadow")
"""Where a deployment's rows go: staging, production or the shadow table."""

PRODUCTION_VIEW = "predictions_production"
"""What downstream consumers read."""

EXPORTABLE = (*ROW_TABLES, PRODUCTION_VIEW, "backfill_audit", "labels")
"""The tables and views :meth:`PredictionLog.export_parquet` writes."""

SINK_COLUMNS: dict[str, str] = {
    "request_id": "VARCHAR NOT NULL",
    "row": "INTEGER NOT NULL",
    "time": "TIMESTAMPTZ",
    "env": "VARCHAR",
    "name": "VARCHAR",
    "version": "VARCHAR",
    "bundle_id": "VARCHAR",
    "deployment": "VARCHAR",
    "outputs": "TEXT",
    "primary_output": "DOUBLE",
    "status": "VARCHAR",
    "replaces": "VARCHAR",
    "batch_id": "VARCHAR",
}
"""The row columns a sink (:mod:`rollbackkit.serving.predlog.sinks`) receives and stores, in its
table order: name -> SQL type (``NOT NULL`` where the sink requires a value)."""

LABEL_COLUMNS = (
    'name VARCHAR, env VARCHAR, request_id VARCHAR, "row" INTEGER, label VARCHAR, received TIMESTAMPTZ, '
    'batch_id VARCHAR, seq BIGINT, joined_on VARCHAR, "key" VARCHAR'
)
"""The ``labels`` table (:mod:`~rollbackkit.serving.predlog.labels`): one row per stored label of
one logged row, ``label`` its JSON text, ``seq`` the order stored (the highest wins), ``joined_on``
``request_id`` or ``key`` (then ``key`` is the key it came by)."""

ALL_ROWS = "(SELECT * FROM predictions UNION ALL SELECT * FROM predictions_staging)"
"""Production and staged rows together, as a subquery."""


@dataclass
class SchemaState:
    """What the log file already holds, read once when it is opened."""

    stages: dict[str, str]
    """Each deployment's stage (``staging``, ``production`` or ``shadow``)."""
    quarantined: set[tuple[str, str, str]]
    """Quarantined ``(name, env, version)``."""
    input_tables: set[str]
    """The typed inputs tables that exist."""


def create(con: Any) -> SchemaState:
    """Create the log's tables and view where missing, and add the row columns an older
    release's file lacks (inside the caller's transaction)."""
    for table in ROW_TABLES:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({COLUMNS})")
        _add_missing_columns(con, table)
    con.execute(f"CREATE TABLE IF NOT EXISTS labels ({LABEL_COLUMNS})")
    con.execute(f"CREATE TABLE IF NOT EXISTS gate_evaluations ({GATE_COLUMNS})")
    con.execute(
        "CREATE TABLE IF NOT EXISTS log_batches (batch_id VARCHAR PRIMARY KEY, rows INTEGER, written TIMESTAMPTZ)"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS log_deployments (deployment VARCHAR PRIMARY KEY, name VARCHAR, "
        "env VARCHAR, version VARCHAR, stage VARCHAR, updated TIMESTAMPTZ)"
    )
    con.execute(
        'CREATE TABLE IF NOT EXISTS backfill_audit (request_id VARCHAR, "row" INTEGER, '
        "env VARCHAR, name VARCHAR, old_version VARCHAR, new_version VARCHAR, old_outputs VARCHAR, "
        "new_outputs VARCHAR, time TIMESTAMPTZ)"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS log_quarantine (name VARCHAR, env VARCHAR, version VARCHAR, "
        "since TIMESTAMPTZ, PRIMARY KEY (name, env, version))"
    )
    view = _bare(f"CREATE VIEW {PRODUCTION_VIEW} AS {_PRODUCTION_ROWS}")
    have = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [PRODUCTION_VIEW]).fetchall()
    if [_bare(r[0]) for r in have] != [view]:  # replaced only when it changed: a read leaves the file as it was
        con.execute(f"CREATE OR REPLACE VIEW {PRODUCTION_VIEW} AS {_PRODUCTION_ROWS}")
    return SchemaState(
        stages=dict(con.execute("SELECT deployment, stage FROM log_deployments").fetchall()),
        quarantined={(n, e, v) for n, e, v in con.execute("SELECT name, env, version FROM log_quarantine").fetchall()},
        input_tables={
            r[0]
            for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'inputs_%'").fetchall()
        },
    )


_PRODUCTION_ROWS = "SELECT * FROM predictions WHERE status IN ('ok', 'backfill')"


def _bare(sql: str) -> str:
    """A view's SQL without spaces, brackets and semicolons (DuckDB stores it with brackets added)."""
    return "".join(ch for ch in sql if ch not in " \n();")


def _add_missing_columns(con: Any, table: str) -> None:
    """Append the :data:`ROW_COLUMNS` an older file's ``table`` lacks (null in its old rows)."""
    query = "SELECT column_name FROM duckdb_columns() WHERE table_name = ?"
    have = {r[0] for r in con.execute(query, [table]).fetchall()}
    for name, kind in ROW_COLUMNS.items():
        if name not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(name)} {kind}")


def inputs_table(frame: pd.DataFrame) -> str:
    """The typed inputs table for frames with these column names and dtypes."""
    signature = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()])
    return "inputs_" + hashlib.sha256(signature.encode()).hexdigest()[:16]


def outputs_json(names: list[str]) -> str:
    """SQL for one JSON object per row (as text) of the columns ``o0..``, named ``names``.

    Doubles are written in shortest round-trip form; no columns give ``'{}'``.
    """
    if not names:
        return "'{}'"
    return "to_json(struct_pack(" + ", ".join(f"{quote(c)} := o{k}" for k, c in enumerate(names)) + "))::VARCHAR"


def version_filter(name: str, env: str, version: str, since: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for a version's original rows in ``env`` since ``since``."""
    where = "name = ? AND env = ? AND version = ? AND replaces IS NULL"
    params: list[Any] = [name, env, version]
    if since:
        where += " AND time >= CAST(? AS TIMESTAMPTZ)"
        params.append(since)
    return where, params


def scalar(con: Any, sql: str, params: list[Any]) -> Any:
    """The first value of a query's first row (0 when there is none)."""
    rows = con.execute(sql, params).fetchall()  # fetched to the end: the connection is free again
    return rows[0][0] if rows else 0


def sql_path(path: Path) -> str:
    """``path``, absolute, as the inside of a SQL string literal."""
    return str(path.resolve()).replace("'", "''")
