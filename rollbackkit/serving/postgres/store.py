"""The store setting, connections to it, and its failures as one-line errors.

``ROLLBACKKIT_STORE`` (set and empty: no store) beats ``store:`` in ``.rollbackkit/config.yaml``.
Every psycopg error that reaches a user goes through :func:`mapped` and becomes a
:class:`~rollbackkit.errors.StoreError` that names the store by its :func:`redacted` URL.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rollbackkit.errors import InvalidInput, StoreAuthFailed, StoreError, StoreUnavailable
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.postgres import schema
from rollbackkit.serving.postgres.schema import SCHEMA

if TYPE_CHECKING:
    import psycopg  # imported where a connection is made: a CLI command without a store never loads it

STORE_ENV = "ROLLBACKKIT_STORE"
"""The environment variable naming the store; it beats the config's ``store:``."""

_SCHEMES = ("postgresql", "postgres")


def _postgres_url(text: str) -> bool:
    """Whether ``text`` is a ``postgresql://``/``postgres://`` URL that parses (a malformed IPv6 host does not)."""
    try:
        return "://" in text and urlsplit(text).scheme.lower() in _SCHEMES
    except ValueError:
        return False


MIN_SERVER_VERSION = 120000
"""The oldest PostgreSQL the store runs on (12: hashtextextended, JSONB, CREATE ... IF NOT EXISTS)."""
_WHERE_TO_SET = f"{STORE_ENV} or store: in .rollbackkit/config.yaml"


def store_url(paths: ProjectPaths) -> str | None:
    """The store URL this project uses, or None (no store: DuckDB log, per-process routing).

    Raises:
        InvalidInput: the setting is not a ``postgresql://`` or ``postgres://`` URL.
    """
    if STORE_ENV in os.environ:
        value: object = os.environ[STORE_ENV].strip()
        origin = STORE_ENV
    else:
        value = paths.read_config().get("store")
        origin = f"store: in {paths.config_file}"
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _postgres_url(value):
        shown = redacted(value) if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"{origin} is not a PostgreSQL URL: {shown!r}.",
            "Write postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or remove it to use no store.",
        )
    return value


def redacted(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) shown as ``***``."""
    shown = re.sub(r"(://[^:@/?#]*):[^/?#]*@", r"\1:***@", url)
    shown = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", r"\1***", shown)
    return shown


@dataclass(frozen=True)
class Store:
    """One PostgreSQL store; :meth:`connect` opens connections with the schema on the search path."""

    url: str = field(repr=False)
    """The full URL (holds the password: never print it, print :attr:`where`)."""
    where: str = field(default="")
    """The URL with its password redacted, for messages."""

    def __post_init__(self) -> None:
        if not self.where:
            object.__setattr__(self, "where", redacted(self.url))

    def connect(
        self,
        *,
        autocommit: bool = False,
        timeout: float = 5.0,
        purpose: str = "",
        keepalive: bool = False,
        settings: Mapping[str, str] | None = None,
    ) -> psycopg.Connection:
        """A new connection, idle, ``search_path`` set to the store's schema.

        Args:
            autocommit: psycopg's autocommit mode.
            timeout: Seconds to wait for the server (libpq counts whole seconds, at least 2).
            purpose: Shown in ``pg_stat_activity`` as ``rollbackkit <purpose>``.
            keepalive: TCP keepalives (idle 5 s, interval 2 s, 2 probes) and a 10 s TCP user
                timeout: a dead peer is noticed in about 10 s, idle or mid-write (the leader's
                and the listener's long-lived connections).
            settings: Session settings sent in the startup packet (``lock_timeout``, ...: see
                :data:`LOG_SESSION`). Every connection asks the server for keepalives too
                (:data:`SERVER_KEEPALIVE`): the backend of a vanished client dies in about 15 s,
                releasing its locks, instead of after the kernel's two hours.

        Raises:
            StoreError: the store cannot be reached or refused us (see :func:`mapped`).
        """
        options: dict[str, object] = {
            "connect_timeout": max(2, math.ceil(timeout)),
            "application_name": f"rollbackkit {purpose}".strip()[:63],
        }
        session = {"search_path": SCHEMA, **SERVER_KEEPALIVE, **(settings or {})}  # sent at connect
        options["options"] = " ".join(f"-c {name}={value}" for name, value in session.items())
        if keepalive:
            options.update(
                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2, tcp_user_timeout=10_000
            )
        import psycopg

        try:
            con = psycopg.connect(self.url, autocommit=autocommit, **options)  # type: ignore[arg-type]
        except Exception as exc:
            raise mapped(exc, self.where, url=self.url) from None
        try:
            con.execute(f"SET search_path TO {SCHEMA}")
            if not autocommit:
                con.commit()
        except Exception as exc:
            con.close()
            raise mapped(exc, self.where, url=self.url) from None
        return con


SERVER_KEEPALIVE = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""The server's side of every connection: probes a silent client after 5 s, gives up after 3."""

LOG_SESSION = {"lock_timeout": "5s", "idle_in_transaction_session_timeout": "30s"}
"""The log's connections: no wait on a lock longer than 5 s (a stuck replica's batch cannot
freeze the others, nor a rollback), no transaction left open by a frozen client over 30 s."""

LOG_READS = {**LOG_SESSION, "statement_timeout": "30s"}
"""The log's reads and lifecycle connection: :data:`LOG_SESSION` and no statement over 30 s
(a lifecycle step that moves many rows raises it for its own transaction)."""


def open_store(url: str, *, timeout: float = 5.0, migrate: bool = True) -> Store:
    """Connect once, create or check the schema, and return the :class:`Store`.

    ``migrate=False`` (``status``, finding a server: a reader) only checks the schema's version
    and never creates or upgrades anything.

    Raises:
        InvalidInput: ``url`` is not a PostgreSQL URL.
        StoreError: unreachable, refused credentials, or a schema written by a newer rollbackkit.
    """
    if not _postgres_url(url):
        raise InvalidInput(
            f"Not a PostgreSQL URL: {redacted(url)!r}.",
            "Write postgresql://USER:PASSWORD@HOST:PORT/DATABASE.",
        )
    store = Store(url)
    with store.connect(autocommit=True, timeout=timeout, purpose="migrate") as con:
        if con.info.server_version < MIN_SERVER_VERSION:
            raise StoreError(
                f"The store {store.where} runs PostgreSQL {_release(con.info.server_version)}; "
                f"rollbackkit needs {_release(MIN_SERVER_VERSION)} or newer.",
                "Upgrade the server, or point rollbackkit at a newer one.",
            )
        try:
            schema.migrate(con, store.where) if migrate else schema.check(con, store.where)
        except StoreError:
            raise
        except Exception as exc:
            raise mapped(exc, store.where, url=url) from None
    return store


def _release(number: int) -> str:
    """PostgreSQL's ``server_version_num`` as its release name (``120000`` -> ``12``, ``150004`` -> ``15.4``)."""
    major, minor = divmod(number, 10000)
    return f"{major}.{minor}" if minor else str(major)


def store_of(paths: ProjectPaths, *, migrate: bool = True) -> Store | None:
    """The project's store, opened (schema checked; created or upgraded when ``migrate``), or
    None when no store is configured."""
    url = store_url(paths)
    return None if url is None else open_store(url, migrate=migrate)


_CREDENTIALS = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|authentication failed|no password supplied"
    r'|role "[^"]*" does not exist',
    re.IGNORECASE,
)
_MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist', re.IGNORECASE)
_UNREACHABLE_STATES = ("08", "57P", "53")
"""Connection exceptions, the server shutting down or starting up, too many clients / out of resources."""
_NOISE = (
    (r"^connection failed:\s*", ""),
    (r'connection to server (at|on) "[^"]*"( \([^)]*\))?, port \d+ failed:\s*', ""),
    (r"\bFATAL:\s*", ""),
    (r"\s*Is the server running[^?]*\?", ""),
)


