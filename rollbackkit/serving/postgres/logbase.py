"""The PostgreSQL log's base: one connection for reads and admin, transactions, deployment stages.

Every replica of an environment shares the store, so nothing here is cached: a deployment's
stage is read from ``log_deployments`` (another replica may have declared or promoted it a
moment ago). The writer thread has its own connection (:mod:`.writer`).
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import psycopg

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.postgres.store import LOG_READS, Store, mapped
from rollbackkit.serving.predlog.schema import STAGES

LONG_STATEMENT = "10min"
"""How long one statement of a lifecycle step or a label ingest may run."""


def alive(con: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection still works, without a round trip: an idle session has
    nothing to read unless the server ended it (a restart, ``pg_terminate_backend``)."""
    if con.closed or con.broken:
        return False
    try:
        readable, _, _ = select.select([con.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


class PgLogBase:
    """The store's log tables through one connection (under ``_db``, a re-entrant lock).

    Args:
        store: The opened store (:func:`~rollbackkit.serving.postgres.store.open_store`).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = threading.RLock()
        self._con: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection (a new one when there is none or it broke)."""
        con = self._con
        if con is None or not alive(con):
            if con is not None:
                con.close()
            self._con = None
            con = self._con = self.store.connect(autocommit=True, purpose="log", settings=LOG_READS)
        return con

    @contextmanager
    def _tx(self, *, long: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """The connection inside one transaction (rolled back if the block raises).

        Reconnects first when the connection broke; a psycopg error leaves as a
        :class:`~rollbackkit.errors.StoreError` (one line, no password). A statement may run
        30 s (:data:`~rollbackkit.serving.postgres.store.LOG_READS`), ``long`` ones
        :data:`LONG_STATEMENT` (a lifecycle step moving a version's rows, a label ingest).
        """
        with self._db:
            try:
                con = self._connection()
                with con.transaction():
                    if long:
                        con.execute(f"SET LOCAL statement_timeout = '{LONG_STATEMENT}'")
                    yield con
            except psycopg.Error as exc:
                raise mapped(exc, self.store.where) from exc

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A read's rows as a DataFrame (columns as the query names them)."""
        with self._tx() as con, con.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]  # SQL built by the log, not user input
            names = [column.name for column in cur.description or ()]
            return pd.DataFrame.from_records(cur.fetchall(), columns=names)

    def _close_connection(self) -> None:
        """Close the reads/admin connection (the next call opens a new one)."""
        with self._db:
            if self._con is not None:
                self._con.close()
                self._con = None

    def flush(self, timeout: float = 30.0) -> bool:
        """Commit what is buffered (the writer overrides this; without one nothing is)."""
        return True

    def knows(self, deployment: str) -> bool:
        """Whether a stage was ever declared for ``deployment`` (by any replica)."""
        with self._tx() as con:
            row = con.execute("SELECT 1 FROM log_deployments WHERE deployment = %s", (deployment,)).fetchone()
        return row is not None

    def stage_of(self, deployment: str) -> str:
        """``staging``, ``production`` or ``shadow`` (deployments never declared: production)."""
        with self._tx() as con:
            row = con.execute("SELECT stage FROM log_deployments WHERE deployment = %s", (deployment,)).fetchone()
        return str(row[0]) if row is not None and row[0] is not None else "production"

    def set_stage(self, deployment: str, name: str, env: str, version: str, stage: str) -> None:
        """Declare where a deployment's rows go (``staging``, ``production`` or ``shadow``).

        A fresh deployment of a version writes normal rows again, even if an earlier
        deployment of it was quarantined (its quarantine record goes).
        """
        if stage not in STAGES:
            raise InvalidInput(f"Unknown log stage {stage!r}.", f"Use one of {', '.join(STAGES)}.")
        with self._tx() as con:
            con.execute(
                "INSERT INTO log_deployments (deployment, name, env, version, stage, updated) "
                "VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (deployment) DO UPDATE SET name = EXCLUDED.name, "
                "env = EXCLUDED.env, version = EXCLUDED.version, stage = EXCLUDED.stage, updated = EXCLUDED.updated",
                (deployment, name, env, version, stage),
            )
            con.execute(
                "DELETE FROM log_quarantine WHERE name = %s AND env = %s AND version = %s", (name, env, version)
            )
