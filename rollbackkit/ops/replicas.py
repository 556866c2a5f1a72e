"""The replicas of an environment on a shared store: what each serves, since when, who leads.

A running server lists them in its ``/status`` (``replicas``); with no server answering they
are read straight from the store (:func:`from_store`): the heartbeat rows and the watchdog's
leader. ``rollbackkit status NAME --env ENV`` shows them either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rollbackkit.errors import ServerError, StoreError, StoreNotCreated, UnknownAnswer
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.replica_status import ReplicaStatus
from rollbackkit.serving.status import ServerStatus


@dataclass(frozen=True)
class Publication:
    """The routing state every replica must serve, as the store holds it.

    Attributes:
        generation: Its number (each operation publishes the next one).
        action: The operation that published it (``deploy``, ``rollback``, ...).
        by: The replica that published it.
        at: When (ISO UTC), or None.
    """

    generation: int
    action: str
    by: str
    at: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON: ``generation``, ``action``, ``by``, ``at``."""
        return {"generation": self.generation, "action": self.action, "by": self.by, "at": self.at}


_PUBLISHED = "SELECT generation, action, changed_by, changed_at FROM routing WHERE name = %s AND env = %s"


def _publication(con: Any, name: str, env: str) -> Publication | None:
    row = con.execute(_PUBLISHED, (name, env)).fetchone()
    if row is None:
        return None
    return Publication(int(row[0]), str(row[1]), str(row[2]), row[3].isoformat() if row[3] is not None else None)


@dataclass(frozen=True)
class Replicas:
    """Every replica of NAME/ENV and the watchdog's leader.

    Attributes:
        name: Bundle name.
        env: Environment.
        store: The store, password redacted.
        source: ``server`` (a replica's ``/status``) or ``store`` (read directly).
        replicas: Each replica's row, by id (stale ones included, marked).
        leader: The replica whose watchdog evaluates the gates (None: nobody holds the lead).
        error: Why the list could not be read (the store did not answer), else None.
        published: The routing generation the store says every replica must serve (None:
            nothing published yet, or not readable).
    """

    name: str
    env: str
    store: str
    source: Literal["server", "store"]
    replicas: list[ReplicaStatus]
    leader: str | None
    error: str | None = None
    published: Publication | None = None

    @property
    def alive(self) -> list[ReplicaStatus]:
        """The replicas whose heartbeat is fresh."""
        return [r for r in self.replicas if not r.stale]

    def to_dict(self) -> dict[str, Any]:
        """JSON: ``name``, ``env``, ``store``, ``source``, ``watchdog`` (``leader``), ``replicas``, ``error``."""
        return {
            "name": self.name,
            "env": self.env,
            "store": self.store,
            "source": self.source,
            "watchdog": {"leader": self.leader},
            "replicas": [r.to_dict() for r in self.replicas],
            "error": self.error,
            "routing": self.published.to_dict() if self.published is not None else None,
        }

    def behind(self, replica: ReplicaStatus) -> bool:
        """A fresh replica serving an older generation than the published one."""
        published = self.published
        return published is not None and not replica.stale and (replica.generation or 0) < published.generation


def of_status(status: ServerStatus) -> Replicas | None:
    """The replicas a server's ``/status`` lists (None: the server has no store)."""
    if status.store is None:
        return None
    error = (status.source or {}).get("replicas_error")
    return Replicas(
        name=status.name,
        env=status.env,
        store=status.store,
        source="server",
        replicas=status.replicas or [],
        leader=status.watchdog_leader,
        error=error if isinstance(error, str) else None,
    )


