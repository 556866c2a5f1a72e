"""The log's DuckDB file: one connection, its lock, transactions, and what the file holds.

DuckDB allows one writing process per file: opening waits ``lock_wait`` seconds for
another process (a server's writer process finishing its last batch) and then says who
holds the file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.predlog import schema


class LogDatabase:
    """The open log file, with the log's schema, and the stages and quarantines it records.

    The base of :class:`~rollbackkit.serving.predlog.log.PredictionLog`: every part of the
    log runs its SQL through :meth:`_tx` (a transaction) or under ``_db`` (the lock on the
    one connection).

    Args:
        path: The DuckDB file (created with its folder if missing).
        lock_wait: Seconds to wait for another process to release the file.
        threads: DuckDB's worker threads (None: one per core).
    """

    def __init__(self, path: str | Path, lock_wait: float = 10.0, threads: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = _connect(self.path, lock_wait, threads)
        self._db = threading.RLock()
        with self._tx() as con:
            state = schema.create(con)
        self._stages = state.stages
        self._quarantined = state.quarantined
        self._input_tables = state.input_tables

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """The connection inside one transaction (rolled back if the block raises)."""
        with self._db:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def knows(self, deployment: str) -> bool:
        """Whether a stage was ever declared for ``deployment``."""
        return deployment in self._stages

    def stage_of(self, deployment: str) -> str:
        """``staging``, ``production`` or ``shadow`` (deployments never declared: production)."""
        return self._stages.get(deployment, "production")


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
