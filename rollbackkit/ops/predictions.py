"""Predictions: what a version wrote to the prediction log, and its repair.

Each call goes through the environment's running server when it writes the log (it is the
log's one writer), else reads the log file here: ``affected`` rows, ``backfill`` (re-score
with the version now serving), a version's latest ``logged_window``, ``prediction_drift``
against the reference, and the runbook's ``side_effects`` step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput, ServerError, ServerTimeout
from rollbackkit.ops.log_results import AffectedRows, BackfillResult, PredictionShares, SideEffects
from rollbackkit.ops.server_answers import from_server
from rollbackkit.ops.traffic import server_for
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Deployments, require_known
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import READ_TIMEOUT, WRITE_TIMEOUT, admin_call, running_servers
from rollbackkit.serving.client import status as server_status
from rollbackkit.serving.log_operations import log_operation
from rollbackkit.serving.logs import open_log
from rollbackkit.serving.postgres.store import store_url
from rollbackkit.serving.wire import decode_frame


def logged_window(repo: str | Path, name: str, env: str, version: str, *, server: str | None = None) -> pd.DataFrame:
    """A version's latest logged rows in ``env`` (inputs, outputs, latency, error).

    Through the running server when there is one, else from the log file; empty when
    nothing was logged. At most :data:`~rollbackkit.serving.log_operations.WINDOW_LIMIT` rows.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        version: The version whose rows to read.
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        A ``pandas.DataFrame``, one row per logged request (empty when nothing was logged).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        ServerError: The server refused or did not answer.
    """
    registry = Repository(repo)
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        return pd.DataFrame()
    return decode_frame(log_call(registry, url, "window", name, env, version))


def prediction_drift(
    repo: str | Path, name: str, env: str, versions: list[str], *, server: str | None = None
) -> dict[str, PredictionShares]:
    """Logged predictions of each version against its reference, by version (see
    :func:`~rollbackkit.serving.log_operations.log_drift`).

    Empty when nothing was logged yet (no server and no prediction log).

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        versions: The versions to compare, e.g. the one rolled back from and the one now serving.
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        ``{version: PredictionShares}``: per version a
        :class:`~rollbackkit.ops.log_results.PredictionShares` (its drift metric, and the
        reference and current shares or quantiles).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        ServerError: The server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer`
            when it answered in a shape this client does not know).
    """
    if not versions:
        return {}
    registry = Repository(repo)
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        return {}
    found = log_call(registry, url, "drift", name, env, ",".join(versions))
    return {v: from_server(PredictionShares.from_dict, item, url, "drift") for v, item in found.items()}


def affected(
    repo: str | Path, name: str, env: str, version: str, *, since: str | None = None, server: str | None = None
) -> AffectedRows:
    """Rows ``version`` wrote in ``env``: through the running server, or the log file directly.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        version: The version whose rows to count.
        since: Only rows logged at or after this ISO time (None: all).
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        :class:`~rollbackkit.ops.log_results.AffectedRows`: counts, time range, tables and a sample.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        InvalidVersion: ``version`` is not ``vMAJOR.MINOR.PATCH``.
        InvalidInput: There is no prediction log to read.
        ServerError: The server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer`
            when it answered in a shape this client does not know).
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    url = log_server(registry, name, env, server)
    return from_server(
        AffectedRows.from_dict, log_call(registry, url, "affected", name, env, version, since), url, "affected"
    )


