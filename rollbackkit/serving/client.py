"""Find the server of an environment, read its ``/status`` and call its admin API (used by the CLI).

A running server holds the lock ``.rollbackkit/local/servers/NAME-ENV.lock`` (``flock``) for its
life and records its address in ``NAME-ENV.json``. The lock, not the record, says whether a server
runs: a record nobody holds the lock for is stale and ignored; a held lock with a record that does
not read as one (not JSON, not an object with a str ``url``, int ``pid``, ``name`` and ``env``) is
an error, never "no server" (the CLI would change git while the server kept serving). The admin
token goes only to an ``http`` URL on a loopback host (127.0.0.0/8, ``localhost``, ``[::1]``)
unless the record says the server was started with ``--allow-remote``; a ``--server URL`` the user
gives is used as given.

Replicas of a shared store hold ``NAME-ENV-REPLICA.lock`` and record ``NAME-ENV-REPLICA.json``:
any live one will do (they serve one environment). With a store configured and no server on this
host, a replica whose heartbeat is fresh is found in the store (its URL as it advertised it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rollbackkit.errors import ServerError, ServerTimeout, StoreError, StoreNotCreated
from rollbackkit.locking import held
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.server import address_file, is_loopback, lock_file
from rollbackkit.serving.tokens import admin_token

READ_TIMEOUT = (2.0, 10.0)
"""Seconds a read a panel makes (drift over time, gate history, a preview's window, a logged
window, ``/status``) gives a server to connect, then to answer: a stopped or overloaded server
costs a notebook seconds, not minutes. Writes and backfills keep :data:`WRITE_TIMEOUT`."""

WRITE_TIMEOUT = 120.0
"""Seconds an admin call that changes something (deploy, rollback, backfill) waits for its answer."""

Timeout = float | tuple[float, float]
"""A call's timeout: seconds, or (seconds to connect, seconds to answer)."""


def server_runs(paths: ProjectPaths, name: str, env: str, replica: str | None = None) -> bool:
    """Whether a process holds the server lock of NAME/ENV (of replica ``replica``; tried without
    blocking, released at once)."""
    return held(lock_file(paths, name, env, replica))


def _record(text: str, name: str, env: str) -> dict[str, Any]:
    """The record's fields, or ValueError saying what is wrong with it."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"it holds a JSON {type(data).__name__}, not an object")
    for field, kind in (("url", str), ("pid", int), ("name", str), ("env", str)):
        if not isinstance(data.get(field), kind) or isinstance(data.get(field), bool):
            raise ValueError(f"its {field!r} is not a {kind.__name__}")
    if (data["name"], data["env"]) != (name, env):
        raise ValueError(f"it names {data['name']!r} in {data['env']!r}")
    if not isinstance(data.get("allow_remote", False), bool):
        raise ValueError("its 'allow_remote' is not a bool")
    return data


def _checked_url(url: str, allow_remote: bool, record: Any) -> str:
    """``url`` if it is an ``http`` server URL the token may go to; ValueError if it is none,
    ServerError if it is not on loopback and the server was not started with ``--allow-remote``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.username or parts.password:
        raise ValueError(f"{url!r} is not an http://HOST:PORT address")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not an http://HOST:PORT address")
    if not allow_remote and not is_loopback(parts.hostname):
        raise ServerError(
            f"Refusing to send the admin token to {url}, which the record {record} names: it is not a loopback "
            "address and the record does not say the server was started with --allow-remote.",
            "Pass --server URL to call a remote server on purpose.",
        )
    return url


