"""The prediction log in its own process, so logging never competes with serving for the GIL.

A server's :class:`LogProcess` starts ``python -m rollbackkit.serving.predlog.process_child``
(:mod:`~rollbackkit.serving.predlog.process_child`, the child's side) and talks to it
over a private socket pair (``multiprocessing.connection`` framing). The child owns the
DuckDB file and runs an ordinary :class:`~rollbackkit.serving.predlog.log.PredictionLog`
with its writer thread; every call of the log's surface
(:class:`~rollbackkit.serving.predlog.surface.LogCalls`: ``window``, ``promote``,
``quarantine``, ``affected``, ``backfill``, ...) is forwarded to it by name and answered in
order after the records sent before it. ``backfill`` re-scores through a callback: the
child sends each batch of stored inputs back and the server scores it with its own loaded
bundle.

Why a process: a flush builds frames and runs DuckDB inserts that hold the GIL in pieces;
in a thread that raised the one-row p99 of requests. In its own process the request path
only pickles the request and appends bytes to a list. The writer still shares the machine:
``bench/sideeffects.py`` measures log on vs off (``bench/results/sideeffects.json``).

Durability: the server hands its queue to the child every ``send_interval`` (0.05 s). A
``kill -9`` of the server loses at most that last send interval: the child reads what
is left on the socket, commits it, and exits. A ``kill -9`` of both loses at most the
child's unflushed batch as well (``flush_interval``, 0.5 s by default; at most
``batch_rows`` rows).
The child ignores SIGINT and SIGTERM: it stops when the server closes the log or dies.
If the child dies, serving goes on: requests handed to it meanwhile are counted as
``dropped`` (``GET /status``, ``log``), and the next hand-over starts a new child.
Requests the child received but could not commit are counted there too (``unwritten``,
with ``write_errors`` and ``last_write_error``): nothing is lost uncounted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.errors import LogWriterStopped, RollbackkitError
from rollbackkit.serving.predlog.process_child import attempt
from rollbackkit.serving.predlog.surface import CALLS, LogCalls

if TYPE_CHECKING:
    # For the type checker, LogProcess has every call of the surface with its signature;
    # at run time __getattr__ forwards them to the child (one list: CALLS).
    _Surface = LogCalls
else:
    _Surface = object

LOGGER = logging.getLogger(__name__)

WRITER_FLUSH_INTERVAL = 0.5
"""Seconds between the writer's commits. A commit costs the writer CPU nearly whatever its
size, and a server's p99 pays for every busy moment of its neighbours, so a server's writer
commits less often than an in-process log (see ``bench/results/sideeffects.json``). A
crash of the server alone still loses only the last hand-over (``send_interval``)."""

MAX_PENDING = 100_000
"""Requests held while the child is unreachable; more are dropped (and counted)."""


class LogProcess(_Surface):
    """A :class:`~rollbackkit.serving.predlog.log.PredictionLog` run in a child process.

    Offers the methods a server uses (:meth:`record`, :meth:`start`, :meth:`close` and
    the calls of :class:`~rollbackkit.serving.predlog.surface.LogCalls`) with the same
    signatures and results: every call but :meth:`backfill` and :meth:`status` is
    forwarded by name (:meth:`__getattr__`). Open a project's with
    :func:`~rollbackkit.serving.predlog.opening.open_log` (``process=True``).

    Args:
        path: The DuckDB file.
        sinks: The ``sinks:`` entries of the project config (built in the child).
        send_interval: Seconds between hand-overs of queued requests to the child.
        options: ``flush_interval`` (:data:`WRITER_FLUSH_INTERVAL` by default),
            ``batch_rows`` and ``threads`` (DuckDB's, 1 by default) for the child's
            PredictionLog.
    """

    def __init__(
        self,
        path: str | Path,
        sinks: list[dict[str, Any]] | None = None,
        send_interval: float = 0.05,
        **options: Any,
    ) -> None:
        self.path = Path(path)
        self.send_interval = send_interval
        self.dropped = 0
        self.restarts = 0
        self._open_args = (str(self.path), sinks, {"threads": 1, "flush_interval": WRITER_FLUSH_INTERVAL, **options})
        self._pending: list[bytes] = []
        self._unanswered = 0  # requests handed over since the child last answered a call
        self._pending_lock = threading.Condition()
        self._send_lock = threading.RLock()
        self._call_lock = threading.Lock()
        self._closing = False
        self._started = False
        self._next_revival = 0.0
        self._sender: threading.Thread | None = None
        self._writer_status: dict[str, Any] = {
            "write_errors": 0,
            "last_write_error": None,
            "unwritten": 0,
            "sink_errors": 0,
        }
        self._spawn()

    def _spawn(self) -> None:
        """Start a child and open the log in it; raise what opening raised."""
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rollbackkit.serving.predlog.process_child", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        try:
            self._exchange("__open__", self._open_args, {})
            if self._started:
                self._exchange("start", (), {})
        except BaseException:
            self._conn.close()
            self._process.wait(timeout=60)
            raise

    def _revive(self) -> None:
        """Start a new child when the last one died (at most every 5 s); its lock died with it."""
        if self._process.poll() is None or self._closing or time.monotonic() < self._next_revival:
            return
        self._next_revival = time.monotonic() + 5.0
        LOGGER.error("The prediction-log process exited (%s); starting a new one.", self._process.returncode)
        self._conn.close()
        self._spawn()
        self.restarts += 1

    # ------------------------------------------------------------------------- records
    def record(self, meta: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame | None) -> None:
        """Queue one request's rows for the child (see :meth:`PredictionLog.record`)."""
        blob = pickle.dumps((meta, inputs, outputs), protocol=pickle.HIGHEST_PROTOCOL)
        with self._pending_lock:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending.append(blob)

    def backlog(self) -> int:
        """Requests not yet acknowledged by the writer process (``/metrics``' log backlog): those
        queued here plus those handed over since it last answered. Read without a lock, so it
        moves while the child is stopped or the pipe to it is full."""
        return len(self._pending) + self._unanswered

    def counts(self) -> dict[str, Any]:
        """What this process knows without asking the child (never blocks): ``alive`` (the child
        has not exited), ``restarts``, ``dropped`` and ``backlog`` (:meth:`backlog`)."""
        return {
            "alive": self._process.poll() is None,
            "restarts": self.restarts,
            "dropped": self.dropped,
            "backlog": self.backlog(),
        }

    def start(self) -> None:
        """Start handing queued requests to the child (and its writer, and sink catch-up)."""
        self._call("start")
        self._started = True
        self._sender = threading.Thread(target=self._send_loop, name="rollbackkit-log-sender", daemon=True)
        self._sender.start()

    def _send_loop(self) -> None:
        while True:
            with self._pending_lock:
                if not self._closing:
                    self._pending_lock.wait(self.send_interval)
                closing = self._closing
            self._send_pending()
            if closing:
                return

    def _send_pending(self) -> None:
        """Send the queue; taken and sent under one lock, so hand-overs keep their order."""
        with self._send_lock:
            with self._pending_lock:
                blobs, self._pending = self._pending, []
            if not blobs:
                return
            try:
                self._revive()
                self._conn.send(("records", blobs))
                self._unanswered += len(blobs)
            except (OSError, RollbackkitError) as exc:
                self.dropped += len(blobs)
                LOGGER.error("The prediction-log process is gone (%s); %d requests were not logged.", exc, len(blobs))

    # ------------------------------------------------------------------------- calls
    def _call(self, method: str, *args: Any, callback: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        """Run ``method`` in the child after everything queued so far; raise what it raised."""
        with self._call_lock:
            with self._send_lock:
                self._revive()
                self._send_pending()
            return self._exchange(method, args, kwargs, callback)

    def _exchange(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], callback: Callable[[Any], Any] | None = None
    ) -> Any:
        """Send one call and answer its callbacks until its result comes back."""
        try:
            with self._send_lock:
                self._conn.send(("call", method, args, kwargs))
            while True:
                status, value = self._conn.recv()
                if status != "callback":
                    self._unanswered = 0
                    break
                reply = attempt(callback, value)
                with self._send_lock:
                    self._conn.send(reply)
        except (EOFError, OSError) as exc:
            raise LogWriterStopped(
                f"The prediction-log process for {self.path} stopped ({type(exc).__name__}).",
                "The server starts a new one on its next write; committed predictions are safe in the log file.",
            ) from exc
        if status == "error":
            raise value
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """A call of the log's surface (:data:`~rollbackkit.serving.predlog.surface.CALLS`), run in the child."""
        if name not in CALLS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return functools.partial(self._call, name)

    def backfill(
        self,
        name: str,
        env: str,
        version: str,
        rescore: Callable[[pd.DataFrame], Any],
        batch: int = 5000,
        primary: str | None = None,
    ) -> dict[str, Any]:
        """See :meth:`PredictionLog.backfill`; ``rescore`` runs here, in the server."""
        result: dict[str, Any] = self._call(
            "backfill", name, env, version, batch=batch, primary=primary, callback=rescore
        )
        return result

    def status(self, wait: float = 1.0) -> dict[str, Any]:
        """The writer process's health: pid, alive, restarts, requests it never got
        (``dropped``), and what its writer could not commit (see :meth:`PredictionLog.status`).

        The writer's counts are asked for at most ``wait`` seconds (a long ``backfill`` holds
        the connection); meanwhile, or when the child is down, the last counts it gave.
        """
        alive = self._process.poll() is None
        if alive and self._call_lock.acquire(timeout=wait):
            try:
                with self._send_lock:
                    self._send_pending()
                self._writer_status = self._exchange("status", (), {})
            except RollbackkitError:
                alive = False
            finally:
                self._call_lock.release()
        return {
            "process": self._process.pid,
            "alive": alive,
            "restarts": self.restarts,
            "dropped": self.dropped,
            **self._writer_status,
        }

    # ------------------------------------------------------------------------- lifecycle
    def close(self, wait: float = 60.0) -> int | None:
        """Hand over what is queued, let the child commit it and close the file, then reap it.

        The child gets ``wait`` seconds in all (a huge request can keep it busy for minutes);
        then it is killed. Returns None when it finished, else how many requests it may not
        have written (those handed to it since it last answered plus those never handed over).
        """
        deadline = time.monotonic() + wait
        with self._pending_lock:
            self._closing = True
            self._pending_lock.notify()
        if self._sender is not None:
            self._sender.join(timeout=max(0.0, deadline - time.monotonic()))

        def finish() -> None:
            with contextlib.suppress(LogWriterStopped, OSError):
                self._call("__close__")

        closer = threading.Thread(target=finish, name="rollbackkit-log-close", daemon=True)
        closer.start()
        closer.join(timeout=max(0.0, deadline - time.monotonic()))
        unwritten = None
        if closer.is_alive():  # still writing (or still being sent to): stop it
            with self._pending_lock:
                unwritten = self._unanswered + len(self._pending)
            self._process.kill()
            closer.join(timeout=10)
        self._conn.close()
        try:
            self._process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        return unwritten
