"""Run a served environment over HTTP with uvicorn; record its address for the CLI.

Binds to 127.0.0.1 unless told otherwise; a non-loopback address needs ``allow_remote``.
The admin token (:mod:`rollbackkit.serving.tokens`) is checked before anything loads. One
server per bundle and environment per project: it holds ``.rollbackkit/local/servers/NAME-ENV.lock``
(an ``flock``, released by the OS when the process dies, even by ``kill -9``) for its whole
life; the CLI tries that lock to tell a running server from a stale record
(:func:`rollbackkit.serving.client.find_server`).

With a shared store (``store:`` or ``ROLLBACKKIT_STORE``) the store is opened first (a bad
URL, an unreachable server, refused credentials or a newer schema stop the start with one
line); the server is then one replica (:class:`~rollbackkit.serving.replicated.ReplicaEnvironment`)
and its lock and record are its own (``servers/NAME-ENV-REPLICA.lock``/``.json``), so several
replicas of one project can run on one host.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.errors import InvalidInput, ServerAlreadyRunning
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.tokens import ensure_admin_token, warn_if_readable

if TYPE_CHECKING:
    from rollbackkit.serving.replicated import ReplicaEnvironment

MAX_ROWS = 100_000
"""Rows one ``/predict`` request may carry by default (``serve --max-rows``)."""
SHUTDOWN_FLUSH_SECONDS = 10.0
"""Seconds the prediction log's writer gets at shutdown before it is killed."""
SHUTDOWN_JOIN_SECONDS = 6.0
"""Seconds, after everything was stopped, that this server's own threads (``rollbackkit-*``: a
lead being released, a writer or listener back from a connect) get to end before :func:`serve`
returns: none may run while Python finalizes (a daemon thread logging then aborts the process)."""
NOTIFY_CLOSE_SECONDS = 1.0
"""Seconds shutdown waits for a delivery under way (never for a dead endpoint: a notification's
threads then end within its ``timeout``, inside :data:`SHUTDOWN_JOIN_SECONDS`)."""


def address_file(paths: ProjectPaths, name: str, env: str, replica: str | None = None) -> Path:
    """Where a running server for NAME/ENV (replica ``replica`` of a shared store) records its URL."""
    return paths.local / "servers" / f"{_stem(name, env, replica)}.json"


def _stem(name: str, env: str, replica: str | None) -> str:
    return f"{name}-{env}" if replica is None else f"{name}-{env}-{replica}"


def lock_file(paths: ProjectPaths, name: str, env: str, replica: str | None = None) -> Path:
    """The lock a running server for NAME/ENV (replica ``replica``) holds for its whole life.

    A replica's lock file holds ``{"pid", "name", "env", "replica"}`` (JSON): NAME-ENV-REPLICA
    alone could also be another environment's name.
    """
    return paths.local / "servers" / f"{_stem(name, env, replica)}.lock"