def find_server(paths: ProjectPaths, name: str, env: str) -> str | None:
    """URL of the running server for NAME/ENV: this project's server, else one of its replicas
    running on this host, else (with a store configured) a replica the store knows as alive;
    None when there is none.

    Raises:
        ServerError: A server holds the lock but its record is missing, unreadable, malformed,
            or names a URL the admin token must not go to (for replicas: when no other one
            can be used instead).
        StoreError: A store is configured and does not answer (no server runs on this host).
        InvalidInput: The store setting is not a PostgreSQL URL.
    """
    if server_runs(paths, name, env):
        return _read(address_file(paths, name, env), name, env)  # a record nobody holds the lock for is stale
    broken: ServerError | None = None
    local = []
    for replica in local_replicas(paths, name, env):
        try:
            local.append(_read(address_file(paths, name, env, replica), name, env))
        except ServerError as exc:  # another replica may do
            broken = broken or exc
    healthy = next((url for url in local if _healthy(url)), None)
    if healthy is not None:
        return healthy
    if not local and broken is not None:
        raise broken
    if not local:
        return _from_store(paths, name, env)
    try:  # the local ones are drained (they cannot serve what the environment serves): one elsewhere
        return _from_store(paths, name, env) or local[0]
    except StoreError:
        return local[0]


