"""The PostgreSQL log's write side: a bounded buffer, a writer thread, exactly-once batches.

:meth:`PgLogWriter.record` only appends to a bounded in-memory buffer: it never blocks and
never raises to the request (a request arriving when ``buffer_rows`` rows wait is dropped and
counted). A writer thread, on its own connection, commits one transaction per batch
(``flush_interval`` seconds or ``batch_rows`` rows):

1. ``INSERT INTO log_batches ... ON CONFLICT DO NOTHING RETURNING``: no row back means this
   batch id committed before a connection was lost mid-commit, so it is skipped (exactly once);
2. the stages of the batch's deployments and the quarantined versions, read ``FOR SHARE``
   (another replica's promote or quarantine counts at once);
3. the rows by COPY, one ``log_inputs`` blob per input signature.

When the store is unreachable the batch is kept (same id) and retried with backoff (0.1 s
doubling to 2 s); requests keep filling the buffer, and everything is written once the store
is back. A batch the store refuses for its content is split so only the request at fault is
lost (counted in ``unwritten``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import pandas as pd
import psycopg

from rollbackkit.errors import StoreError
from rollbackkit.serving.postgres import rows
from rollbackkit.serving.postgres.batching import BACKOFF, Batch, held_bytes, outage
from rollbackkit.serving.postgres.logbase import PgLogBase, alive
from rollbackkit.serving.postgres.store import LOG_SESSION, Store, mapped
from rollbackkit.serving.predlog.batches import Pending

LOGGER = logging.getLogger(__name__)

__all__ = ["BACKOFF", "PgLogWriter"]  # BACKOFF: where callers found it first


class _Outage(Exception):
    """The store could not be reached, or the connection broke: the batch's outcome is unknown."""


