"""One watchdog per environment: the replica that holds a PostgreSQL advisory lock leads.

The lock is session-level, taken with ``pg_try_advisory_lock`` on the leader's own
long-lived connection (TCP keepalives on both ends; a direct or session-pooled connection: a
transaction-mode pooler would let two replicas share the backend that holds it, and both
lead): when the leader's process dies, or its
connection is closed or terminated, PostgreSQL releases the lock and the next replica to try
takes it, within one watchdog interval. The ``watchdog`` table says who leads since when and
holds the leader's last gate report, which followers show in their ``/status``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from rollbackkit.serving.postgres.routing import SHORT_STATEMENTS
from rollbackkit.serving.postgres.store import Store

LEADER_TIMEOUT = 2.0
"""Seconds a leadership check waits for the store before it counts as "not leading"."""

_KEY = "hashtextextended('rollbackkit watchdog ' || %s || ' ' || %s, 0)"
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    f" AND ((classid::bigint << 32) | objid::bigint) = {_KEY})"
)


@dataclass(frozen=True)
class LeaderReport:
    """Who leads the watchdog of one environment, and its last gate report.

    Attributes:
        leader: The leading replica's id, or None while nobody holds the lock.
        since: When it took the lead.
        report: Its last gate report (``gates`` in ``/status``), or None before its first.
        evaluated: When it wrote that report.
    """

    leader: str | None
    since: datetime | None
    report: dict[str, Any] | None
    evaluated: datetime | None


def current(con: psycopg.Connection, name: str, env: str) -> LeaderReport:
    """The ``watchdog`` row of NAME/ENV on ``con``; ``leader`` None unless someone holds the lock now."""
    row = con.execute("SELECT leader, since, report, evaluated FROM watchdog WHERE name = %s AND env = %s",
                      (name, env)).fetchone()  # fmt: skip
    held = con.execute(_HELD, (name, env)).fetchone()
    if row is None:
        return LeaderReport(None, None, None, None)
    leader = row[0] if held is not None and held[0] else None
    return LeaderReport(leader, row[1] if leader else None, row[2], row[3])


class Leadership:
    """Whether this replica leads the watchdog of NAME/ENV (see the module's docstring).

    Args:
        store: The shared store.
        name: Bundle name.
        env: Environment.
        replica: This replica's id (written as the leader when it takes the lock).
    """

    def __init__(self, store: Store, name: str, env: str, replica: str) -> None:
        self.store, self.name, self.env, self.replica = store, name, env, replica
        self.error: str | None = None
        self.unfit: Callable[[], str | None] | None = None
        """Why this replica must not lead now (it does not serve the published state), or None."""
        self._con: psycopg.Connection | None = None  # holds the lock
        self._reader: psycopg.Connection | None = None  # reads who leads: its failures never drop the lead
        self._held = False
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()

    def leading(self) -> bool:
        """True while this replica holds the lock; takes it when it is free.

        A lock already held is confirmed with one round trip on its connection (a connection
        that broke lost the lock: a fresh one tries again at once). False when the store is
        unreachable; never raises (``error`` says why). While :attr:`unfit` says why this replica
        cannot follow the published state, it gives the lead up (another replica takes it) and
        does not take it.
        """
        why = self.unfit() if self.unfit is not None else None
        if why is not None:
            self.release()
            self.error = f"not leading: {why}"
            return False
        with self._lock:
            for attempt in range(2):
                try:
                    return self._take()
                except Exception as exc:  # the store went away: not leading, say why, retry once fresh
                    self._drop()
                    self.error = " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())
                    if attempt == 0 and not self._was_connected(exc):
                        break
            return False

    def _take(self) -> bool:
        con = self._connection()
        if self._held:
            con.execute("SELECT 1")
            self.error = None
            return True
        row = con.execute(f"SELECT pg_try_advisory_lock({_KEY})", (self.name, self.env)).fetchone()
        self._held = bool(row and row[0])
        if self._held:
            con.execute(
                "INSERT INTO watchdog (name, env, leader, since) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (name, env) DO UPDATE SET leader = EXCLUDED.leader, since = EXCLUDED.since",
                (self.name, self.env, self.replica),
            )
        self.error = None
        return self._held

    @staticmethod
    def _was_connected(exc: Exception) -> bool:
        """Whether ``exc`` broke a connection that was up (worth one fresh attempt)."""
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))

    def _connection(self) -> psycopg.Connection:
        if self._con is None or self._con.closed:
            self._held = False
            self._con = self._connect("watchdog")
        return self._con

    def _connect(self, purpose: str) -> psycopg.Connection:
        return self.store.connect(
            autocommit=True, timeout=LEADER_TIMEOUT, purpose=f"{purpose} {self.replica}", keepalive=True,
            settings=SHORT_STATEMENTS,
        )  # fmt: skip

    def _drop(self) -> None:
        self._held = False
        if self._con is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release, PostgreSQL did it
                self._con.close()
            self._con = None

    def leader(self) -> str | None:
        """Who leads now (None: nobody holds the lock, or the store is unreachable)."""
        report = self.last()
        return report.leader if report is not None else None

    def last(self) -> LeaderReport | None:
        """Who leads and its last report; None when the store is unreachable (never raises).

        Read on a connection of its own: a failed read (``/status`` polled while the store is
        slow) never costs this replica the lead.
        """
        with self._read_lock:
            try:
                if self._reader is None or self._reader.closed or self._reader.broken:
                    self._reader = self._connect("watchdog reads")
                return current(self._reader, self.name, self.env)
            except Exception as exc:
                if self._reader is not None:
                    with contextlib.suppress(Exception):
                        self._reader.close()
                self._reader = None
                self.error = " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())
                return None

    def record(self, report: dict[str, Any] | None) -> None:
        """Store the leader's last gate report for the followers (only while leading; never raises)."""
        with self._lock:
            if not self._held or self._con is None:
                return
            try:
                self._con.execute(
                    "UPDATE watchdog SET report = %s::jsonb, evaluated = now() "
                    "WHERE name = %s AND env = %s AND leader = %s",
                    (json.dumps(report, default=str), self.name, self.env, self.replica),
                )
            except Exception as exc:  # the next leading() finds the connection broken
                self.error = " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())

    def status(self) -> dict[str, Any]:
        """``watchdog`` in ``/status``: ``leader`` (who leads), ``leading`` (this replica), ``error``."""
        last = self.last()
        return {
            "leader": last.leader if last is not None else None,
            "leading": self._held,
            "since": last.since.isoformat() if last is not None and last.since is not None else None,
            "error": self.error,
        }

    def release(self) -> None:
        """Give the lead up (another replica takes it at its next check) and close the connection."""
        with self._lock:
            if self._held and self._con is not None:
                try:
                    self._con.execute(
                        "UPDATE watchdog SET leader = NULL WHERE name = %s AND env = %s AND leader = %s",
                        (self.name, self.env, self.replica),
                    )
                    self._con.execute(f"SELECT pg_advisory_unlock({_KEY})", (self.name, self.env))
                except Exception:  # closing the connection below releases it anyway
                    pass
            self._drop()
        with self._read_lock:
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    self._reader.close()
            self._reader = None