def _healthy(url: str) -> bool:
    """Whether the replica at ``url`` answers ``/healthz`` 200 (a drained one answers 503 and why)."""
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _read(record: Path, name: str, env: str) -> str:
    """The checked URL a held lock's ``record`` names, or ServerError saying what is wrong with it."""
    hint = f"Stop that server and start it again (rollbackkit serve {name} --env {env}), or pass --server URL."
    try:
        data = _record(record.read_text(encoding="utf-8"), name, env)
        return _checked_url(data["url"], data.get("allow_remote", False), record)
    except FileNotFoundError:
        reason = "it does not exist (the server may still be starting)"
    except (OSError, UnicodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        reason = " ".join(str(exc).split())
    raise ServerError(f"A server for {name} in {env} runs but its record {record} is unreadable: {reason}.", hint)


def local_replicas(paths: ProjectPaths, name: str, env: str) -> list[str]:
    """The replicas of NAME/ENV running from this project on this host (their locks are held),
    by id. A lock file names its replica, name and env: ``NAME-ENV-REPLICA`` alone could be
    another environment's server."""
    running = []
    for lock in sorted(address_file(paths, name, env).parent.glob(f"{name}-{env}-*.lock")):
        try:
            said = json.loads(lock.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError):
            continue  # not a replica's lock (a plain server's holds its pid), or being written
        if not isinstance(said, dict) or (said.get("name"), said.get("env")) != (name, env):
            continue
        replica = said.get("replica")
        if isinstance(replica, str) and lock.name == f"{name}-{env}-{replica}.lock" and held(lock):
            running.append(replica)
    return running


def _from_store(paths: ProjectPaths, name: str, env: str) -> str | None:
    """A fresh replica's URL from the store (None: no store configured, or no replica alive)."""
    from rollbackkit.serving.postgres.store import store_of

    try:
        store = store_of(paths, migrate=False)  # a reader: never creates nor upgrades the schema
    except StoreNotCreated:
        return None  # no replica ever started on it
    if store is None:
        return None
    from rollbackkit.serving.postgres.replicas import ReplicaTable  # psycopg: loaded only with a store

    table = ReplicaTable(store)
    try:
        records = table.list(name, env)
    finally:
        table.close()
    for record in records:
        if record.fresh and record.url and not record.error:
            try:  # a replica serving beyond loopback was started with --allow-remote (serve refuses otherwise)
                return _checked_url(record.url, True, f"of replica {record.replica} in the store")
            except ValueError:
                continue
    return None


def no_server(paths: ProjectPaths, name: str, env: str) -> str:
    """'No server is running for NAME in ENV', naming a stale record left behind if there is one."""
    record = address_file(paths, name, env)
    stale = f" (the record {record} is stale: no server holds its lock)" if record.exists() else ""
    return f"No server is running for {name} in {env}{stale}."


def status(url: str, *, timeout: Timeout = 30, paths: ProjectPaths | None = None) -> dict[str, Any]:
    """The server's ``GET /status`` (what serves, canary, gates, log writer); ServerError when
    it does not answer with a JSON object (:class:`~rollbackkit.errors.ServerTimeout` when it
    does not answer within ``timeout``; ``paths`` lets that line name the server and its pid)."""
    import httpx

    try:
        data = httpx.get(f"{url.rstrip('/')}/status", timeout=_timeout(timeout)).json()
    except httpx.TimeoutException as exc:
        raise _unanswered(paths, url, timeout) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise ServerError(f"The server at {url} did not answer /status: {exc}.", "Check that it runs.") from exc
    if not isinstance(data, dict):
        raise ServerError(f"The server at {url} did not answer /status with an object.", "Check that it runs.")
    return data


def admin_call(
    paths: ProjectPaths,
    url: str,
    operation: str,
    body: dict[str, Any],
    *,
    route: str | None = None,
    timeout: Timeout = WRITE_TIMEOUT,
) -> dict[str, Any]:
    """POST an admin operation (to ``/admin/OPERATION``, or ``route`` such as ``/labels``) with
    the project's token; raise ServerError on refusal, :class:`~rollbackkit.errors.ServerTimeout`
    when no answer came within ``timeout`` (reads pass :data:`READ_TIMEOUT`)."""
    import httpx

    token = admin_token(paths)
    if token is None:
        raise ServerError("No admin token is available.", "Set ROLLBACKKIT_ADMIN_TOKEN to the server's token.")
    try:
        response = httpx.post(
            f"{url.rstrip('/')}{route or f'/admin/{operation}'}",
            json=body,
            timeout=_timeout(timeout),
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.TimeoutException as exc:
        raise _unanswered(paths, url, timeout) from exc
    except httpx.HTTPError as exc:
        raise ServerError(
            f"Cannot reach the server at {url}: {exc}.", "Check that it runs (rollbackkit serve starts one)."
        ) from exc
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise ServerError(
            f"The server refused {operation}: {data.get('error', response.text)}", str(data.get("hint", ""))
        )
    return data  # type: ignore[no-any-return]


def _timeout(timeout: Timeout) -> Any:
    """``timeout`` as httpx takes it."""
    import httpx

    if isinstance(timeout, tuple):
        return httpx.Timeout(timeout[1], connect=timeout[0])
    return httpx.Timeout(timeout)


def _unanswered(paths: ProjectPaths | None, url: str, timeout: Timeout) -> ServerTimeout:
    """'The server for NAME in ENV (pid N, URL) did not answer in S s', and what to do."""
    record = recorded(paths, url) if paths is not None else None
    seconds = timeout[1] if isinstance(timeout, tuple) else timeout
    if record is None:
        return ServerTimeout(
            f"The server at {url} did not answer in {seconds:g} s: is it stopped or overloaded?",
            "Check that it runs and answers (curl its /healthz), or restart it.",
        )
    name, env, pid = record
    return ServerTimeout(
        f"The server for {name} in {env} (pid {pid}, {url}) did not answer in {seconds:g} s: "
        "is it stopped or overloaded?",
        f"If it was stopped, resume it (kill -CONT {pid}); else see its load (rollbackkit status {name} --env {env}) "
        f"or restart it (rollbackkit serve {name} --env {env}).",
    )


def recorded(paths: ProjectPaths, url: str) -> tuple[str, str, int] | None:
    """(name, env, pid) of the running server this project records at ``url``, if one does."""
    for record in sorted((paths.local / "servers").glob("*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            if isinstance(data, dict) and str(data.get("url", "")).rstrip("/") == url.rstrip("/"):
                return str(data["name"]), str(data["env"]), int(data["pid"])
        except (OSError, UnicodeError, ValueError, KeyError, TypeError):
            continue  # a record being written or removed
    return None


def running_servers(paths: ProjectPaths) -> list[tuple[str, str, str]]:
    """(URL, name, env) of every server of this project running on this host (its lock held),
    any model in any environment: one of them may hold the project's prediction log file (a
    DuckDB file has one writing process); its ``/status`` says whether it writes a log."""
    found = []
    for record in sorted((paths.local / "servers").glob("*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            name, env = str(data["name"]), str(data["env"])
        except (OSError, UnicodeError, ValueError, KeyError, TypeError):
            continue  # a record being written or removed
        if record.name != f"{name}-{env}.json" or not server_runs(paths, name, env):
            continue  # a replica's (a shared store: no file to hold), or stale
        try:
            found.append((_read(record, name, env), name, env))
        except ServerError:
            continue  # a record that does not read: not one to send the token to
    return found