class PgLogWriter(PgLogBase):
    """The log's write side on the store (see the module docstring).

    Args:
        store: The opened store.
        flush_interval: Seconds between the writer's commits.
        batch_rows: Rows that make a batch (and trigger an early commit).
        buffer_rows: The most rows waiting in memory; requests beyond are dropped and counted
            (one request larger than it is kept when nothing else waits).
        buffer_bytes: The most bytes waiting in memory, the same way (:func:`held_bytes`
            a request): 256 MB keeps ~40,000 one-row requests of 20 features through an outage.
        replica: This replica's id (the rows' ``replica`` column).
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.2,
        batch_rows: int = 20_000,
        buffer_rows: int = 200_000,
        buffer_bytes: int = 256 * 2**20,
        replica: str = "",
    ) -> None:
        super().__init__(store)
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.buffer_rows = buffer_rows
        self.buffer_bytes = buffer_bytes
        self._buffered_bytes = 0
        self.replica = replica
        self._cond = threading.Condition()
        self._queue: list[Pending] = []
        self._queue_bytes: list[int] = []  # each queued request's held_bytes
        self._buffered = 0  # rows queued or in the batch being committed
        self._accepted = 0  # requests accepted so far
        self._done = 0  # requests committed (or lost), in order
        self._inflight: Batch | None = None
        self._singles: list[Batch] = []  # a refused batch's requests, retried one by one
        self._dropped = 0
        self._drop_warned = False
        self._flush_lock = threading.Lock()
        self._wcon: psycopg.Connection[Any] | None = None
        self._lost_connection = False
        self._reachable = True
        self._reconnects = 0
        self._backoff = BACKOFF[0]
        self._writer: threading.Thread | None = None
        self._closing = False
        self._closed = False  # close() returned: a request recorded now is dropped, counted
        self._close_by = float("inf")
        self.write_errors: list[str] = []
        self.sink_errors: list[str] = []
        self._write_error_count = 0
        self._unwritten = 0

    # ------------------------------------------------------------------ request path
    def record(self, meta: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame | None) -> None:
        """Buffer one request's rows; never blocks, never raises (a full buffer drops and counts it in
        ``dropped``; a request that cannot be buffered counts in ``unwritten`` and ``write_errors``).

        Args:
            meta: As the DuckDB log's (``serving/request_path.py`` builds it).
            inputs: The request's feature rows.
            outputs: The rows' outputs, or None when the request failed.
        """
        try:
            size = len(inputs)
            nbytes = held_bytes(inputs, outputs)
            with self._cond:
                if self._closed:
                    self._dropped += size
                    return
                full = self._buffered + size > self.buffer_rows or self._buffered_bytes + nbytes > self.buffer_bytes
                if self._buffered and full:  # alone, a big request fits
                    self._dropped += size
                    warn, self._drop_warned = not self._drop_warned, True
                    if warn:  # once until the store takes rows again
                        LOGGER.warning("The prediction log's buffer is full (%d rows, %d MB): requests are dropped, "
                                       "counted in /status.", self._buffered, self._buffered_bytes >> 20)  # fmt: skip
                    return
                self._queue.append(Pending(meta, inputs, outputs))
                self._queue_bytes.append(nbytes)
                self._buffered += size
                self._buffered_bytes += nbytes
                self._accepted += 1
                if self._buffered - (self._inflight.size if self._inflight else 0) >= self.batch_rows:
                    self._cond.notify_all()
        except Exception as exc:  # the request path never fails because of the log: counted, not swallowed
            LOGGER.exception("The prediction log could not buffer a request.")
            self._write_failed(f"request {meta.get('request_id')} not buffered: {type(exc).__name__}: {exc}", 1)

    # ------------------------------------------------------------------ writer thread
    def start(self) -> None:
        """Start the writer thread (its own connection)."""
        self._writer = threading.Thread(target=self._run, name="rollbackkit-pg-log-writer", daemon=True)
        self._writer.start()

    def _run(self) -> None:
        try:
            self._loop()
        finally:  # the thread owns its connection: closed here, never under a statement of its own
            with self._flush_lock:
                self._drop_writer_connection()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:  # close() gave up waiting: stop now, and silently (the process may be exiting)
                    return
                ready = self._buffered - (self._inflight.size if self._inflight else 0) >= self.batch_rows
                if not self._closing and not ready:
                    self._cond.wait(self._backoff if not self._reachable else self.flush_interval)
                closing = self._closing
            try:
                self._drain(None, self._close_by if closing else None)
            except Exception as exc:  # the writer outlives anything
                if not self._closed:
                    LOGGER.exception("The prediction log writer failed.")
                self._write_failed(f"{type(exc).__name__}: {exc}", 0)
            with self._cond:
                if closing and (self._done >= self._accepted or time.monotonic() >= self._close_by):
                    return

    def flush(self, timeout: float = 30.0) -> bool:
        """Commit everything buffered before this call; False when the store stayed unreachable
        for ``timeout`` seconds (the rows stay buffered). With the writer thread running, this
        only wakes it and waits: it returns within ``timeout`` whatever the store does."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._accepted
            if self._writer is not None and self._writer.is_alive():  # it commits; this call only waits
                self._cond.notify_all()
                while self._done < target and self._writer.is_alive():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.1))
                if self._done >= target:
                    return True
        while True:
            with self._cond:
                if self._done >= target:
                    return True
                backoff = self._backoff
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self._flush_lock.acquire(timeout=min(left, 0.05)):
                continue  # the writer thread is committing: look again whether it got this far
            try:
                finished = self._drain_locked(target)
            finally:
                self._flush_lock.release()
            if not finished:
                if time.monotonic() + backoff >= deadline:
                    return False
                time.sleep(backoff)

    def _drain(self, target: int | None, until: float | None) -> None:
        """Commit batches (as the thread); while closing, retry an outage until ``until``."""
        with self._cond:
            target = self._accepted if target is None else target
        with self._flush_lock:
            finished = self._drain_locked(target)
        while not finished and until is not None and time.monotonic() + self._backoff < until:
            time.sleep(self._backoff)
            with self._flush_lock:
                finished = self._drain_locked(target)

    def _drain_locked(self, target: int | None) -> bool:
        """Commit batches until requests up to ``target`` (None: all) are done; False on an outage.

        A batch the store refuses for its content is retried one request at a time (each under
        its own id, before anything newer), so only the request at fault is lost.
        """
        while True:
            with self._cond:
                if self._done >= (self._accepted if target is None else target):
                    return True
                if self._inflight is None:
                    self._inflight = self._singles.pop(0) if self._singles else self._take()
                batch = self._inflight
            try:
                self._commit(batch)
            except _Outage as exc:
                self._outage(exc)
                return False
            except Exception as exc:
                if len(batch.items) > 1:
                    with self._cond:
                        self._singles[:0] = [
                            Batch([item], len(item.inputs), held_bytes(item.inputs, item.outputs))
                            for item in batch.items
                        ]
                        self._inflight = None
                    continue
                self._lost(batch.items[0], exc)
            self._finished(batch)

    def _take(self) -> Batch:
        """Up to ``batch_rows`` rows taken from the queue as a new batch (under ``_cond``)."""
        count = size = nbytes = 0
        for item, held in zip(self._queue, self._queue_bytes, strict=True):
            if count and size + len(item.inputs) > self.batch_rows:
                break
            count += 1
            size += len(item.inputs)
            nbytes += held
        batch = Batch(self._queue[:count], size, nbytes)
        del self._queue[:count]
        del self._queue_bytes[:count]
        return batch

    def _finished(self, batch: Batch) -> None:
        with self._cond:
            self._inflight = None
            self._buffered -= batch.size
            self._buffered_bytes -= batch.nbytes
            self._done += len(batch.items)
            self._reachable, self._backoff, self._drop_warned = True, BACKOFF[0], False
            self._cond.notify_all()

    # ------------------------------------------------------------------ one transaction
    def _commit(self, batch: Batch) -> bool:
        """Write ``batch`` in one transaction; False when it was committed before (skipped).

        Raises:
            _Outage: the store is unreachable or the connection broke (outcome unknown).
        """
        if batch.parts is None:
            batch.parts = rows.parts(batch.items, batch.batch_id, self.replica)
        con = self._writer_connection()
        try:
            with con.transaction():
                written = rows.write(con, batch.batch_id, batch.size, self.replica, batch.parts)
        except psycopg.Error as exc:
            if con.closed or con.broken or outage(exc):
                if con.closed or con.broken or not exc.sqlstate:
                    self._drop_writer_connection()
                raise _Outage(mapped(exc, self.store.where).message) from exc
            raise
        return written

    def _writer_connection(self) -> psycopg.Connection[Any]:
        con = self._wcon
        if con is not None and alive(con):
            return con
        if con is not None:  # the server ended it while idle (a restart): a new one, counted
            self._drop_writer_connection()
        try:
            con = self._wcon = self.store.connect(
                autocommit=True, purpose="log writer", keepalive=True, settings=LOG_SESSION
            )
        except StoreError as exc:
            raise _Outage(exc.message) from exc
        if self._lost_connection:
            self._lost_connection = False
            self._reconnects += 1
        return con

    def _drop_writer_connection(self) -> None:
        if self._wcon is not None:
            with contextlib.suppress(Exception):  # already broken
                self._wcon.close()
        self._wcon = None
        self._lost_connection = True

    # ------------------------------------------------------------------ failures
    def _outage(self, exc: _Outage) -> None:
        first = self._reachable
        with self._cond:
            self._reachable = False
            self._lost_connection = True
            self._backoff = min(self._backoff * 2, BACKOFF[1]) if not first else BACKOFF[0]
        message = f"store unreachable: {exc}"
        if first and not self._closed:  # after close() nothing of ours logs: the interpreter may be finalizing
            LOGGER.warning("The prediction log keeps rows in memory: %s", message)
        self._write_failed(message, 0)

    def _lost(self, item: Pending, exc: Exception) -> None:
        text = str(exc).splitlines()[0] if str(exc) else ""
        message = f"request {item.meta.get('request_id')}: {type(exc).__name__}: {text}"
        if not self._closed:
            LOGGER.error(
                "The prediction log could not write %s (%d rows) to %s.", message, len(item.inputs), self.store.where
            )
        self._write_failed(message, 1)

    def _write_failed(self, message: str, requests: int) -> None:
        with self._cond:
            self._write_error_count += 1
            self._unwritten += requests
            self.write_errors.append(message)
            del self.write_errors[:-100]

    # ------------------------------------------------------------------ status and close
    def status(self) -> dict[str, Any]:
        """The writer's health: the DuckDB log's keys plus ``buffered`` (rows waiting),
        ``buffered_bytes`` (their memory, about),
        ``dropped`` (rows dropped: buffer full), ``reachable``, ``reconnects`` and ``store``."""
        with self._cond:
            return {
                "write_errors": self._write_error_count,
                "last_write_error": self.write_errors[-1] if self.write_errors else None,
                "unwritten": self._unwritten,
                "sink_errors": len(self.sink_errors),
                "buffered": self._buffered,
                "buffered_bytes": self._buffered_bytes,
                "dropped": self._dropped,
                "reachable": self._reachable,
                "reconnects": self._reconnects,
                "store": self.store.where,
            }

    def close(self, wait: float = 10.0) -> int | None:
        """Write what is buffered (for up to ``wait`` seconds), stop the writer, close connections.

        A writer thread still inside a statement or a connect at the deadline is not waited for:
        it stops on its own when that returns, logs nothing more and closes its own connection
        (its owner: never closed under it from here). The server joins it
        (:func:`~rollbackkit.serving.server.serve`), so it never runs while Python finalizes.

        Returns:
            None when everything was written, else the requests left unwritten (store unreachable).
        """
        deadline = time.monotonic() + wait
        with self._cond:
            self._closing, self._close_by = True, deadline
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(max(0.0, deadline - time.monotonic()))
        if self._writer is None or not self._writer.is_alive():
            self.flush(max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = self._accepted - self._done
            self._closed = True
        gone = self._writer is None or not self._writer.is_alive()  # else it closes its own on its way out
        if gone and self._flush_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self._drop_writer_connection()
            finally:
                self._flush_lock.release()
        self._close_connection()
        if left:
            LOGGER.error("The prediction log could not write %d requests to %s.", left, self.store.where)
        return left or None
