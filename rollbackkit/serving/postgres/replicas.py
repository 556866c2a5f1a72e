"""The replicas of every environment: one row each, kept fresh by its heartbeat.

A replica writes what it serves, the routing generation it has adopted, when it last
switched and why it cannot follow (``error``) into ``replicas``; operations wait on these
rows for convergence and ``status`` lists them. A row without a heartbeat for
:data:`STALE_AFTER` seconds is stale: the replica may be cut off from the store and still serve
an older state, so an operation names it as lagging (never converged) without waiting for it.
After :data:`GONE_AFTER` seconds it is gone (it has drained itself) and no longer counted; after
:data:`FORGET_AFTER` seconds its row is deleted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rollbackkit.errors import StoreError
from rollbackkit.serving.postgres.routing import SHORT_STATEMENTS
from rollbackkit.serving.postgres.store import Store, mapped

STALE_AFTER = 5.0
"""Seconds without a heartbeat after which a replica is shown stale (may be cut off from the store)."""
GONE_AFTER = 30.0
"""Seconds without a heartbeat after which a replica is gone: no longer waited for (it fenced itself)."""
FORGET_AFTER = 3600.0
"""Seconds without a heartbeat after which a replica's row is deleted (a killed replica's ghost)."""

_FIELDS = ("name", "env", "host", "pid", "url", "started", "generation", "serving", "last_switch", "error")


@dataclass(frozen=True)
class ReplicaRecord:
    """One replica's row: who it is, what it serves, and whether its heartbeat is ``fresh``."""

    replica: str
    name: str
    env: str
    host: str | None
    pid: int | None
    url: str | None
    started: datetime | None
    heartbeat: datetime | None
    generation: int | None
    serving: dict[str, Any]
    last_switch: datetime | None
    error: str | None
    fresh: bool
    silent_s: float | None = None  # seconds since its heartbeat, by the store's clock

    @property
    def gone(self) -> bool:
        """No heartbeat for :data:`GONE_AFTER` seconds: not waited for any more."""
        return self.silent_s is None or self.silent_s > GONE_AFTER

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _record(row: tuple[Any, ...]) -> ReplicaRecord:
    replica, name, env, host, pid, url, started, heartbeat, generation, serving, last_switch, error, fresh, silent = row
    serving = serving if isinstance(serving, dict) else {}
    silent_s = round(float(silent), 3) if silent is not None else None
    return ReplicaRecord(
        replica, name, env, host, pid, url, started, heartbeat, generation, serving, last_switch, error, bool(fresh),
        silent_s,
    )  # fmt: skip


class ReplicaTable:
    """Beat, list and forget rows of the ``replicas`` table (one connection, reopened when broken)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def _run(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        with self._lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = self.store.connect(
                        autocommit=True, purpose="replicas", keepalive=True, settings=SHORT_STATEMENTS
                    )
                return work(self._db)
            except StoreError:
                raise
            except Exception as exc:
                if self._db is not None and (self._db.closed or self._db.broken):
                    self._db = None
                raise mapped(exc, self.store.where) from None

    def beat(self, replica: str, *, name: str, env: str, **fields: Any) -> None:
        """Upsert the row of ``replica`` of ``name`` in ``env`` with ``fields`` (any of host, pid,
        url, started, generation, serving, last_switch, error) and a heartbeat of now.

        One replica id may serve several models or environments: a row is keyed by all three.
        """
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown replica fields: {sorted(unknown)}")
        values = {k: Jsonb(v) if k == "serving" else v for k, v in fields.items() if k not in ("name", "env")}
        columns = ["replica", "name", "env", *values, "heartbeat"]
        marks = ["%s"] * (len(values) + 3) + ["clock_timestamp()"]
        updates = [f"{c} = EXCLUDED.{c}" for c in [*values, "heartbeat"]]
        sql = (
            f"INSERT INTO replicas ({', '.join(columns)}) VALUES ({', '.join(marks)}) "
            f"ON CONFLICT (name, env, replica) DO UPDATE SET {', '.join(updates)}"
        )
        self._run(lambda con: con.execute(sql, (replica, name, env, *values.values())))

    def list(self, name: str, env: str) -> list[ReplicaRecord]:
        """The replicas of ``name`` in ``env``, by replica id (``fresh``: a heartbeat within :data:`STALE_AFTER`)."""
        sql = (
            "SELECT replica, name, env, host, pid, url, started, heartbeat, generation, serving, last_switch, error, "
            "heartbeat > clock_timestamp() - make_interval(secs => %s), "
            "extract(epoch FROM clock_timestamp() - heartbeat) "
            "FROM replicas WHERE name = %s AND env = %s ORDER BY replica"
        )
        rows = self._run(lambda con: con.execute(sql, (STALE_AFTER, name, env)).fetchall())
        return [_record(row) for row in rows]

    def forget(self, replica: str, name: str, env: str) -> None:
        """Delete the row of ``replica`` of ``name`` in ``env`` (a replica stopping)."""
        sql = "DELETE FROM replicas WHERE name = %s AND env = %s AND replica = %s"
        self._run(lambda con: con.execute(sql, (name, env, replica)))

    def sweep(self, name: str, env: str) -> int:
        """Delete the rows of ``name`` in ``env`` silent for :data:`FORGET_AFTER` seconds (how many)."""
        sql = (
            "DELETE FROM replicas WHERE name = %s AND env = %s "
            "AND heartbeat < clock_timestamp() - make_interval(secs => %s)"
        )
        return int(self._run(lambda con: con.execute(sql, (name, env, FORGET_AFTER)).rowcount))

    def close(self, wait: float = 2.0) -> None:
        """Close the connection once no statement runs on it (waiting up to ``wait`` seconds): a
        connection is never closed under a thread inside libpq; one still in use is left to its user."""
        if not self._lock.acquire(timeout=wait):
            return
        try:
            if self._db is not None:
                with contextlib.suppress(Exception):
                    self._db.close()
            self._db = None
        finally:
            self._lock.release()