def from_store(repo: str | Path, name: str, env: str) -> Replicas | None:
    """The replicas of NAME/ENV read from the project's store (None: no store configured).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidInput: The store setting is not a PostgreSQL URL.
        StoreError: The store is unreachable, refused the credentials, or is of a newer schema.
    """
    from rollbackkit.serving.postgres.store import redacted, store_of, store_url

    try:
        store = store_of(Repository(repo).paths, migrate=False)  # a reader never creates the schema
    except StoreNotCreated as exc:  # no replica of this rollbackkit ever started on it
        url = store_url(Repository(repo).paths) or ""
        return Replicas(name=name, env=env, store=redacted(url), source="store", replicas=[], leader=None,
                        error=exc.message)  # fmt: skip
    if store is None:
        return None
    from rollbackkit.serving.postgres.leader import current  # psycopg: loaded only with a store
    from rollbackkit.serving.postgres.replicas import ReplicaTable
    from rollbackkit.serving.postgres.routing import SHORT_STATEMENTS
    from rollbackkit.serving.postgres.store import mapped

    table = ReplicaTable(store)
    try:
        records = table.list(name, env)
        with store.connect(autocommit=True, purpose="status", settings=SHORT_STATEMENTS) as con:  # a hung store: 5 s
            leader = current(con, name, env).leader
            published = _publication(con, name, env)
    except StoreError:
        raise
    except Exception as exc:
        raise mapped(exc, store.where, url=store.url) from None
    finally:
        table.close()
    now = datetime.now(UTC)
    rows = [ReplicaStatus.of(r, leader=leader, now=now) for r in records]
    return Replicas(
        name=name, env=env, store=store.where, source="store", replicas=rows, leader=leader, published=published
    )


def published(repo: str | Path, name: str, env: str) -> Publication | None:
    """The routing generation the store holds for NAME/ENV; None when there is none, no store,
    or the store does not answer within seconds (a server's list is shown without it).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidInput: The store setting is not a PostgreSQL URL.
    """
    import psycopg

    from rollbackkit.serving.postgres.routing import SHORT_STATEMENTS
    from rollbackkit.serving.postgres.store import mapped, store_of

    try:
        store = store_of(Repository(repo).paths, migrate=False)
        if store is None:
            return None
        with store.connect(autocommit=True, purpose="status", settings=SHORT_STATEMENTS) as con:
            try:
                return _publication(con, name, env)
            except psycopg.Error as exc:  # a statement timeout, a dropped connection
                raise mapped(exc, store.where, url=store.url) from None
    except StoreError:  # unreachable, or no schema yet: the server's own list stands without it
        return None


def replicas(
    repo: str | Path, name: str, env: str, status: ServerStatus | None = None, *, store_down: StoreError | None = None
) -> Replicas | None:
    """The replicas as ``status`` (a server's) lists them, else from the store; an unreachable
    store (or ``store_down``: it just failed) gives a :class:`Replicas` whose ``error`` says so.
    None: no store configured.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidInput: The store setting is not a PostgreSQL URL.
    """
    listed = of_status(status) if status is not None else None
    if listed is not None and listed.error is None:
        return replace(listed, published=published(repo, name, env))
    try:
        if store_down is not None:
            raise store_down
        return from_store(repo, name, env)
    except StoreError as exc:
        from rollbackkit.serving.postgres.store import redacted, store_url

        url = store_url(Repository(repo).paths)
        where = redacted(url) if url is not None else ""
        return Replicas(name=name, env=env, store=where, source="store", replicas=[], leader=None, error=exc.message)


def status_json(repo: str | Path, name: str, env: str, *, server: str | None = None) -> dict[str, Any]:
    """``rollbackkit status --json``: the server's ``/status``; with a store and no server
    answering, the replicas as the store lists them (:meth:`Replicas.to_dict`).

    Raises:
        ServerError: No server answers and no store is configured (or ``server`` was given
            and does not answer; :class:`~rollbackkit.errors.UnknownAnswer`: it answered in
            a shape this client does not know).
        StoreError: No server answers and the store does not either.
    """
    from rollbackkit.ops.situation import server_status

    try:
        return server_status(repo, name, env, server=server).to_dict()
    except UnknownAnswer:
        raise
    except ServerError:
        listed = from_store(repo, name, env) if server is None else None
        if listed is None:
            raise
        return listed.to_dict()
