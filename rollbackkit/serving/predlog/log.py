"""Side-effect isolation: the prediction log, staging vs production, quarantine, backfill.

Every scored row is logged to a DuckDB file (``.rollbackkit/local/predictions.duckdb`` by
default) with request id, row, time, environment, version, bundle id, slot, deployment
(the assignment tag), input hash (DuckDB's 64-bit hash of the row's input values, in hex:
equal inputs, equal hash), outputs (JSON, typed: text, booleans, integers, floats; see
:func:`decode_outputs`), the primary output (``primary_output``: a numeric copy of a
numeric or boolean primary, null for a text label), latency and error.

- **Inputs, typed and exact.** A row's inputs go to a typed table per input signature
  (``inputs_<hash of column names and dtypes>``), keyed by ``(request_id, row)`` and named
  in the row's ``inputs_table``. Floats round-trip bit for bit, so a backfill re-scores
  exactly what the bad version saw, and gate windows read features without parsing JSON.
- **Off the request path.** :meth:`PredictionLog.record` only appends the request's frames
  to a queue. A writer thread commits one DuckDB transaction per batch, every
  ``flush_interval`` seconds or ``batch_rows`` rows, built as one Arrow table per input
  signature (DuckDB scans Arrow without sniffing object columns). Each batch records its row count in
  ``log_batches`` in the same transaction, so a half-written batch never exists. A server
  runs this class in its own process (:mod:`rollbackkit.serving.predlog.process`), so the writer's
  work never competes with scoring for the GIL.
- **Durability bound.** A crash (``kill -9``) of the writer loses at most what was queued
  and not yet committed: the requests of the last ``flush_interval`` seconds (0.2 s by
  default here, 0.5 s in a server's writer process), at most ``batch_rows`` rows, plus
  the batch being committed at that instant.
  Committed batches survive and the file is never left corrupted (DuckDB's write-ahead
  log). A ``kill -9`` of a server alone loses only its last hand-over (0.05 s): its writer
  process commits the rest, then exits. Both tested.
- **Staging vs production.** Rows of a deployment under evaluation (a canary, or a fresh
  deploy until its gates have passed for the bake time) land in ``predictions_staging``;
  :meth:`promote` moves them to ``predictions`` in one transaction. Downstream consumers
  read the view ``predictions_production``: never a staged, quarantined or superseded row.
- **Quarantine and backfill.** A rollback marks every row of the bad version
  ``quarantined`` (never deleted); :meth:`affected` lists them. :meth:`backfill` re-scores
  their stored inputs with the version now serving, writes corrected rows (status
  ``backfill``, ``replaces`` = ``request_id:row``) to production one transaction per batch,
  records old -> new per row in ``backfill_audit`` and marks the originals ``backfilled``.
  Running it again changes nothing.
- **Retention.** Inputs live as long as their rows: forever unless you call
  :meth:`prune`, which never drops a quarantined row that still awaits its backfill.
- **Sinks.** User-owned downstream tables (:mod:`rollbackkit.serving.predlog.sinks`) get every committed
  batch, promote, quarantine and backfill under the same contract; a sink that missed
  batches (crash, outage) is caught up from the log by batch id, exactly once.

DuckDB allows one writing process per file: while a server runs, the CLI asks it (admin
API) for ``affected`` and ``backfill``; otherwise it opens the file itself. Past one
machine, :meth:`export_parquet` writes the log as Parquet for DuckDB or Dask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.errors import InvalidInput
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.predlog.sinks import SINK_COLUMNS, Sink

COLUMNS = """
    request_id VARCHAR, "row" INTEGER, time TIMESTAMPTZ, env VARCHAR, name VARCHAR, version VARCHAR,
    bundle_id VARCHAR, slot VARCHAR, deployment VARCHAR, input_hash VARCHAR, inputs_table VARCHAR,
    outputs VARCHAR, primary_output DOUBLE, latency_ms DOUBLE, error VARCHAR, status VARCHAR, replaces VARCHAR,
    batch_id VARCHAR