def _lock_within(fd: int, seconds: float) -> bool:
    """Take the exclusive lock on ``fd``, retrying for ``seconds``; False if another holds it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


@contextmanager
def server_lock(paths: ProjectPaths, name: str, env: str, replica: str | None = None) -> Iterator[None]:
    """Hold the server lock of NAME/ENV while serving (an ``flock``: the OS releases it when
    the process dies, even by ``kill -9``; unlike ``lockf`` it also excludes a second open of
    the file in the same process, and closing another descriptor does not drop it).

    Raises:
        ServerAlreadyRunning: Another process holds it; the message names its URL.
    """
    path = lock_file(paths, name, env, replica)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not _lock_within(fd, seconds=2.0):  # a CLI's probe holds it for microseconds: wait that out
        os.close(fd)
        try:
            record = json.loads(address_file(paths, name, env, replica).read_text())
            where = f"at {record['url']} (pid {record['pid']})"
        except (OSError, ValueError, KeyError, TypeError):
            where = "(it is still starting)"
        who = "A server" if replica is None else f"Replica {replica}"
        raise ServerAlreadyRunning(
            f"{who} for {name} in {env} already runs from this project {where}.",
            "Use that one (the CLI finds it), or stop it before starting another"
            + ("." if replica is None else " (or give this one another --replica)."),
        ) from None
    try:
        os.ftruncate(fd, 0)
        said = {"pid": os.getpid(), "name": name, "env": env, "replica": replica}
        os.write(fd, (f"{os.getpid()}\n" if replica is None else json.dumps(said)).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeOptions(TypedDict, total=False):
    """The options of :func:`serve`, for callers that pass them on (their defaults live there)."""

    host: str
    port: int
    allow_remote: bool
    watchdog_interval: float
    log: bool
    bake_seconds: float
    scoring_threads: int | None
    log_flush_interval: float | None
    max_rows: int
    on_ready: Callable[[str], None] | None
    on_event: Callable[[TrafficEvent], None] | None
    replica: str | None
    on_replica: Callable[[str, str], None] | None
    metrics: bool


def serve(
    repo: str | Path,
    name: str,
    env: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    watchdog_interval: float = 5.0,
    log: bool = True,
    bake_seconds: float = 600.0,
    on_rollback: Callable[[dict[str, Any]], None] | None = None,
    scoring_threads: int | None = 1,
    log_flush_interval: float | None = None,
    max_rows: int = MAX_ROWS,
    on_ready: Callable[[str], None] | None = None,
    on_event: Callable[[TrafficEvent], None] | None = None,
    on_assignment: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    replica: str | None = None,
    on_replica: Callable[[str, str], None] | None = None,
    metrics: bool = True,
) -> None:
    """Load what git says serves NAME in ENV, then serve it until SIGINT/SIGTERM.

    With ``log`` (the default) every prediction goes to the project's prediction log
    (``.rollbackkit/local/predictions.duckdb``, or the shared store's tables), batched off the
    request path.
    ``on_rollback`` is called with the result of each automatic rollback, in a background
    thread once traffic has moved (traffic never waits for it): :func:`rollbackkit.ops.serve.serve`
    starts the rollback runbook there. ``on_ready`` is called with the URL once the server
    listens; ``on_event`` with each traffic change and gate breach as it happens
    (:class:`~rollbackkit.serving.status.TrafficEvent`); ``on_assignment`` with each deploy,
    promote and manual rollback's answer (:class:`~rollbackkit.serving.environment.ServingEnvironment`:
    the MLflow alias move). ``scoring_threads`` caps native
    thread pools per request (see :mod:`rollbackkit.serving.threads`; 0 or None: no cap).
    ``log_flush_interval`` is how often the log's writer process commits, and so what a
    crash of the writer can lose (None: :data:`~rollbackkit.serving.predlog.process.WRITER_FLUSH_INTERVAL`;
    a crash of the server alone loses at most 0.05 s). ``max_rows`` caps the rows of one
    ``/predict`` request (more: 413 before scoring). On SIGINT/SIGTERM the log's writer gets
    :data:`SHUTDOWN_FLUSH_SECONDS` to commit what it holds, then is killed; the requests it may
    not have written are journaled (``log-writer-killed``) and printed.

    With a shared store configured the store is opened before anything else, the server is
    replica ``replica`` (:func:`~rollbackkit.serving.replicated.replica_id`) of the environment:
    its log goes to the store, it follows the store's routing (a ``ReplicaSync``), and its
    watchdog evaluates only while it leads. On shutdown it leaves: sync stopped, lead released.
    ``on_replica`` is called with its id and the store (password redacted) once it listens.

    With ``metrics`` (the default) ``GET /metrics`` answers Prometheus' text format
    (:mod:`rollbackkit.serving.metrics`); without, a 404.

    Raises:
        InvalidToken: The admin token is empty, short or not visible ASCII.
        InvalidInput: A non-loopback host without ``allow_remote``; the store setting is not a
            PostgreSQL URL; ``replica`` is not an id, or is given without a store.
        NotifyConfigError: ``notify:`` in the config is malformed or a target's secret is missing
            (nothing was loaded).
        StoreError: The store is unreachable, refused the credentials, or was created by a
            newer rollbackkit (nothing was loaded).
        ServerAlreadyRunning: A server for NAME/ENV (this replica, with a store) already runs
            from this project.
    """
    import uvicorn

    from rollbackkit.notify.process import hold, notifier_for, release
    from rollbackkit.registry.repository import Repository
    from rollbackkit.serving.app import create_app
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.logs import open_log
    from rollbackkit.serving.postgres.store import open_store, store_url
    from rollbackkit.serving.replicated import ReplicaEnvironment, advertised, replica_id

    if not is_loopback(host) and not allow_remote:
        raise InvalidInput(
            f"Refusing to bind to {host}: it is not a loopback address.",
            "Pass --allow-remote to serve beyond this machine (put TLS and auth in front).",
        )
    paths = Repository(repo).paths
    notifier = notifier_for(paths)  # a bad notify: config stops us before anything is loaded
    url = store_url(paths)
    store = open_store(url) if url is not None else None  # a bad store stops us before anything is loaded
    if store is None and replica is not None:
        raise InvalidInput(
            f"--replica {replica} names a replica of a shared store, and none is configured.",
            "Set store: postgresql://... in .rollbackkit/config.yaml (or ROLLBACKKIT_STORE), or drop --replica.",
        )
    me = replica_id(replica, port) if store is not None else None
    if store is not None and not log:
        print(
            "warning: --no-log on a shared store: this replica's requests are not in the store, and while its "
            "watchdog leads it judges only its own traffic.",
            file=sys.stderr,
        )
    token = ensure_admin_token(paths)  # a bad token is refused before anything is loaded
    warn_if_readable(paths)
    before = set(threading.enumerate())  # threads not this server's (an in-process caller's) are not waited for
    with server_lock(paths, name, env, me):  # held until serving ends
        flush: dict[str, Any] = {} if log_flush_interval is None else {"flush_interval": log_flush_interval}
        if me is not None:
            flush["replica"] = me  # the store's writer stamps its rows with it
        prediction_log = open_log(paths, process=True, **flush) if log else None
        options: dict[str, Any] = {
            "log": prediction_log,
            "bake_seconds": bake_seconds,
            "scoring_threads": scoring_threads or None,
            "freeze_heap": True,
            "on_auto_rollback": on_rollback,
            "on_event": on_event,
            "on_assignment": on_assignment,
            "notifier": notifier,
            "metrics": metrics,
        }
        if store is None or me is None:
            environment = ServingEnvironment(repo, name, env, **options)
        else:
            environment = ReplicaEnvironment(repo, name, env, store=store, replica=me, **options)
        environment.start()
        notifier = hold(paths, notifier)  # this server's until it ends: everything in this process sends through it
        if notifier is not None:  # delivers what an earlier process left in the outbox, too
            notifier.start()
        sync = None
        if isinstance(environment, ReplicaEnvironment):
            try:
                sync = _follow(environment)
            except BaseException:
                environment.stop()
                environment.close()
                release(paths)
                raise
        if prediction_log is not None:
            prediction_log.start()
        config = uvicorn.Config(
            create_app(environment, token, max_rows=max_rows),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(SHUTDOWN_FLUSH_SECONDS),
        )
        server = uvicorn.Server(config)
        record = address_file(paths, name, env, me)

        original_startup = server.startup

        async def startup(sockets: Any = None) -> None:
            await original_startup(sockets)
            bound = server.servers[0].sockets[0].getsockname()
            url = f"http://{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}"
            fields = {"url": url, "pid": os.getpid(), "name": name, "env": env, "allow_remote": allow_remote}
            atomic_write(record, json.dumps(fields if me is None else {**fields, "replica": me}))
            if sync is not None:  # its row names the URL now, off the event loop (the store may be slow)
                said = advertised(url, host)
                threading.Thread(target=sync.announce, args=(said,), name="rollbackkit-announce", daemon=True).start()
            environment.start_watchdog(watchdog_interval)
            if on_ready is not None:
                on_ready(url)
            if on_replica is not None and store is not None and me is not None:
                on_replica(me, store.where)

        server.startup = startup  # type: ignore[method-assign]
        signal.signal(signal.SIGTERM, lambda *_: _terminated(server, environment))
        try:
            server.run()
        finally:  # the watchdog joined first (it may be publishing a rollback), then the sync, then the lead
            environment.stop()
            if sync is not None:
                sync.stop()
            if isinstance(environment, ReplicaEnvironment):
                environment.close()
            if prediction_log is not None:
                _close_log(prediction_log, paths, name, env)
            release(paths, NOTIFY_CLOSE_SECONDS)  # what is undelivered stays in the outbox (the next process sends it)
            _join_threads(SHUTDOWN_JOIN_SECONDS, before)
            try:
                if json.loads(record.read_text()).get("pid") == os.getpid():
                    record.unlink()
            except (OSError, ValueError):
                pass


def _terminated(server: Any, environment: Any) -> None:
    """SIGTERM: a replica leaves the balancer and the watchdog's lead at once; uvicorn drains."""
    leave = getattr(environment, "leave", None)
    if leave is not None:
        leave()
    server.should_exit = True


