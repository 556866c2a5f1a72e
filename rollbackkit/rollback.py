"""Deploy and roll back, with or without a running server: the orchestration the CLI calls.

With a server for the environment, both drive its admin API: the traffic shift happens in
the server (milliseconds; the previous version is still warm) and the server records the
assignment. Without one, they run preflight, restore the bundle in the workspace through
DVC, and record the assignment. Either way an incompatible target is refused unless
``force`` is set, and a forced override is recorded in the assignment tag.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.deployments import Action, Deployments
from rollbackkit.journal import Journal
from rollbackkit.locking import repo_lock
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry import Registry
from rollbackkit.serving.client import admin_call, find_server
from rollbackkit.serving.environment import PreflightFailed


def deploy(
    repo: str | Path,
    ref: str,
    env: str,
    *,
    canary: int | None = None,
    features: pd.DataFrame | None = None,
    force: bool = False,
    reason: str = "",
    server: str | None = None,
) -> dict[str, Any]:
    """Deploy ``NAME@VERSION`` to ``env`` (canary ``percent`` if given)."""
    registry = Registry(repo)
    target = registry.resolve(Reference.parse(ref))
    validate_name(env, "environment name")
    url = server or find_server(registry.paths, target.name, env)
    if url is not None:
        body = {
            "version": target.version,
            "canary": canary,
            "force": force,
            "reason": reason,
            "features": features.to_dict(orient="records") if features is not None else None,
        }
        return {"via": url, **admin_call(registry.paths, url, "deploy", body)}
    if canary is not None:
        raise PreflightFailed(
            f"A canary needs a running server for {env}.",
            f"Start one: rollbackkit serve {target.name} --env {env}.",
            {},
        )
    return _offline(registry, target.name, env, target.version, "deploy", features, force, reason, "")


def rollback(
    repo: str | Path,
    name: str,
    env: str,
    *,
    reason: str,
    to: str | None = None,
    incident: str = "",
    features: pd.DataFrame | None = None,
    force: bool = False,
    server: str | None = None,
) -> dict[str, Any]:
    """Roll ``name`` in ``env`` back to ``to`` (default: the version that served before)."""
    registry = Registry(repo)
    validate_name(name)
    validate_name(env, "environment name")
    url = server or find_server(registry.paths, name, env)
    if url is not None:
        body = {"reason": reason, "incident": incident, "to": to, "force": force}
        return {"via": url, **admin_call(registry.paths, url, "rollback", body)}
    target = Deployments(registry).resolve_target(name, env, to)
    return _offline(registry, name, env, target.version, "rollback", features, force, reason, incident)


def _offline(
    registry: Registry,
    name: str,
    env: str,
    version: str,
    action: Action,
    features: pd.DataFrame | None,
    force: bool,
    reason: str,
    incident: str,
) -> dict[str, Any]:
    started = time.perf_counter()
    info = registry.resolve(f"{name}@{version}")
    report = registry.preflight(info, features).to_dict()
    if report["verdict"] == "incompatible" and not force:
        bad = [f for f in report["findings"] if f["severity"] == "incompatible"]
        raise PreflightFailed(
            f"{info.tag} failed preflight: "
            + "; ".join(f"{f['column']}: {f['kind']}" for f in bad[:5])
            + ". Nothing was changed.",
            "Fix the inputs, or pass --force to override (it is recorded).",
            report,
        )
    restored = registry.restore(info)
    forced = force and report["verdict"] == "incompatible"
    deployments = Deployments(registry)
    with repo_lock(registry.paths.lock_file):
        assignment = deployments.assign_locked(
            info,
            env,
            action,
            reason=reason,
            incident=incident,
            forced=forced,
        )
        Journal(registry.paths.journal).append(
            action,
            name=name,
            env=env,
            version=version,
            tag=assignment.tag,
            reason=reason,
            incident=incident,
            via="workspace",
            restore_s=round(restored.seconds, 4),
            total_s=round(time.perf_counter() - started, 4),
        )
    return {
        "via": "workspace",
        "assignment": assignment.to_dict(),
        "preflight": report,
        "restored": str(restored.directory),
    }
