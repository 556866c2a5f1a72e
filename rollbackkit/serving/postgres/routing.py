"""The live routing state of every environment in the store: published, locked, listened to.

One row per (name, env) in ``routing``: the :class:`~rollbackkit.serving.desired.Desired`
state every replica must serve and its ``generation`` (one more per publication). A
publication NOTIFYs :data:`CHANNEL` in the same transaction, so a listener hears of it once
it is committed; listeners also poll, so a notification missed while the store was away is
picked up.

Every connection here is a session of its own, held across statements (the operation lock,
LISTEN): the store must be reached directly or through a *session*-mode pooler — a PgBouncer in
transaction mode would hand the lock and its unlock, or LISTEN and its notifications, to
different server connections. All of them ask for server-side keepalives (a vanished replica's
lock is released in about 15 s) and bound every short statement (:data:`SHORT_STATEMENTS`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rollbackkit.errors import RoutingError, StoreError
from rollbackkit.serving.desired import Desired
from rollbackkit.serving.postgres.store import Store, mapped

CHANNEL = "rollbackkit_routing"
"""The NOTIFY channel of publications; the payload is ``{"name", "env", "generation"}``."""

_LOCK_KEY = "hashtextextended('rollbackkit routing ' || %s || ' ' || %s, 0)"

SHORT_STATEMENTS = {"lock_timeout": "2s", "statement_timeout": "5s", "idle_in_transaction_session_timeout": "30s"}
"""Session settings of the routing, replica and leader connections: their statements are short,
so a store that hangs (a table lock, a failover) fails them in seconds instead of freezing the
listener, the heartbeat or ``/status``."""


@dataclass(frozen=True)
class Published:
    """The newest published routing state of one environment."""

    name: str
    env: str
    generation: int
    desired: Desired
    action: str
    changed_by: str
    changed_at: datetime


class RoutingTable:
    """Read, publish, lock and listen to the ``routing`` table of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db: psycopg.Connection | None = None  # reads and publications
        self._db_lock = threading.Lock()
        self._held = threading.Lock()  # one exclusive section per process and table at a time
        self._locker: psycopg.Connection | None = None

    # ------------------------------------------------------------------------- reads and writes
    def _run(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        """``work(connection)`` in one transaction on the shared connection (reopened when broken)."""
        with self._db_lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = self.store.connect(purpose="routing", keepalive=True, settings=SHORT_STATEMENTS)
                with self._db.transaction():
                    return work(self._db)
            except StoreError:
                raise
            except Exception as exc:
                if self._db is not None and (self._db.closed or self._db.broken):
                    self._db = None
                raise mapped(exc, self.store.where) from None

    def read(self, name: str, env: str) -> Published | None:
        """The newest publication for ``name`` in ``env`` (None: nothing published yet)."""

        def work(con: psycopg.Connection) -> Any:
            return con.execute(
                "SELECT generation, state, action, changed_by, changed_at FROM routing WHERE name = %s AND env = %s",
                (name, env),
            ).fetchone()

        row = self._run(work)
        if row is None:
            return None
        return Published(name, env, int(row[0]), Desired.from_json(row[1]), row[2], row[3], row[4])

    def publish(self, name: str, env: str, desired: Desired, *, action: str, by: str) -> Published:
        """Store ``desired`` as the next generation and NOTIFY :data:`CHANNEL`, in one transaction."""

        def work(con: psycopg.Connection) -> Any:
            row = con.execute(
                "INSERT INTO routing (name, env, generation, state, action, changed_by, changed_at) "
                "VALUES (%s, %s, 1, %s, %s, %s, clock_timestamp()) ON CONFLICT (name, env) DO UPDATE SET "
                "generation = routing.generation + 1, state = EXCLUDED.state, action = EXCLUDED.action, "
                "changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at "
                "RETURNING generation, changed_at",
                (name, env, Jsonb(desired.to_json()), action, by),
            ).fetchone()
            assert row is not None  # an upsert RETURNING always answers
            payload = json.dumps({"name": name, "env": env, "generation": row[0]})
            con.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            return row

        generation, changed_at = self._run(work)
        return Published(name, env, int(generation), desired, action, by, changed_at)

    # ------------------------------------------------------------------------- the operation lock
    @contextlib.contextmanager
    def exclusive(self, name: str, env: str, timeout: float = 30.0) -> Iterator[None]:
        """Hold the environment-wide operation lock (a session advisory lock) for the block.

        Raises:
            RoutingError: Another replica's operation held it for ``timeout`` seconds.
            StoreError: The store cannot be reached.
        """
        if not self._held.acquire(timeout=timeout):
            raise RoutingError(
                f"Another operation on {name} in {env} is still running here after {timeout:g} s.", "Retry shortly."
            )
        try:
            con = self._lock(name, env, timeout)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost connection let the lock go already
                    con.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (name, env))
        finally:
            self._held.release()

    def _lock(self, name: str, env: str, timeout: float) -> psycopg.Connection:
        """Take the advisory lock on the locking connection (reopened when broken); hold :attr:`_held`."""
        for attempt in (1, 2):
            try:
                if self._locker is None or self._locker.closed or self._locker.broken:
                    self._locker = self.store.connect(autocommit=True, purpose="routing lock", keepalive=True)
                con = self._locker
                con.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
                con.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})", (name, env))
                return con
            except psycopg.errors.LockNotAvailable:
                raise RoutingError(
                    f"Another replica's operation on {name} in {env} held the lock for {timeout:g} s.",
                    "Retry once it has finished (rollbackkit status lists the replicas).",
                ) from None
            except StoreError:
                raise
            except Exception as exc:
                self._locker = None
                if attempt == 2 or not isinstance(exc, psycopg.OperationalError):
                    raise mapped(exc, self.store.where) from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------- listening
    def listen(
        self,
        on_change: Callable[[], None],
        stop: threading.Event,
        poll: float = 1.0,
        *,
        name: str | None = None,
        env: str | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Call ``on_change`` on each NOTIFY for ``name``/``env`` (any, when None) and every ``poll`` s.

        Runs until ``stop`` is set; reconnects with backoff (0.1 s doubling to 2 s) when the
        store goes away, calling ``on_change`` once reconnected (what was missed). Never raises:
        ``on_change``'s and the store's errors go to ``on_error``.
        """
        backoff = 0.1
        while not stop.is_set():
            try:
                listener = self.store.connect(
                    autocommit=True, purpose="routing listener", keepalive=True, settings=SHORT_STATEMENTS
                )
                with listener as con:
                    con.execute(f"LISTEN {CHANNEL}")
                    backoff = 0.1
                    _call(on_change, on_error)
                    last = time.monotonic()
                    while not stop.is_set():
                        heard = False
                        for note in con.notifies(timeout=poll, stop_after=1):
                            heard = _matches(note.payload, name, env)
                        if not stop.is_set() and (heard or time.monotonic() - last >= poll):
                            _call(on_change, on_error)
                            last = time.monotonic()
            except Exception as exc:
                if on_error is not None:
                    with contextlib.suppress(Exception):
                        on_error(str(mapped(exc, self.store.where)))
                stop.wait(backoff)
                backoff = min(2.0, backoff * 2)

    def close(self, wait: float = 2.0) -> None:
        """Close this table's connections, each once no statement runs on it (waiting up to
        ``wait`` seconds for a read or a held lock to finish): a connection is never closed
        under a thread inside libpq. One still in use is left to be dropped by its user."""
        for guard, attr in ((self._db_lock, "_db"), (self._held, "_locker")):
            if not guard.acquire(timeout=wait):
                continue
            try:
                con = getattr(self, attr)
                setattr(self, attr, None)
                if con is not None:
                    with contextlib.suppress(Exception):
                        con.close()
            finally:
                guard.release()


def _matches(payload: str, name: str | None, env: str | None) -> bool:
    try:
        said = json.loads(payload)
    except ValueError:
        return False
    return (name is None or said.get("name") == name) and (env is None or said.get("env") == env)


def _call(on_change: Callable[[], None], on_error: Callable[[str], None] | None) -> None:
    try:
        on_change()
    except Exception as exc:
        if on_error is not None:
            with contextlib.suppress(Exception):
                on_error(f"{type(exc).__name__}: {exc}")
