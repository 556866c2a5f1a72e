"""The prediction-log process's own side: it opens one
:class:`~rollbackkit.serving.predlog.log.PredictionLog` and runs the records and calls that the
server's :class:`~rollbackkit.serving.predlog.process.LogProcess` sends over its socket, in order
(``python -m rollbackkit.serving.predlog.process_child FD``); :func:`attempt` and :func:`picklable`
frame a call's answer for either side.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pandas as pd

from rollbackkit.errors import RollbackkitError
from rollbackkit.serving.heap import settle_heap
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.sinks import sinks_from_config
from rollbackkit.serving.predlog.surface import CALLS


def attempt(action: Callable[[Any], Any] | None, value: Any) -> tuple[str, Any]:
    """``("ok", action(value))`` or ``("error", exception)``, ready to send back."""
    try:
        if action is None:
            raise RollbackkitError("The prediction-log process asked for a callback nobody gave.")
        return "ok", action(value)
    except Exception as exc:  # sent back to the caller, which raises it
        return "error", picklable(exc)


def picklable(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling (to cross the socket), else a :class:`RollbackkitError` saying it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RollbackkitError(f"{type(exc).__name__}: {exc}")


class _Child:
    """The child's side: one PredictionLog, fed and asked over one connection, in order."""

    def __init__(self, conn: Connection, log: PredictionLog) -> None:
        self.conn = conn
        self.log = log

    @classmethod
    def open(cls, conn: Connection) -> _Child | None:
        """Open the log the first message names; None (after saying why) when it cannot."""
        _, method, (path, sinks, options), _ = conn.recv()
        try:
            if method != "__open__":
                raise RollbackkitError(f"The prediction-log process expected __open__, not {method!r}.")
            log = PredictionLog(path, sinks=sinks_from_config(sinks), **options)
        except Exception as exc:
            conn.send(("error", picklable(exc)))
            return None
        conn.send(("ok", None))
        return cls(conn, log)

    def serve(self) -> None:
        """Handle messages until the server closes the log or goes away, then close it."""
        try:
            while True:
                message = self.conn.recv()
                if message[0] == "records":
                    self._records(message[1])
                elif message[1] == "__close__":
                    break
                else:
                    self.conn.send(attempt(lambda call: self._run(*call), message[1:]))
        except (EOFError, OSError):
            pass  # the server is gone: commit what arrived
        self.log.close()
        with contextlib.suppress(OSError):
            self.conn.send(("ok", None))

    def _records(self, blobs: list[bytes]) -> None:
        for blob in blobs:
            self.log.record(*pickle.loads(blob))

    def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method == "start":
            return self.log.start()
        if method not in CALLS:
            raise RollbackkitError(f"The prediction-log process does not run {method!r}.")
        if method == "backfill":
            name, env, version = args
            return self.log.backfill(name, env, version, self._rescore, **kwargs)
        return getattr(self.log, method)(*args, **kwargs)

    def _rescore(self, inputs: pd.DataFrame) -> Any:
        """Ask the server to score ``inputs``; records that arrive meanwhile are queued."""
        self.conn.send(("callback", inputs))
        while True:
            message = self.conn.recv()
            if message[0] == "records":
                self._records(message[1])
                continue
            status, value = message
            if status == "error":
                raise value
            return value


def main(argv: list[str]) -> None:
    """Entry point of the child: ``python -m rollbackkit.serving.predlog.process_child FD``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = _Child.open(Connection(int(argv[0])))
    if child is not None:
        settle_heap()  # a full collection would walk pandas and duckdb every few seconds
        child.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