"""
LOGGER = logging.getLogger(__name__)
FIELDS = [c.strip().split()[0].strip('"') for c in COLUMNS.strip().replace("\n", " ").split(",")]
TABLES = ("predictions", "predictions_staging")
Rescore = Callable[[pd.DataFrame], tuple[pd.DataFrame, str, str]]
"""Scores a frame of stored inputs; returns ``(outputs, version, bundle_id)``."""


@dataclass
class _Pending:
    meta: dict[str, Any]
    inputs: pd.DataFrame
    outputs: pd.DataFrame | None


def open_log(paths: ProjectPaths, **options: Any) -> PredictionLog:
    """The project's prediction log with the sinks its config declares (``sinks:``)."""
    from rollbackkit.serving.predlog.sinks import sinks_from_config

    sinks = sinks_from_config(paths.read_config().get("sinks"))
    return PredictionLog(paths.prediction_log, sinks=sinks, **options)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def inputs_table(frame: pd.DataFrame) -> str:
    """The typed inputs table for frames with these column names and dtypes."""
    signature = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()])
    return "inputs_" + hashlib.sha256(signature.encode()).hexdigest()[:16]


class PredictionLog:
    """The durable prediction log of one project.

    Args:
        path: The DuckDB file.
        flush_interval: Seconds between writer flushes.
        batch_rows: Rows that trigger an early flush (and bound a crash's loss).
        sinks: Downstream tables that mirror the staging/production contract.
        lock_wait: Seconds to wait for another process to release the file (a server's
            writer process finishing its last batch after the server stopped).
        threads: DuckDB's worker threads (None: one per core). A server's log uses one,
            so that it never takes the core a request is scored on.

    A batch the writer cannot commit (inputs or outputs neither Arrow nor DuckDB can
    store, such as complex numbers) is rolled back whole and written again one request
    at a time: only the requests that cannot be stored are lost, each logged, listed in
    ``write_errors`` and counted in :meth:`status` (``unwritten``). The writer goes on.
    """

    def __init__(
        self,
        path: str | Path,
        flush_interval: float = 0.2,
        batch_rows: int = 20_000,
        sinks: Sequence[Sink] = (),
        lock_wait: float = 10.0,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.sinks = list(sinks)
        self._con = _connect(self.path, lock_wait, threads)
        self._db = threading.RLock()
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        self._queue_lock = threading.Condition()
        self._flush_lock = threading.Lock()
        self._stages: dict[str, str] = {}
        self._quarantined: set[tuple[str, str, str]] = set()
        self._input_tables: set[str] = set()
        self._writer: threading.Thread | None = None
        self._closing = False
        self._sinks_behind = bool(self.sinks)
        self.sink_errors: list[str] = []
        self.write_errors: list[str] = []
        self._write_error_count = 0
        self._unwritten = 0
        self._create()

    # ------------------------------------------------------------------------- schema
    def _create(self) -> None:
        with self._tx() as con:
            for table in TABLES:
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({COLUMNS})")
            con.execute(
                "CREATE TABLE IF NOT EXISTS log_batches (batch_id VARCHAR PRIMARY KEY, rows INTEGER, "
                "written TIMESTAMPTZ)"
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
            con.execute(
                "CREATE OR REPLACE VIEW predictions_production AS SELECT * FROM predictions "
                "WHERE status IN ('ok', 'backfill')"
            )
            self._stages = dict(con.execute("SELECT deployment, stage FROM log_deployments").fetchall())
            self._quarantined = {
                (n, e, v) for n, e, v in con.execute("SELECT name, env, version FROM log_quarantine").fetchall()
            }
            self._input_tables = {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'inputs_%'"
                ).fetchall()
            }

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._db:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    # ------------------------------------------------------------------------- deployments
    def set_stage(self, deployment: str, name: str, env: str, version: str, stage: str) -> None:
        """Declare where a deployment's rows go (``staging`` or ``production``).

        A fresh deployment of a version writes normal rows again, even if an earlier
        deployment of it was quarantined.
        """
        with self._tx() as con:
            con.execute(
                "INSERT OR REPLACE INTO log_deployments VALUES (?, ?, ?, ?, ?, ?)",
                [deployment, name, env, version, stage, datetime.now(UTC)],
            )
            con.execute("DELETE FROM log_quarantine WHERE name = ? AND env = ? AND version = ?", [name, env, version])
        self._stages[deployment] = stage
        self._quarantined.discard((name, env, version))

    def knows(self, deployment: str) -> bool:
        """Whether a stage was ever declared for ``deployment``."""
        return deployment in self._stages

    def stage_of(self, deployment: str) -> str:
        """``staging`` or ``production`` (deployments never declared: production)."""
        return self._stages.get(deployment, "production")

    # ------------------------------------------------------------------------- writing
    def record(self, meta: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame | None) -> None:
        """Queue one request's rows (no I/O on the caller's thread).

        Args:
            meta: ``request_id``, ``time``, ``env``, ``name``, ``version``, ``bundle_id``,
                ``slot``, ``deployment``, ``latency_ms``, ``error`` and ``primary`` (the
                output column stored as ``primary_output``).
            inputs: The request's feature rows.
            outputs: The rows' outputs, or None when the request failed.
        """
        with self._queue_lock:
            self._queue.append(_Pending(meta, inputs, outputs))
            self._queued_rows += len(inputs)
            if self._queued_rows >= self.batch_rows:
                self._queue_lock.notify()

    def start(self) -> None:
        """Start the background writer (and catch sinks up with the log first)."""
        if self.sinks:
            self.sync_sinks()
        self._writer = threading.Thread(target=self._run, name="rollbackkit-log-writer", daemon=True)
        self._writer.start()

    def _run(self) -> None:
        while True:
            with self._queue_lock:
                if not self._closing and self._queued_rows < self.batch_rows:
                    self._queue_lock.wait(self.flush_interval)
                closing = self._closing
            try:
                self.flush()
            except Exception as exc:  # the writer outlives anything a flush raises
                LOGGER.exception("The prediction log could not write to %s.", self.path)
                self._write_failed(f"{type(exc).__name__}: {exc}", 0)
            if closing:
                return

    def flush(self) -> int:
        """Commit everything queued as one batch (one transaction); returns rows written.

        Flushes run one at a time: when this returns, every row queued before the call is
        committed, including a batch the writer thread had already taken (reads and
        ``quarantine`` rely on that).
        """
        with self._flush_lock:
            return self._flush_queue()

    def _flush_queue(self) -> int:
        with self._queue_lock:
            pending, self._queue, self._queued_rows = self._queue, [], 0
        if not pending:
            return 0
        try:
            return self._commit(pending)
        except Exception as exc:
            if len(pending) == 1:
                self._lost(pending[0], exc)
                return 0
        written = 0  # one request cannot be stored: commit the others one by one, lose only it
        for item in pending:
            try:
                written += self._commit([item])
            except Exception as exc:
                self._lost(item, exc)
        return written

    def _lost(self, item: _Pending, exc: Exception) -> None:
        """Account for a request whose rows could not be committed (rolled back, never half-written)."""
        message = f"request {item.meta.get('request_id')}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        LOGGER.error("The prediction log could not write %s (%d rows) to %s.", message, len(item.inputs), self.path)
        self._write_failed(message, 1)

    def _write_failed(self, message: str, requests: int) -> None:
        self._write_error_count += 1
        self._unwritten += requests
        self.write_errors.append(message)
        del self.write_errors[:-100]  # the latest hundred; the counts keep the total

    def status(self) -> dict[str, Any]:
        """The writer's health: ``write_errors`` (failed commits), ``last_write_error`` (its
        message), ``unwritten`` (requests lost to them) and ``sink_errors``."""
        return {
            "write_errors": self._write_error_count,
            "last_write_error": self.write_errors[-1] if self.write_errors else None,
            "unwritten": self._unwritten,
            "sink_errors": len(self.sink_errors),
        }

    def _commit(self, pending: list[_Pending]) -> int:
        """Write requests as one batch in one transaction; returns rows written."""
        batch_id = uuid.uuid4().hex
        for item in pending:  # per request, not per row: cheap dict work
            meta = item.meta
            key = (meta["name"], meta["env"], meta["version"])
            meta["status"] = "quarantined" if key in self._quarantined else "ok"
            meta["staged"] = self.stage_of(meta["deployment"]) == "staging"
            meta["batch_id"] = batch_id
        groups = _groups(pending)
        rows = sum(g.table.num_rows for g in groups)
        with self._tx() as con:
            for group in groups:
                self._insert_group(con, group)
            con.execute("INSERT INTO log_batches VALUES (?, ?, ?)", [batch_id, rows, datetime.now(UTC)])
        self._input_tables.update(g.inputs_table for g in groups)  # only once committed
        self._to_sinks(lambda sink: self._replay(sink, batch_id))
        return rows

    def _insert_group(self, con: Any, group: _Group) -> None:
        """Insert one signature's rows: typed inputs, then log rows (staged and not)."""
        table = group.inputs_table
        inputs = [f"i{k}" for k in range(len(group.inputs))]
        input_cols = ", ".join(f"{i} AS {_quote(name)}" for i, name in zip(inputs, group.inputs, strict=True))
        output_json = (
            "to_json(struct_pack("
            + ", ".join(f"{_quote(c)} := o{k}" for k, c in enumerate(group.outputs))
            + "))::VARCHAR"
            if group.outputs
            else "'{}'"
        )
        input_hash = "lpad(hex(hash(" + ", ".join(inputs) + ")), 16, '0')"
        con.register("batch_frame", group.table)
        try:
            if table not in self._input_tables:
                con.execute(
                    f'CREATE TABLE IF NOT EXISTS {table} AS SELECT request_id, "row", {input_cols} '
                    "FROM batch_frame LIMIT 0"
                )
            con.execute(f'INSERT INTO {table} SELECT request_id, "row", {input_cols} FROM batch_frame')
            select = (
                'SELECT request_id, "row", time, env, name, version, bundle_id, slot, deployment, '
                f"{input_hash}, '{table}', {output_json}, primary_output, latency_ms, error, status, NULL, "
                "batch_id FROM batch_frame"
            )
            if group.staged:
                con.execute(f"INSERT INTO predictions_staging {select} WHERE staged")
            if group.staged < group.table.num_rows:
                con.execute(f"INSERT INTO predictions {select} WHERE NOT staged")
        finally:
            con.unregister("batch_frame")

    def close(self) -> None:
        """Flush and stop the writer, then close the file."""
        with self._queue_lock:
            self._closing = True
            self._queue_lock.notify()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.flush()
        with self._db:
            self._con.close()

    # ------------------------------------------------------------------------- sinks
    def _to_sinks(self, action: Callable[[Sink], Any]) -> None:
        """Apply ``action`` to every sink; a failing sink is caught up later from the log."""
        if not self.sinks:
            return
        if self._sinks_behind:
            self.sync_sinks()
            return
        for sink in self.sinks:
            try:
                action(sink)
            except Exception as exc:  # a downstream outage must not stop the log
                self._sinks_behind = True
                self.sink_errors.append(f"{type(sink).__name__}: {exc}")

    def sync_sinks(self) -> int:
        """Replay to every sink the committed batches it has not acknowledged; returns batches sent."""
        sent = 0
        with self._db:
            batches = [r[0] for r in self._con.execute("SELECT batch_id FROM log_batches ORDER BY written").fetchall()]
        try:
            for sink in self.sinks:
                done = sink.applied_batches()
                for batch_id in batches:
                    if batch_id not in done:
                        self._replay(sink, batch_id)
                        sent += 1
        except Exception as exc:
            self.sink_errors.append(str(exc))
            self._sinks_behind = True
            return sent
        self._sinks_behind = False
        return sent

    def _replay(self, sink: Sink, batch_id: str) -> None:
        """Send one committed batch to a sink, as it stands in the log now."""
        columns = ", ".join(_quote(c) for c in SINK_COLUMNS)
        with self._db:
            parts = {
                table: self._con.execute(
                    f'SELECT {columns} FROM {table} WHERE batch_id = ? ORDER BY request_id, "row"', [batch_id]
                ).fetchdf()
                for table in TABLES
            }
        corrected = parts["predictions"][parts["predictions"]["replaces"].notna()]
        if len(corrected):
            sink.backfill(corrected, batch_id)
        else:
            sink.write(parts["predictions_staging"], parts["predictions"], batch_id)

    # ------------------------------------------------------------------------- lifecycle
    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows to production atomically; later rows go there directly."""
        self.flush()
        with self._tx() as con:
            moved = _scalar(con, "SELECT count(*) FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute("INSERT INTO predictions SELECT * FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute("DELETE FROM predictions_staging WHERE deployment = ?", [deployment])
            con.execute(
                "UPDATE log_deployments SET stage = 'production', updated = ? WHERE deployment = ?",
                [datetime.now(UTC), deployment],
            )
        self._stages[deployment] = "production"
        self._to_sinks(lambda sink: sink.promote(deployment))
        return int(moved)

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark every row the version wrote in ``env`` quarantined (rows are never deleted).

        Rows of that version still in flight are quarantined as they land.

        Returns:
            The version's rows now under quarantine (awaiting backfill).
        """
        self._quarantined.add((name, env, version))
        self.flush()
        where = "name = ? AND env = ? AND version = ? AND replaces IS NULL"
        with self._tx() as con:
            con.execute(
                "INSERT OR REPLACE INTO log_quarantine VALUES (?, ?, ?, ?)", [name, env, version, datetime.now(UTC)]
            )
            count = 0
            for table in TABLES:
                con.execute(
                    f"UPDATE {table} SET status = 'quarantined' WHERE {where} AND status = 'ok'", [name, env, version]
                )
                count += _scalar(
                    con, f"SELECT count(*) FROM {table} WHERE {where} AND status = 'quarantined'", [name, env, version]
                )
        self._to_sinks(lambda sink: sink.quarantine(name, env, version))
        return int(count)

    # ------------------------------------------------------------------------- reading
    def affected(
        self, name: str, env: str, version: str, since: str | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """Rows a version wrote in ``env`` (since ``since``): counts, time range, tables, rows.

        Returns:
            ``{"name", "env", "version", "rows", "quarantined", "backfilled", "first",
            "last", "tables": [{"table", "rows"}], "sample": [...]}`` (``sample``: the first
            ``limit`` rows by time, each row's ``outputs`` an object of its typed values).
        """
        self.flush()
        where, params = _version_filter(name, env, version, since)
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
        return {
            "name": name,
            "env": env,
            "version": version,
            **totals,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
            "tables": tables,
            "sample": _sample_records(sample),
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
        limit: int = 20_000,
    ) -> pd.DataFrame:
        """The latest ``limit`` rows of a deployment (or version) as a gate window.

        Columns: the input features, the outputs, ``latency_ms``, ``error`` and ``time``.
        Rows of several input schemas are stacked (missing features are null). Outputs keep
        their type (see :func:`decode_outputs`): a string label stays ``str``.
        """
        self.flush()
        where = "name = ? AND env = ? AND replaces IS NULL"
        params: list[Any] = [name, env]
        if deployment is not None:
            where += " AND deployment = ?"
            params.append(deployment)
        if version is not None:
            where += " AND version = ?"
            params.append(version)
        with self._db:
            rows = self._con.execute(
                'SELECT request_id, "row", time, inputs_table, outputs, latency_ms, error FROM ('
                f"SELECT * FROM predictions WHERE {where} UNION ALL SELECT * FROM predictions_staging WHERE {where}) "
                f'ORDER BY time DESC, request_id DESC, "row" DESC LIMIT {int(limit)}',  # reversed below
                params + params,
            ).fetchdf()
        if rows.empty:
            return pd.DataFrame()
        rows = rows.iloc[::-1].reset_index(drop=True)
        outputs = decode_outputs(rows["outputs"].tolist())
        parts = []
        for _, group in rows.groupby("inputs_table", sort=False):
            features = self.inputs(group).set_axis(group.index)
            parts.append(
                pd.concat([features, outputs.loc[group.index], group[["latency_ms", "error", "time"]]], axis=1)
            )
        return pd.concat(parts).sort_index()

    def backfill(
        self, name: str, env: str, version: str, rescore: Rescore, batch: int = 5000, primary: str | None = None
    ) -> dict[str, Any]:
        """Re-score every quarantined row of ``version`` and write corrected rows to production.

        Args:
            name: Bundle name.
            env: Environment.
            version: The bad version whose rows are corrected.
            rescore: Scores a frame of the stored inputs; returns (outputs, version, bundle_id).
            batch: Rows per transaction.
            primary: The output column copied to ``primary_output`` (see
                :func:`primary_numbers`); None leaves it null.

        Returns:
            ``{"rescored", "already_done", "failed"}``, plus ``errors`` (why, for up to five
            failed batches) when rows failed: they stay quarantined. A second run rescores
            nothing.
        """
        self.flush()
        where, params = _version_filter(name, env, version, None)
        with self._db:
            already = sum(
                _scalar(self._con, f"SELECT count(*) FROM {t} WHERE {where} AND status = 'backfilled'", params)
                for t in TABLES
            )
        rescored = failed = 0
        failed_keys: set[tuple[str, int]] = set()
        errors: list[str] = []
        while True:
            with self._db:
                todo = self._con.execute(
                    f"SELECT *, 'predictions' AS src FROM predictions WHERE {where} AND status = 'quarantined' "
                    f"UNION ALL SELECT *, 'predictions_staging' AS src FROM predictions_staging "
                    f"WHERE {where} AND status = 'quarantined' ORDER BY inputs_table, request_id, \"row\"",
                    params + params,
                ).fetchdf()
            todo = todo[[(r, int(n)) not in failed_keys for r, n in zip(todo["request_id"], todo["row"], strict=True)]]
            if todo.empty:
                break
            part = todo[todo["inputs_table"] == todo["inputs_table"].iloc[0]].head(batch)
            try:
                self._backfill_batch(part, rescore, primary)
                rescored += len(part)
            except Exception as exc:  # a batch that cannot be re-scored stays quarantined, counted, and says why
                failed += len(part)
                failed_keys.update(zip(part["request_id"], part["row"].astype(int), strict=True))
                reason = f"{len(part)} rows: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                LOGGER.warning("backfill of %s@%s in %s: %s", name, version, env, reason)
                errors.append(reason)
        done: dict[str, Any] = {"rescored": rescored, "already_done": int(already), "failed": failed}
        return {**done, "errors": errors[:5]} if failed else done

    def _backfill_batch(self, todo: pd.DataFrame, rescore: Rescore, primary: str | None) -> None:
        outputs, new_version, bundle_id = rescore(self.inputs(todo))
        now = datetime.now(UTC)
        batch_id = uuid.uuid4().hex
        corrected = (
            todo[FIELDS]
            .reset_index(drop=True)
            .assign(
                replaces=(todo["request_id"] + ":" + todo["row"].astype(str)).to_numpy(),
                version=new_version,
                bundle_id=bundle_id,
                status="backfill",
                time=now,
                batch_id=batch_id,
                slot="backfill",
                latency_ms=None,
                error=None,
            )
        )
        outputs = outputs.reset_index(drop=True)
        corrected["primary_output"] = primary_numbers(outputs, primary).to_pandas()
        new_json = self._json_rows(outputs)
        corrected["outputs"] = new_json
        audit = pd.DataFrame(
            {
                "request_id": todo["request_id"].to_numpy(),
                "row": todo["row"].to_numpy(),
                "env": todo["env"].to_numpy(),
                "name": todo["name"].to_numpy(),
                "old_version": todo["version"].to_numpy(),
                "new_version": new_version,
                "old_outputs": todo["outputs"].to_numpy(),
                "new_outputs": new_json,
                "time": now,
            }
        )
        keys = todo[["request_id", "row", "src"]].reset_index(drop=True)
        with self._tx() as con:
            con.register("corrected", corrected[FIELDS])
            con.register("audit_rows", audit)
            con.register("done_keys", keys)
            try:
                con.execute("INSERT INTO predictions SELECT * FROM corrected")
                con.execute("INSERT INTO backfill_audit SELECT * FROM audit_rows")
                for table in TABLES:
                    con.execute(
                        f"UPDATE {table} SET status = 'backfilled' FROM done_keys d WHERE "
                        f'{table}.request_id = d.request_id AND {table}."row" = d."row" AND d.src = ? '
                        f"AND {table}.replaces IS NULL AND {table}.status = 'quarantined'",
                        [table],
                    )
                con.execute("INSERT INTO log_batches VALUES (?, ?, ?)", [batch_id, len(corrected), now])
            finally:
                for view in ("corrected", "audit_rows", "done_keys"):
                    con.unregister(view)
        self._to_sinks(lambda sink: self._replay(sink, batch_id))

    def _json_rows(self, outputs: pd.DataFrame) -> list[str]:
        """Outputs as one JSON object per row, doubles in shortest round-trip form."""
        if not outputs.shape[1]:
            return ["{}"] * len(outputs)
        frame = outputs.set_axis([f"o{k}" for k in range(outputs.shape[1])], axis=1)
        fields = ", ".join(f"{_quote(str(c))} := o{k}" for k, c in enumerate(outputs.columns))
        with self._db:
            self._con.register("json_frame", frame)
            try:
                query = f"SELECT to_json(struct_pack({fields}))::VARCHAR AS j FROM json_frame"
                return [str(v) for v in self._con.execute(query).fetchnumpy()["j"]]
            finally:
                self._con.unregister("json_frame")

    def production(self, name: str | None = None) -> pd.DataFrame:
        """What downstream consumers see: the production view."""
        self.flush()
        with self._db:
            if name is None:
                return self._con.execute("SELECT * FROM predictions_production").fetchdf()
            return self._con.execute("SELECT * FROM predictions_production WHERE name = ?", [name]).fetchdf()

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query against the log (after flushing)."""
        self.flush()
        with self._db:
            return self._con.execute(sql, params or []).fetchdf()

    def verify_batches(self) -> list[str]:
        """Batches whose committed rows do not match their recorded count (empty when whole)."""
        with self._db:
            rows = self._con.execute(
                "SELECT b.batch_id, b.rows, (SELECT count(*) FROM predictions p WHERE p.batch_id = b.batch_id) + "
                "(SELECT count(*) FROM predictions_staging s WHERE s.batch_id = b.batch_id) AS found "
                "FROM log_batches b WHERE b.rows <> found"
            ).fetchall()
        return [f"batch {r[0]}: {r[2]} of {r[1]} rows" for r in rows]

    def prune(self, days: float) -> int:
        """Drop rows older than ``days`` and their inputs (never a quarantined row awaiting backfill)."""
        if days < 0:
            raise InvalidInput(f"Cannot keep {days} days of predictions.", "Give a number of days >= 0.")
        cutoff = datetime.now(UTC).timestamp() - days * 86400
        old = "epoch(time) < ? AND status <> 'quarantined'"
        with self._tx() as con:
            count = sum(_scalar(con, f"SELECT count(*) FROM {t} WHERE {old}", [cutoff]) for t in TABLES)
            for table in TABLES:
                con.execute(f"DELETE FROM {table} WHERE {old}", [cutoff])
            for table in self._input_tables:
                con.execute(
                    f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE "
                    'p.request_id = t.request_id AND p."row" = t."row") AND NOT EXISTS (SELECT 1 FROM '
                    'predictions_staging s WHERE s.request_id = t.request_id AND s."row" = t."row")'
                )
        return int(count)

    def export_parquet(self, path: str | Path, view: str = "predictions_production") -> Path:
        """Write a table or view as Parquet (for gates, drift or Dask past one machine)."""
        if view not in (*TABLES, "predictions_production", "backfill_audit"):
            raise InvalidInput(
                f"Unknown log table {view!r}.",
                "Use predictions, predictions_staging, predictions_production or backfill_audit.",
            )
        self.flush()
        target = Path(path)
        with self._db:
            self._con.execute(f"COPY (SELECT * FROM {view}) TO '{_sql_path(target)}' (FORMAT parquet)")
        return target


def decode_outputs(texts: Sequence[str]) -> pd.DataFrame:
    """Logged outputs (one JSON object per row) as a frame, every column with its type back.

    Text stays ``str``, booleans ``bool``, integers ``int64`` and floats ``float64`` (null:
    NaN). Where some rows lack a value (a failed request logs ``{}``) integers and booleans
    become pandas' nullable ``Int64`` and ``boolean``, never floats or objects.
    """
    records = [json.loads(text) for text in texts]
    names = list(dict.fromkeys(name for record in records for name in record))
    columns = {name: _typed([record.get(name) for record in records]) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


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
    from rollbackkit.analysis.drift import json_safe

    records: list[dict[str, Any]] = json.loads(
        sample.drop(columns="outputs").to_json(orient="records", date_format="iso")
    )
    for record, text in zip(records, sample["outputs"], strict=True):
        record["outputs"] = json_safe(json.loads(text))
    return records


META_TYPES = {
    "request_id": pa.string(),
    "env": pa.string(),
    "name": pa.string(),
    "version": pa.string(),
    "bundle_id": pa.string(),
    "slot": pa.string(),
    "deployment": pa.string(),
    "latency_ms": pa.float64(),
    "error": pa.string(),
    "status": pa.string(),
    "batch_id": pa.string(),
    "staged": pa.bool_(),
}
"""Per-request fields of a queued record, as Arrow types (repeated for each of its rows)."""


@dataclass
class _Group:
    """Queued requests with one input and output signature, stacked as one Arrow table.

    ``table`` holds the :data:`META_TYPES` fields plus ``row``, ``time`` and
    ``primary_output``, then the inputs as ``i0..`` and the outputs as ``o0..`` (the
    names of those are in ``inputs`` and ``outputs``). Arrow, not pandas: DuckDB scans
    it without sniffing object columns, which made a small batch cost ~8 ms per statement.
    """

    table: pa.Table
    inputs: list[str]
    outputs: list[str]
    inputs_table: str
    staged: int


def _groups(pending: list[_Pending]) -> list[_Group]:
    """Queued requests stacked into tables, one per signature (input and output columns and
    dtypes, primary output): stacking never casts one request's outputs to another's type."""
    buckets: dict[tuple[Any, ...], list[_Pending]] = {}
    for item in pending:
        outputs = item.outputs
        out_cols = (tuple(outputs.columns.tolist()), tuple(outputs.dtypes.tolist())) if outputs is not None else ()
        # tolist() keeps this cheap: iterating an Index or str()-ing dtypes costs ~0.4 ms a frame
        signature = (
            tuple(item.inputs.columns.tolist()),
            tuple(item.inputs.dtypes.tolist()),
            out_cols,
            item.meta.get("primary"),
        )
        buckets.setdefault(signature, []).append(item)
    return [_group(items) for items in buckets.values()]


def _group(items: list[_Pending]) -> _Group:
    """One signature's requests as one table (see :class:`_Group`)."""
    sizes = np.fromiter((len(p.inputs) for p in items), dtype="int64", count=len(items))
    inputs = _stack([p.inputs for p in items])
    outputs = _stack([p.outputs if p.outputs is not None else pd.DataFrame(index=range(len(p.inputs))) for p in items])
    owner = pa.array(np.repeat(np.arange(len(items)), sizes))
    columns = {
        field: pa.array([p.meta.get(field) for p in items], kind).take(owner) for field, kind in META_TYPES.items()
    }
    columns["row"] = pa.array(np.arange(len(inputs)) - np.repeat(np.cumsum(sizes) - sizes, sizes), pa.int32())
    columns["time"] = pa.array(pd.to_datetime([p.meta["time"] for p in items], utc=True)).take(owner)
    columns["primary_output"] = primary_numbers(outputs, items[0].meta.get("primary"))
    arrow_inputs, arrow_outputs = _arrow(inputs), _arrow(outputs)
    columns.update({f"i{k}": arrow_inputs.column(k) for k in range(arrow_inputs.num_columns)})
    columns.update({f"o{k}": arrow_outputs.column(k) for k in range(arrow_outputs.num_columns)})
    staged = int(sum(size for size, p in zip(sizes, items, strict=True) if p.meta.get("staged")))
    return _Group(
        pa.table(columns),
        [str(c) for c in inputs.columns],
        [str(c) for c in outputs.columns],
        inputs_table(inputs),
        staged,
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
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):  # 2**64 + 1 too
        mixed = frame.select_dtypes(include="object").columns
        table = pa.Table.from_pandas(frame.astype(dict.fromkeys(mixed, "str")), preserve_index=False)
    return table.combine_chunks()


def _connect(path: Path, lock_wait: float, threads: int | None) -> Any:
    """Open the DuckDB file, waiting up to ``lock_wait`` seconds for another process's lock."""
    import duckdb

    deadline = time.monotonic() + lock_wait
    while True:
        try:
            return duckdb.connect(str(path), config={"threads": threads} if threads else {})
        except duckdb.Error as exc:
            if "lock" in str(exc).lower() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            holders = _servers_beside(path)
            raise InvalidInput(
                f"Cannot open the prediction log {path}: {str(exc).splitlines()[0]}.",
                (
                    f"It is held by the server for {holders}: one process writes a project's log, so stop "
                    "that server, or serve this model with --no-log."
                    if holders
                    else "Another process holds it: stop it, or ask the running server (the CLI does)."
                ),
            ) from exc


def _servers_beside(log: Path) -> str:
    """The servers recorded next to a log file, as ``NAME in ENV (URL)`` (empty if none)."""
    found = []
    for record in sorted((log.parent / "servers").glob("*.json")):
        try:
            data = json.loads(record.read_text())
            found.append(f"{data['name']} in {data['env']} ({data['url']})")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a record being written or removed: name the others
    return ", ".join(found)


def _version_filter(name: str, env: str, version: str, since: str | None) -> tuple[str, list[Any]]:
    where = "name = ? AND env = ? AND version = ? AND replaces IS NULL"
    params: list[Any] = [name, env, version]
    if since:
        where += " AND time >= CAST(? AS TIMESTAMPTZ)"
        params.append(since)
    return where, params


def _scalar(con: Any, sql: str, params: list[Any]) -> Any:
    row = con.execute(sql, params).fetchone()
    return row[0] if row else 0


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")
