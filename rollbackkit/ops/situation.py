"""Situation: where an environment stands, for the runbooks and the console.

What serves now (and through which server), preflight against it, and its gate report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import ServerError
from rollbackkit.ops.predictions import log_server
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.store import Registry
from rollbackkit.serving.client import admin_call, find_server
from rollbackkit.serving.client import status as server_status


def situation(repo: str | Path, name: str, env: str) -> dict[str, Any]:
    """What serves ``name`` in ``env`` now, through which server (if any), and the history.

    Returns:
        ``{"name", "env", "serving", "canary", "server", "status", "history": [assignment, ...]}``;
        ``serving`` is the live version and ``canary`` a running canary's version (or None),
        both from :meth:`Deployments.state`.
    """
    registry = Registry(repo)
    deployments = Deployments(registry)
    history = deployments.history(validate_name(name), validate_name(env, "environment name"))
    state = deployments.state(name, env)
    url = find_server(registry.paths, name, env)
    status = None
    if url is not None:
        try:
            status = server_status(url)
        except ServerError:
            url = None
    return {
        "name": name,
        "env": env,
        "serving": state.version,
        "canary": state.canary.version if state.canary else None,
        "server": url,
        "status": status,
        "history": [a.to_dict() for a in history],
    }


def preflight(
    repo: str | Path, ref: str, features: pd.DataFrame | None = None, *, env: str | None = None
) -> dict[str, Any]:
    """Preflight ``ref`` against live ``features``, with ``env``'s serving version as consumer."""
    registry = Registry(repo)
    consumer = None
    if env is not None:
        target = registry.resolve(Reference.parse(ref))
        serving = Deployments(registry).serving(target.name, validate_name(env, "environment name"))
        consumer = f"{target.name}@{serving.version}" if serving else None
    return registry.preflight(ref, features, consumer=consumer).to_dict()


def gate_status(repo: str | Path, name: str, env: str) -> dict[str, Any]:
    """The latest gate report for what serves ``env``: from its server, else from the log.

    Returns:
        A ``GateReport`` dict (``decision``, ``gates``...), or ``{"decision": "insufficient",
        "reason": ...}`` when there is nothing to evaluate yet.
    """
    from rollbackkit.serving.gating import evaluate_logged

    where = situation(repo, name, env)
    if where["status"] is not None:
        report = where["status"].get("gates")
        return report or {"decision": "insufficient", "reason": "the server has not evaluated its gates yet"}
    if where["serving"] is None:
        return {"decision": "insufficient", "reason": f"nothing serves {name} in {env}"}
    registry = Registry(repo)
    if not registry.paths.prediction_log.exists():
        return {"decision": "insufficient", "reason": "no prediction log yet"}
    return evaluate_logged(registry, f"{name}@{where['serving']}", env=env).to_dict()


def check_gates(
    repo: str | Path,
    ref: str,
    *,
    window: str | Path | None = None,
    env: str | None = None,
    server: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``ref``'s gates over a window file, or over its latest logged rows in ``env``.

    With ``env`` and a server for it that writes the prediction log, the server evaluates
    (it holds the log file open); otherwise the file is read here.

    Returns:
        A ``GateReport`` dict (``version``, ``n``, ``decision``, ``gates``).
    """
    from rollbackkit.serving.gating import evaluate_logged

    registry = Registry(repo)
    if env is not None and window is None:
        target = registry.resolve(Reference.parse(ref))
        url = log_server(registry, target.name, env, server)
        if url is not None:
            return admin_call(registry.paths, url, "gates", {"version": target.version})
    return evaluate_logged(registry, ref, window=window, env=env).to_dict()
