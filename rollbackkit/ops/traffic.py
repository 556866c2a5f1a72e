"""Traffic: deploy, roll back and promote, with or without a running server.

With a server for the environment, these drive its admin API: the traffic shift happens in
the server (milliseconds; the previous version is still warm) and the server records the
assignment. Without one, they run preflight, restore the bundle in the workspace through
DVC, and record the assignment. Either way an incompatible target is refused unless
``force`` is set, and a forced override is recorded in the assignment tag.

The rollback rule itself lives in :meth:`rollbackkit.registry.assignments.Deployments.rollback_target`
only; :mod:`rollbackkit.ops.runbook_targets` says what it means for a runbook
(:func:`rollback_target`, :func:`rolled_back_from`, importable from here too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from rollbackkit.errors import InvalidInput, ServerError
from rollbackkit.locking import repo_lock
from rollbackkit.ops import notices
from rollbackkit.ops.assignment_results import AssignmentResult, Cancelled, Preflight
from rollbackkit.ops.other_hosts import from_answer, refresh, tagged
from rollbackkit.ops.rollout_options import promote_body, rollout_request
from rollbackkit.ops.runbook_targets import rollback_target as rollback_target  # re-exported
from rollbackkit.ops.runbook_targets import rolled_back_from as rolled_back_from
from rollbackkit.ops.server_answers import from_server
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry.assignments import Action, Deployments, require_known, resolve
from rollbackkit.registry.checks import preflight_bundle, unchecked
from rollbackkit.registry.contents import load
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.people import actor
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.restore import restore
from rollbackkit.registry.serving_state import Serving
from rollbackkit.serving.client import admin_call, find_server, no_server
from rollbackkit.serving.wire import encode_frame


def deploy(
    repo: str | Path,
    ref: str,
    env: str,
    *,
    canary: int | None = None,
    shadow: int | None = None,
    steps: str | Sequence[int] | None = None,
    bake: str | float | None = None,
    features: pd.DataFrame | None = None,
    force: bool = False,
    reason: str = "",
    server: str | None = None,
) -> AssignmentResult:
    """Deploy ``NAME@VERSION`` to ``env``: to all traffic, to a share of it (``canary``), to a
    mirror of it (``shadow``), or step by step (``steps``).

    Args:
        repo: Any path inside the project.
        ref: The version to deploy, ``NAME@VERSION``.
        env: The environment, e.g. ``prod``.
        canary: Percent of traffic for the new version as a canary (needs a running server);
            None sends it all traffic.
        shadow: Percent of live requests (1-100) mirrored to the new version off the request
            path (needs a running server): its answers are logged as shadow rows and never
            returned; ``promote(from_shadow=True)`` makes it a canary or live.
        steps: Canary percents, increasing and ending at 100 (``"5,25,50,100"`` or ``[5, 25,
            50, 100]``; needs a running server): the watchdog moves to the next step when the
            gates pass for ``bake``, and promotes after the last.
        bake: How long each step's gates must pass (``"10m"``, or seconds; default: the
            server's ``--bake-seconds``); only with ``steps``.
        features: Live features to preflight the version against (None: schema checks only).
        force: Deploy even when preflight says incompatible (recorded in the assignment tag).
        reason: Why, recorded with the assignment.
        server: The URL of the server to drive (default: the one running for ``env``, else
            none: the bundle is restored into the workspace).

    Returns:
        :class:`~rollbackkit.ops.assignment_results.AssignmentResult`: the assignment recorded, ``via``
        (the server URL or ``workspace``), its preflight and the traffic shift time.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidReference: ``ref`` is not ``NAME@VERSION``.
        InvalidName: ``env`` is not a valid environment name.
        VersionNotFound: ``ref`` is not registered.
        InvalidInput: More than one of canary, shadow and steps; ``bake`` without ``steps``;
            a shadow share out of 1-100; steps or a bake that do not parse (one line naming it).
        PreflightFailed: The version is incompatible with ``features`` and ``force`` is not set.
        ServerError: A canary, shadow or stepped rollout without a running server, or the
            server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer` when it answered in a shape
            this client does not know).
        NotInitialised: Without a server, the project was not set up with ``rollbackkit init``.
        RemoteError: Without a server, the bundle's data cannot be fetched from the DVC remote.
    """
    rollout = rollout_request(canary=canary, shadow=shadow, steps=steps, bake=bake)
    registry = Repository(repo)
    target = resolve(registry, Reference.parse(ref))
    validate_name(env, "environment name")
    url = server or find_server(registry.paths, target.name, env)
    if url is not None:
        body = {
            "version": target.version,
            **rollout.body(),
            "force": force,
            "reason": reason,
            "features": encode_frame(features) if features is not None else None,
            "actor": actor(registry.root),
        }
        return synced(registry, _through_server(registry, url, "deploy", body))
    if rollout.needs_server is not None:
        raise ServerError(
            f"{rollout.needs_server} needs a running server for {env}.",
            f"Start one: rollbackkit serve {target.name} --env {env}.",
        )
    done = _offline(registry, target.name, env, target.version, "deploy", features, force, reason, "")
    return synced(registry, _notified(registry, done))


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
) -> AssignmentResult:
    """Roll ``name`` in ``env`` back to ``to``, by default to the target of the one rule
    (:meth:`~rollbackkit.registry.assignments.Deployments.rollback_target`): the newest other version
    that served and was not rolled back from. A rollback that would change nothing is refused.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        reason: Why, recorded with the assignment (required).
        to: The version to roll back to (default: the rule's target).
        incident: An incident id, recorded with the assignment.
        features: Live features to preflight the target against (None: schema checks only).
        force: Roll back even when preflight says incompatible (recorded in the tag).
        server: The URL of the server to drive (default: the one running for ``env``, else
            none: the bundle is restored into the workspace).

    Returns:
        :class:`~rollbackkit.ops.assignment_results.AssignmentResult`: the assignment recorded, ``via``,
        its preflight and the traffic shift time.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        RollbackRefused: Nothing serves, no version is eligible, or the rollback would change
            nothing.
        VersionNotFound: ``to`` is not registered.
        PreflightFailed: The target is incompatible with ``features`` and ``force`` is not set.
        ServerError: The server refused or did not answer (:class:`~rollbackkit.errors.UnknownAnswer`
            when it answered in a shape this client does not know).
        RemoteError: Without a server, the bundle's data cannot be fetched from the DVC remote.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    url = server_for(registry, name, env, server)
    if url is not None:
        body = {
            "reason": reason,
            "incident": incident,
            "to": to,
            "force": force,
            "features": encode_frame(features) if features is not None else None,
            "actor": actor(registry.root),
        }
        return synced(registry, _through_server(registry, url, "rollback", body))
    deployments = Deployments(registry)
    target = deployments.rollback_target(name, env, to)
    stopped = cancelled_by(deployments.state(name, env), target.version)
    keeps = stopped is not None and stopped.kept  # the live version it keeps already serves live traffic
    done = _offline(registry, name, env, target.version, "rollback", features, force, reason, incident, keeps)
    return synced(registry, _notified(registry, done))


def _notified(registry: Repository, done: AssignmentResult) -> AssignmentResult:
    """Queue the notice of a change made in the workspace (a server sends its own); ``done`` unchanged
    (a broken ``notify:`` is a warning line after the change, never a refusal of it)."""
    notices.send(registry.paths, notices.assignment_notice(done.assignment, done.previous))
    return done


def _offline(
    registry: Repository,
    name: str,
    env: str,
    version: str,
    action: Action,
    features: pd.DataFrame | None,
    force: bool,
    reason: str,
    incident: str,
    skip_preflight: bool = False,
) -> AssignmentResult:
    from rollbackkit.analysis.preflight import refuse_incompatible  # pydantic: loaded by a change only

    started = time.perf_counter()
    info = resolve(registry, f"{name}@{version}")
    report: dict[str, Any] = (
        {"verdict": "skipped"}
        if skip_preflight
        else preflight_bundle(registry, load(registry, info), features, rollback=action == "rollback").to_dict()
    )
    refuse_incompatible(info.tag, report, force, "Nothing was changed.")
    restored = restore(registry, info)
    forced = force and report["verdict"] == "incompatible"
    deployments = Deployments(registry)
    with repo_lock(registry.paths.lock_file):
        assignment = deployments.assign_locked(
            info,
            env,
            action,
            reason=reason,
            incident=incident,
            actor=actor(registry.root),
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
            **unchecked(report),
        )
    return with_previous(
        registry,
        AssignmentResult(
            via="workspace",
            assignment=assignment,
            preflight=Preflight.from_dict(report),
            restored=str(restored.directory),
        ),
    )


def promote(
    repo: str | Path,
    name: str,
    env: str,
    *,
    reason: str = "",
    from_shadow: bool = False,
    canary: int | None = None,
    server: str | None = None,
) -> AssignmentResult:
    """Send all traffic to the running canary of ``name`` in ``env``, or (``from_shadow``) turn
    the running shadow into a canary at ``canary`` percent or into the live version (needs
    the server).

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        reason: Why, recorded with the assignment.
        from_shadow: Promote the running shadow instead of a canary.
        canary: With ``from_shadow``: start the shadow as a canary at this percent (1-99)
            instead of sending it all traffic.
        server: The URL of the server (default: the one running for ``env``).

    Returns:
        :class:`~rollbackkit.ops.assignment_results.AssignmentResult`: the assignment recorded and the
        server's status after the shift.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        InvalidInput: No server runs for ``env``, so there is no canary (or shadow) to promote;
            ``canary`` without ``from_shadow`` or out of 1-99.
        ServerError: The server refused (no canary or shadow runs) or did not answer
            (:class:`~rollbackkit.errors.UnknownAnswer` when it answered in an unknown shape).
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    extra = promote_body(from_shadow, canary)
    registry = Repository(repo)
    require_known(registry, name, env)
    url = server_for(registry, name, env, server)
    if url is None:
        what = "shadow" if from_shadow else "canary"
        raise InvalidInput(
            f"{no_server(registry.paths, name, env).removesuffix('.')}, so there is no {what} to promote.",
            f"Start one with rollbackkit serve {name} --env {env}, or use --server URL.",
        )
    body = {"reason": reason, **extra, "actor": actor(registry.root)}
    return synced(registry, _through_server(registry, url, "promote", body))


def _through_server(registry: Repository, url: str, operation: str, body: dict[str, Any]) -> AssignmentResult:
    """Ask the server at ``url`` to ``operation`` (deploy, rollback, promote); its answer typed,
    with the version the assignment took traffic from."""
    answer = {"via": url, **admin_call(registry.paths, url, operation, body)}
    result = from_server(AssignmentResult.from_dict, answer, url, operation, done=True)
    told = with_previous(registry, result)
    if told is result and not tagged(registry, result.assignment.tag):  # a server on another host made it
        refresh(registry, result.assignment.name)  # its tag is on origin (when the repo has one): fetch it
        told = with_previous(registry, result)
    return told if told is not result else from_answer(result)


def synced(registry: Repository, result: AssignmentResult) -> AssignmentResult:
    """``result`` with the MLflow alias its environment syncs moved to the version now live
    (:func:`rollbackkit.registry.mlflow_sync.move_alias`; unchanged when none is synced). A
    failed move never undoes the traffic change: it is journaled and returned in ``alias_sync``
    (never raised: the change is committed). A server that answered ``mlflow_alias`` has
    moved it already: its answer is taken, and nothing is moved twice."""
    from rollbackkit.registry.mlflow_sync import AliasMove, try_move_alias  # MLflow's client: on a change only

    done = result.assignment
    if result.source is not None and "mlflow_alias" in result.source:  # the server synced it
        answer = result.source["mlflow_alias"]
        moved = AliasMove.from_dict(answer) if isinstance(answer, dict) else None
    else:
        moved = try_move_alias(registry, done.name, done.env, done.version, action=done.action)
    return replace(result, alias_sync=moved) if moved is not None else result


def with_previous(registry: Repository, result: AssignmentResult) -> AssignmentResult:
    """``result`` with ``previous`` set: the version its assignment took traffic from, read
    from the history replayed up to that assignment (the canary a rollback cancelled, else
    the live version before), and for a rollback the canary or shadow it cancelled. Unchanged
    when the history does not hold its tag (a server of another checkout)."""
    done = result.assignment
    states = Deployments(registry).states(done.name, done.env)
    at = next((i for i, (a, _) in enumerate(states) if a.tag == done.tag), None)
    if at is None:
        return result
    before = states[at - 1][1] if at > 0 else None
    if before is None:
        return result
    rollback = done.action in ("rollback", "auto-rollback")
    previous = before.canary.version if rollback and before.canary is not None else before.version
    if not rollback:
        return replace(result, previous=previous)
    return replace(result, previous=previous, cancelled=cancelled_by(before, done.version))


def cancelled_by(before: Serving, target: str) -> Cancelled | None:
    """The canary or shadow running in ``before`` that a rollback to ``target`` stops, or None."""
    running = before.canary or before.shadow
    if running is None:
        return None
    role: Literal["canary", "shadow"] = "canary" if before.canary is not None else "shadow"
    return Cancelled(role=role, version=running.version, kept=target == before.version)


def server_for(registry: Repository, name: str, env: str, server: str | None) -> str | None:
    """Validate ``name`` and ``env``; the server to drive: ``server``, a running one, or None."""
    validate_name(name)
    validate_name(env, "environment name")
    return server or find_server(registry.paths, name, env)
