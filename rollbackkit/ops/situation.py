"""Situation: where an environment stands, for the runbooks and the console.

What serves now (and through which server), preflight against it, and its gate report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rollbackkit.errors import ServerError, UnknownAnswer
from rollbackkit.ops.predictions import log_server
from rollbackkit.ops.server_answers import from_server
from rollbackkit.ops.situation_result import Situation
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import load
from rollbackkit.registry.repository import Repository
from rollbackkit.serving import client
from rollbackkit.serving.client import admin_call, find_server
from rollbackkit.serving.status import GateStatus, ServerStatus

if TYPE_CHECKING:
    from rollbackkit.analysis.preflight import PreflightReport


def known(repo: str | Path, name: str, env: str | None = None) -> None:
    """Refuse a bundle name that is not registered, or an environment ``name`` was never in.

    Every ops function that reads a name's history calls this first, so the CLI and the
    Python API both answer a typo with an error listing the known names, never an empty result.

    Args:
        repo: Any path inside the project.
        name: A bundle name.
        env: An environment, or None to check only the name.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` breaks the naming rules.
        VersionNotFound: ``name`` is not registered or was never in ``env``; the hint lists the known ones.
    """
    require_known(Repository(repo), name, env)


def situation(repo: str | Path, name: str, env: str) -> Situation:
    """What serves ``name`` in ``env`` now, through which server (if any), and the history.

    ``serving`` is the live version and ``canary`` a running canary's version (or None),
    both from :meth:`Deployments.state`; ``server`` and ``status`` are None when no server
    for ``env`` answers.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.

    Returns:
        :class:`~rollbackkit.ops.situation_result.Situation`: ``serving``, ``canary``, ``server``,
        its :class:`~rollbackkit.serving.status.ServerStatus` and the assignment ``history``.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        UnknownAnswer: A server for ``env`` answered in a shape this client does not know.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    deployments = Deployments(registry)
    history = deployments.history(validate_name(name), validate_name(env, "environment name"))
    state = deployments.state(name, env)
    url = find_server(registry.paths, name, env)
    status = None
    if url is not None:
        try:
            status = read_status(url)
        except UnknownAnswer:  # a server answers: saying "none" would misrecord who acts
            raise
        except ServerError:
            url = None
    return Situation(
        name=name,
        env=env,
        serving=state.version,
        canary=state.canary.version if state.canary else None,
        server=url,
        status=status,
        history=history,
        shadow=state.shadow.version if state.shadow else None,
    )


def read_status(url: str) -> ServerStatus:
    """The ``GET /status`` of the server at ``url``, typed: the one reader of a server's status.

    Raises:
        ServerError: The server does not answer, or answers in a shape this client does not know.
    """
    return from_server(ServerStatus.from_dict, client.status(url), url, "/status")


def server_status(repo: str | Path, name: str, env: str, *, server: str | None = None) -> ServerStatus:
    """What the server for ``name`` in ``env`` (or at ``server``) serves right now.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        ServerError: No server runs for ``env`` (and no ``server`` was given), or it does not answer.
    """
    paths = Repository(repo).paths
    url = server or find_server(paths, name, env)
    if url is None:
        raise ServerError(client.no_server(paths, name, env), f"Start one with rollbackkit serve {name} --env {env}.")
    return read_status(url)


def preflight(
    repo: str | Path, ref: str, features: pd.DataFrame | None = None, *, env: str | None = None
) -> PreflightReport:
    """Preflight ``ref`` against live ``features``, with ``env``'s serving version as consumer.

    Args:
        repo: Any path inside the project.
        ref: The version to check, ``NAME@VERSION``.
        features: Live features (None: the checks that need none).
        env: The environment whose serving version is the consumer (None: no consumer).

    Returns:
        :class:`~rollbackkit.analysis.preflight.PreflightReport`: the ``verdict``
        (``compatible``, ``adaptable`` or ``incompatible``), its findings and adaptation.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidReference: ``ref`` is not ``NAME@VERSION``.
        InvalidName: ``env`` is not a valid environment name.
        VersionNotFound: ``ref`` is not registered.
        InvalidInput: ``features`` is empty.
    """
    registry = Repository(repo)
    consumer = None
    if env is not None:
        target = resolve(registry, Reference.parse(ref))
        serving = Deployments(registry).serving(target.name, validate_name(env, "environment name"))
        consumer = f"{target.name}@{serving.version}" if serving else None
    from rollbackkit.registry.checks import preflight_bundle  # pydantic: loaded by a preflight only

    return preflight_bundle(registry, load(registry, resolve(registry, ref)), features, consumer=consumer)


def gate_status(repo: str | Path, name: str, env: str) -> GateStatus:
    """The latest gate report for what serves ``env``: from its server, else from the log.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.

    Returns:
        :class:`~rollbackkit.serving.status.GateStatus`: the report, or decision
        ``insufficient`` with a ``reason`` when there is nothing to evaluate yet.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        UnknownAnswer: The server answered in a shape this client does not know.
        InvalidInput: The serving version's ``gates.yaml`` cannot be evaluated.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    from rollbackkit.serving.gating import evaluate_logged

    where = situation(repo, name, env)  # refuses an unknown name or environment
    if where.status is not None:
        return where.status.gates or GateStatus("insufficient", reason="the server has not evaluated its gates yet")
    if where.serving is None:
        return GateStatus("insufficient", reason=f"nothing serves {name} in {env}")
    registry = Repository(repo)
    if not registry.paths.prediction_log.exists():
        return GateStatus("insufficient", reason="no prediction log yet")
    return GateStatus.from_dict(evaluate_logged(registry, f"{name}@{where.serving}", env=env).to_dict())


def check_gates(
    repo: str | Path,
    ref: str,
    *,
    window: str | Path | None = None,
    env: str | None = None,
    server: str | None = None,
) -> GateStatus:
    """Evaluate ``ref``'s gates over a window file, or over its latest logged rows in ``env``.

    With ``env`` and a server for it that writes the prediction log, the server evaluates
    (it holds the log file open); otherwise the file is read here.

    Args:
        repo: Any path inside the project.
        ref: The version whose gates to evaluate, ``NAME@VERSION``.
        window: A CSV/Parquet file of logged rows (inputs, outputs, ``latency_ms``, ``error``).
        env: The environment whose logged rows of ``ref`` to evaluate (when no ``window``).
        server: The URL of the server for ``env`` (default: the running one).

    Returns:
        :class:`~rollbackkit.serving.status.GateStatus`: ``version``, ``n``, ``decision`` and
        each gate's result.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidReference: ``ref`` is not ``NAME@VERSION``.
        VersionNotFound: ``ref`` is not registered.
        InvalidPath: ``window`` does not exist.
        InvalidInput: Not exactly one of ``window`` and ``env`` is given, or the window cannot be read.
        ServerError: The server refused or did not answer.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    from rollbackkit.serving.gating import evaluate_logged

    registry = Repository(repo)
    require_known(registry, Reference.parse(ref).name, env)
    if env is not None and window is None:
        target = resolve(registry, Reference.parse(ref))
        url = log_server(registry, target.name, env, server)
        if url is not None:
            asked = {"version": target.version, "name": target.name, "env": env}  # url may serve another env
            report = admin_call(registry.paths, url, "gates", asked)
            return from_server(GateStatus.from_dict, report, url, "gates")
    return GateStatus.from_dict(evaluate_logged(registry, ref, window=window, env=env).to_dict())
