"""Writing the log off the request path: the queue, the writer thread, batches, sinks.

:meth:`LogWriter.record` only appends a request's frames to a queue. A writer thread
commits one DuckDB transaction per batch, every ``flush_interval`` seconds or
``batch_rows`` rows, built as one Arrow table per input signature
(:mod:`rollbackkit.serving.predlog.batches`). Each batch records its row count in
``log_batches`` in the same transaction, so a half-written batch never exists; then every
sink gets the batch (a sink that missed batches is caught up from the log by batch id).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.serving.predlog import batches
from rollbackkit.serving.predlog.database import LogDatabase
from rollbackkit.serving.predlog.schema import (
    COLUMN_LIST,
    FIELDS,
    SHADOW_TABLE,
    SINK_COLUMNS,
    TABLES,
    outputs_json,
    quote,
)
from rollbackkit.serving.predlog.sinks import Sink

LOGGER = logging.getLogger(__name__)


class LogWriter(LogDatabase):
    """The log's write side: queue, writer thread, batch commits, sink mirroring.

    Args:
        path: The DuckDB file.
        flush_interval: Seconds between writer flushes.
        batch_rows: Rows that trigger an early flush (and bound a crash's loss).
        sinks: Downstream tables that mirror the staging/production contract.
        lock_wait: Seconds to wait for another process to release the file.
        threads: DuckDB's worker threads (None: one per core).
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
        super().__init__(path, lock_wait, threads)
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.sinks = list(sinks)
        self._queue: list[batches.Pending] = []
        self._queued_rows = 0
        self._queue_lock = threading.Condition()
        self._flush_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._closing = False
        self._sinks_behind = bool(self.sinks)
        self.sink_errors: list[str] = []
        self.write_errors: list[str] = []
        self._write_error_count = 0
        self._unwritten = 0

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
            self._queue.append(batches.Pending(meta, inputs, outputs))
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

    def _lost(self, item: batches.Pending, exc: Exception) -> None:
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

    def _commit(self, pending: list[batches.Pending]) -> int:
        """Write requests as one batch in one transaction; returns rows written."""
        batch_id = uuid.uuid4().hex
        for item in pending:  # per request, not per row: cheap dict work
            meta = item.meta
            key = (meta["name"], meta["env"], meta["version"])
            meta["status"] = "quarantined" if key in self._quarantined else "ok"
            stage = self.stage_of(meta["deployment"])
            meta["staged"], meta["shadow"] = stage == "staging", stage == "shadow"
            meta["batch_id"] = batch_id
        groups = batches.groups(pending)
        rows = sum(g.table.num_rows for g in groups)
        with self._tx() as con:
            for group in groups:
                self._insert_group(con, group)
            con.execute("INSERT INTO log_batches VALUES (?, ?, ?)", [batch_id, rows, datetime.now(UTC)])
        self._input_tables.update(g.inputs_table for g in groups)  # only once committed
        self._to_sinks(lambda sink: self._replay(sink, batch_id))
        return rows

    def _insert_group(self, con: Any, group: batches.Group) -> None:
        """Insert one signature's rows: typed inputs, then log rows (staged and not)."""
        table = group.inputs_table
        inputs = [f"i{k}" for k in range(len(group.inputs))]
        input_cols = ", ".join(f"{i} AS {quote(name)}" for i, name in zip(inputs, group.inputs, strict=True))
        input_hash = "lpad(hex(hash(" + ", ".join(inputs) + ")), 16, '0')"
        con.register("batch_frame", group.table)
        try:
            if table not in self._input_tables:
                con.execute(
                    f'CREATE TABLE IF NOT EXISTS {table} AS SELECT request_id, "row", {input_cols} '
                    "FROM batch_frame LIMIT 0"
                )
            insert = f'INSERT INTO {table} SELECT request_id, "row", {input_cols} FROM batch_frame b'
            if group.shadow:  # a shadow row shares its live row's id and inputs: stored once
                con.execute(f"{insert} WHERE NOT shadow")
                con.execute(
                    f"{insert} WHERE shadow AND NOT EXISTS (SELECT 1 FROM {table} t "
                    'WHERE t.request_id = b.request_id AND t."row" = b."row")'
                )
            else:
                con.execute(insert)
            computed = {  # COMPUTED_IN_SQL; every other row column is the batch's column of that name
                "input_hash": input_hash,
                "inputs_table": f"'{table}'",
                "outputs": outputs_json(group.outputs),
                "replaces": "NULL",
            }
            values = ", ".join(computed.get(name, quote(name)) for name in FIELDS)
            select = f"({COLUMN_LIST}) SELECT {values} FROM batch_frame"
            if group.shadow:  # a shadow's rows: never staged, never production
                con.execute(f"INSERT INTO {SHADOW_TABLE} {select} WHERE shadow")
            if group.staged:
                con.execute(f"INSERT INTO predictions_staging {select} WHERE staged AND NOT shadow")
            if group.staged + group.shadow < group.table.num_rows:
                con.execute(f"INSERT INTO predictions {select} WHERE NOT staged AND NOT shadow")
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
            committed = [
                r[0] for r in self._con.execute("SELECT batch_id FROM log_batches ORDER BY written").fetchall()
            ]
        try:
            for sink in self.sinks:
                done = sink.applied_batches()
                for batch_id in committed:
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
        columns = ", ".join(quote(c) for c in SINK_COLUMNS)
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