def mapped(exc: BaseException, where: str, *, url: str = "") -> StoreError:
    """``exc`` (a psycopg or socket error) as one-line :class:`StoreError` naming the store ``where``.

    ``url``, when given, is the full URL: its password is scrubbed from the text too.
    """
    if isinstance(exc, StoreError):
        return exc
    detail = _detail(exc, url)
    state = getattr(exc, "sqlstate", None) or ""
    if state == "3D000" or _MISSING_DATABASE.search(detail):
        return StoreUnavailable(
            f"The store {where} has no such database: {detail}.",
            f"Create it (createdb, or CREATE DATABASE as an admin) or fix the database name in {_WHERE_TO_SET}.",
        )
    if state.startswith("28") or _CREDENTIALS.search(detail):
        return StoreAuthFailed(
            f"The store {where} refused the credentials: {detail}.",
            f"Check the user and password in {_WHERE_TO_SET} (or PGPASSWORD, ~/.pgpass).",
        )
    if state == "42501" or "permission denied" in detail.lower():
        return StoreAuthFailed(
            f"The store {where} refused access: {detail}.",
            "Grant the role CREATE on the database (or let an admin run rollbackkit once to create the "
            f"schema {SCHEMA}) and USAGE plus table rights on it.",
        )
    if state == "25006":
        return StoreError(
            f"The store {where} is read-only: {detail}.",
            "Point it at the primary (add target_session_attrs=read-write to the URL).",
        )
    if state == "55P03":
        return StoreError(
            f"The store {where} is busy: {detail} (another transaction held the lock over the time allowed).",
            "Retry in a few seconds; a transaction stuck longer shows in pg_stat_activity (state, xact_start).",
        )
    if state in ("40001", "40P01", "57014"):
        return StoreError(
            f"The store {where} failed: {detail}.",
            "Retry: it competed with other replicas' work (or ran over its time allowed).",
        )
    import psycopg

    connection_level = not state and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, OSError))
    if connection_level or state.startswith(_UNREACHABLE_STATES):
        return StoreUnavailable(
            f"Cannot reach the store {where}: {detail}.",
            f"Check that PostgreSQL runs there and accepts connections, and the host and port in {_WHERE_TO_SET}.",
        )
    return StoreError(
        f"The store {where} failed: {detail}.",
        "Check the PostgreSQL server's log; retry once it is healthy.",
    )


def _detail(exc: BaseException, url: str) -> str:
    """The error's text on one line, without libpq's prefixes and without the password."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for pattern, replacement in _NOISE:
        text = re.sub(pattern, replacement, text)
    password = _password(url)
    if password:
        text = text.replace(password, "***")
    text = redacted(text).rstrip(". ")
    return text if len(text) <= 300 else text[:297] + "..."


def _password(url: str) -> str | None:
    """The password ``url`` holds, if any."""
    if not url:
        return None
    import psycopg

    try:
        return psycopg.conninfo.conninfo_to_dict(url).get("password") or None  # type: ignore[return-value]
    except Exception:
        return urlsplit(url).password if "://" in url else None