def backfill(repo: str | Path, name: str, env: str, version: str, *, server: str | None = None) -> BackfillResult:
    """Re-score the rows ``version`` wrote in ``env`` with the version now serving.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        version: The version whose rows to re-score (the one rolled back from).
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        :class:`~rollbackkit.ops.log_results.BackfillResult`: rows re-scored, by which version,
        and where the corrections went.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        InvalidInput: ``version`` is the version serving now: re-scoring its rows with
            itself would change nothing; or there is no prediction log.
        InvalidVersion: ``version`` is not ``vMAJOR.MINOR.PATCH``.
        VersionNotFound: Nothing serves ``name`` in ``env`` to re-score with.
        IncompatibleInput: The version serving cannot score the stored inputs.
        ServerError: The server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer`
            when it did the backfill but answered in a shape this client does not know).
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    if Deployments(registry).state(validate_name(name), validate_name(env, "environment name")).version == version:
        raise InvalidInput(
            f"{name}@{version} serves {env} now: re-scoring its rows with itself would change nothing.",
            f"Backfill the version rolled back from (rollbackkit history {name} --env {env} names it).",
        )
    url = log_server(registry, name, env, server)
    return from_server(
        BackfillResult.from_dict, log_call(registry, url, "backfill", name, env, version), url, "backfill", done=True
    )


def has_prediction_log(repo: str | Path, name: str, env: str, *, server: str | None = None) -> bool:
    """Whether ``name`` in ``env`` has a prediction log to read: through a server that writes
    one, or the project's log file (False under ``serve --no-log`` with no file).

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        True when :func:`affected`, :func:`backfill` and :func:`logged_window` have a log to read.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
    """
    registry = Repository(repo)
    return has_log(registry, log_server(registry, name, env, server))


def has_log(registry: Repository, url: str | None) -> bool:
    """Whether there is a prediction log to ask: the server at ``url`` (its one writer, from
    :func:`log_server`), the shared store (every replica's rows), or the file."""
    return url is not None or store_url(registry.paths) is not None or registry.paths.prediction_log.exists()


def log_server(registry: Repository, name: str, env: str, server: str | None, *, any_env: bool = True) -> str | None:
    """The server to ask about the prediction log: ``server`` or the running one, unless it
    runs without a log (``serve --no-log``); else (no ``server`` named, no shared store) the
    server of any model or environment of the project that writes the log file (it holds the
    file: a read of NAME in ENV goes through it; not with ``any_env`` False: a write of NAME
    in ENV's rows); None: the file, if any, is free to read.

    Asks a server's ``/status`` (within :data:`~rollbackkit.serving.client.READ_TIMEOUT`): resolve
    it once per operation and pass it on.

    Raises:
        ServerTimeout: The server did not answer ``/status`` in time (stopped or overloaded).
    """
    url = server_for(registry, name, env, server)
    if url is not None and _writes_log(registry, url):
        return url
    if server is not None or not any_env or store_url(registry.paths) is not None:
        return None
    for other, *_ in running_servers(registry.paths):
        if other != url and _writes_log(registry, other):
            return other
    return None


def _writes_log(registry: Repository, url: str) -> bool:
    """Whether the server at ``url`` writes a prediction log (its ``/status`` names the writer);
    ServerTimeout when it does not answer in time (the log call would hang the same way)."""
    try:
        answer = server_status(url, timeout=READ_TIMEOUT, paths=registry.paths)
    except ServerTimeout:
        raise
    except ServerError:
        return True  # the admin call will say what is wrong
    return not ("log" in answer and answer["log"] is None)


READS = frozenset({"window", "affected", "drift"})
"""Log operations given :data:`~rollbackkit.serving.client.READ_TIMEOUT` (the rest write, or judge gates)."""


def log_call(
    registry: Repository, url: str | None, operation: str, name: str, env: str, version: str, since: str | None = None
) -> dict[str, Any]:
    """Run a log operation through the server at ``url`` (from :func:`log_server`: it may serve
    another model or environment, and reads NAME in ENV's rows for us), or on the file."""
    if url is not None:
        body = {"version": version, "since": since, "name": name, "env": env}
        timeout = READ_TIMEOUT if operation in READS else WRITE_TIMEOUT
        return admin_call(registry.paths, url, operation, body, timeout=timeout)
    log = open_log(registry.paths, existing=True)
    try:
        return log_operation(registry, log, operation, name, env, version, since)
    finally:
        log.close()


def side_effects(repo: str | Path, name: str, env: str, version: str | None, *, repair: bool) -> SideEffects:
    """Rows ``version`` wrote in ``env``, and (with ``repair``) their backfill.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        version: The version rolled back from (None: nothing to look for).
        repair: Backfill its quarantined rows with the version now serving.

    Returns:
        :class:`~rollbackkit.ops.log_results.SideEffects`: the rows' counts (no sample) and the
        backfill's result (None without ``repair`` or quarantined rows); ``logged`` is False
        when there is no prediction log to look in (a server started with ``--no-log`` and
        no log file), and ``note`` then says so.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        ServerError: The server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer`
            when it answered in a shape this client does not know).
    """
    registry = Repository(repo)
    url = log_server(registry, name, env, None) if version is not None else None
    if version is None or not has_log(registry, url):
        note = "no prediction log" if version is not None else "no version to look for"
        return SideEffects(version=version, logged=False, affected=None, backfill=None, note=note)
    found = log_call(registry, url, "affected", name, env, version)
    rows = from_server(AffectedRows.from_dict, found, url, "affected").without_sample()
    repaired = None
    if repair and rows.quarantined:
        done = log_call(registry, url, "backfill", name, env, version)
        repaired = from_server(BackfillResult.from_dict, done, url, "backfill", done=True)
    return SideEffects(version=version, logged=True, affected=rows, backfill=repaired)
