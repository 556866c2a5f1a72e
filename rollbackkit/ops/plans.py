"""Plans: what an operation would do, computed without doing it (``rollback --dry-run``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rollbackkit.ops.assignment_results import Preflight
from rollbackkit.ops.log_results import AffectedRows
from rollbackkit.ops.plan_results import PlannedRows, RollbackPlan
from rollbackkit.ops.predictions import log_call, log_server
from rollbackkit.ops.server_answers import from_server
from rollbackkit.ops.traffic import cancelled_by, server_for
from rollbackkit.registry.assignments import Deployments, require_known
from rollbackkit.registry.checks import preflight_bundle
from rollbackkit.registry.contents import load
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Assignment, Serving


def leaving_assignments(state: Serving, target: str) -> list[Assignment]:
    """The assignments a rollback to ``target`` takes traffic from: the canary, then the live
    version, each unless it is the target (a shadow answers nobody: it is never listed)."""
    found: dict[str, Assignment] = {}
    for assignment in (state.canary, state.live):
        if assignment is not None and assignment.version != target:
            found.setdefault(assignment.version, assignment)
    return list(found.values())


def planned_rows(rows: AffectedRows, quarantines: bool) -> PlannedRows:
    """What a rollback does to the rows one leaving version wrote (the one rule for "rows a
    backfill would rewrite"): with ``quarantines`` (the server that shifts writes the log) its
    rows not yet quarantined nor backfilled are quarantined; a backfill then re-scores every
    quarantined row."""
    fresh = max(rows.rows - rows.quarantined - rows.backfilled, 0) if quarantines else 0
    return PlannedRows(
        version=rows.version,
        logged=True,
        rows=rows.rows,
        quarantine=fresh,
        backfill=rows.quarantined + fresh,
        already_backfilled=rows.backfilled,
    )


def rollback_plan(
    repo: str | Path,
    name: str,
    env: str,
    *,
    to: str | None = None,
    features: pd.DataFrame | None = None,
    server: str | None = None,
) -> RollbackPlan:
    """What :func:`rollback` would do, changing nothing: what would shift (from -> to, by the
    one rule), the target's preflight (skipped, like the rollback's, when it would only cancel a
    canary or shadow: the live version it keeps already serves live traffic), and the rows each
    version losing traffic would have quarantined and then backfilled (counts from the prediction log).

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        to: The version to roll back to (default: the rule's target).
        features: Live features to preflight the target against (None: schema checks only).
        server: The URL of the server that would shift traffic (default: the running one).

    Returns:
        :class:`~rollbackkit.ops.plan_results.RollbackPlan`.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        RollbackRefused: Nothing serves, no version is eligible, or the rollback would change
            nothing.
        VersionNotFound: ``to`` is not registered, or ``name`` is not registered or was never
            in ``env`` (the hint lists the known ones).
        ServerError: The server does not answer about its prediction log.
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    url = server_for(registry, name, env, server)
    deployments = Deployments(registry)
    target = deployments.rollback_target(name, env, to)
    state = deployments.state(name, env)
    leaving = [a.version for a in leaving_assignments(state, target.version)]
    consumer = f"{name}@{state.version}" if state.version else None
    cancelled = cancelled_by(state, target.version)
    if cancelled is not None and cancelled.kept:  # like the rollback: the live version already serves live traffic
        report: dict[str, object] = {"verdict": "skipped"}
    else:
        checked = preflight_bundle(registry, load(registry, target), features, consumer=consumer, rollback=True)
        report = checked.to_dict()
    log_url = log_server(registry, name, env, url)
    logged = log_url is not None or registry.paths.prediction_log.exists()
    quarantines = url is not None and log_url == url  # the server that shifts writes the log
    planned = []
    for version in leaving:
        if not logged:
            planned.append(PlannedRows(version=version, logged=False))
            continue
        found = log_call(registry, log_url, "affected", name, env, version)
        planned.append(planned_rows(from_server(AffectedRows.from_dict, found, log_url, "affected"), quarantines))
    return RollbackPlan(
        name=name,
        env=env,
        target=target.version,
        previous=state.canary.version if state.canary is not None else state.version,
        leaving=leaving,
        via=url or "workspace",
        preflight=Preflight.from_dict(report),
        rows=planned,
        cancelled=cancelled,
    )