def _follow(environment: ReplicaEnvironment) -> Any:
    """Start following the store's routing state (a ``ReplicaSync``: adopt, listen, heartbeat)."""
    from rollbackkit.serving.sync import ReplicaSync

    sync = ReplicaSync(environment, environment.store, environment.replica)
    sync.start()  # sets environment.sync
    return sync


def _join_threads(seconds: float, before: set[threading.Thread]) -> None:
    """Wait up to ``seconds`` for the ``rollbackkit-*`` threads started since ``before`` to end; any
    still running is named on stderr and rollbackkit's loggers are silenced, so none writes while
    Python finalizes."""
    me = threading.current_thread()
    deadline = time.monotonic() + seconds
    ours = [t for t in threading.enumerate() if t.name.startswith("rollbackkit-") and t is not me and t not in before]
    for thread in ours:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sorted({t.name for t in ours if t.is_alive()})
    if not stuck:
        return
    print(f"warning: {', '.join(stuck)} still running after {seconds:.0f} s; exiting without them.", file=sys.stderr)
    for logger_name in list(logging.root.manager.loggerDict):
        if logger_name == "rollbackkit" or logger_name.startswith("rollbackkit."):
            logging.getLogger(logger_name).disabled = True


def _close_log(log: Any, paths: ProjectPaths, name: str, env: str) -> None:
    """Close the prediction log within :data:`SHUTDOWN_FLUSH_SECONDS`; journal what it may have lost."""
    from rollbackkit.registry.journal import Journal

    unwritten = log.close(wait=SHUTDOWN_FLUSH_SECONDS)
    if unwritten is None:
        return
    print(
        f"warning: the prediction-log writer did not finish in {SHUTDOWN_FLUSH_SECONDS:.0f} s and was killed; "
        f"up to {unwritten} requests were not written.",
        file=sys.stderr,
    )
    try:
        Journal(paths.journal).append("log-writer-killed", name=name, env=env, unwritten=unwritten)
    except Exception as exc:  # shutting down: say so, never hang or raise here
        print(f"warning: could not journal it: {exc}", file=sys.stderr)
