"""Serve an environment with the automatic rollback runbook wired in (``rollbackkit serve``).

The server (:mod:`rollbackkit.serving.server`) knows nothing of runbooks: it calls back
after each automatic rollback, and the callback given here runs ``rollback.ipynb``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from rollbackkit.errors import MlflowError
from rollbackkit.ops.assignment_results import AssignmentResult, RollbackWithRunbook
from rollbackkit.ops.runbooks import Progress, RunbookResult, run
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.mlflow_sync import AliasMove, move_alias, try_move_alias
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.server import ServeOptions
from rollbackkit.serving.server import serve as serve_http

if TYPE_CHECKING:
    import pandas as pd


def rollback_runbook(
    repo: str | Path, name: str, env: str, result: dict[str, Any], *, progress: Progress | None = None
) -> RunbookResult:
    """Run ``rollback.ipynb`` after a rollback whose traffic has already moved: the automatic
    path (in the server's hook thread, through :func:`after_auto_rollback`) and
    ``rollbackkit rollback --runbook`` both call this.

    The runbook finds the target serving and goes on to the post-rollback gate check and the
    backfill of the bad version's rows.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        result: The rollback's result as JSON (its ``assignment`` names the target, reason,
            incident and tag).
        progress: Called before each cell with ``(i, n, first line)``.

    Returns:
        The executed runbook: its saved notebook (the record), status and verdict.

    Raises:
        RunbookError: The runbook could not start.
        InvalidInput: A parameter does not fit the template.
    """
    registry = Repository(repo)
    assignment = result["assignment"]
    automatic = assignment.get("action") == "auto-rollback"
    parameters = {
        "repo": str(registry.root),
        "name": name,
        "env": env,
        "to_version": assignment["version"],
        "reason": assignment["reason"] or ("automatic rollback" if automatic else "rollback"),
        "incident": assignment["incident"] or (f"auto-{assignment['tag']}" if automatic else assignment["tag"]),
    }
    return run("rollback", parameters, repo=registry.root, progress=progress)


def rollback_with_runbook(
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
    on_rolled_back: Callable[[AssignmentResult], None] | None = None,
    progress: Progress | None = None,
) -> RollbackWithRunbook:
    """Roll back (:func:`rollbackkit.ops.traffic.rollback`), then run the rollback runbook
    (:func:`rollback_runbook`): ``rollbackkit rollback --runbook``.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        reason: Why, recorded with the assignment (required).
        to: The version to roll back to (default: the rule's target).
        incident: An incident id, recorded with the assignment and the runbook's record.
        features: Live features to preflight the target against.
        force: Roll back even when preflight says incompatible.
        server: The URL of the server to drive (default: the one running for ``env``).
        on_rolled_back: Called with the rollback's result once traffic has moved, before
            the runbook starts (the CLI prints it then).
        progress: Called before each of the runbook's cells (see :data:`Progress`).

    Returns:
        :class:`~rollbackkit.ops.assignment_results.RollbackWithRunbook`: the rollback and the runbook;
        its ``ok`` is False when the runbook failed (the rollback itself stands).

    Raises:
        RollbackkitError: What :func:`~rollbackkit.ops.traffic.rollback` raises (nothing
            has changed then), or :class:`~rollbackkit.errors.RunbookError` when the runbook
            could not start (the rollback stands).
    """
    from rollbackkit.ops.traffic import rollback

    result = rollback(
        repo, name, env, reason=reason, to=to, incident=incident, features=features, force=force, server=server
    )
    if on_rolled_back is not None:
        on_rolled_back(result)
    return RollbackWithRunbook(result, rollback_runbook(repo, name, env, result.to_dict(), progress=progress))


def after_auto_rollback(
    repo: str | Path,
    name: str,
    env: str,
    result: dict[str, Any],
    on_runbook: Callable[[RunbookResult], None] | None = None,
    runbook: bool = True,
) -> None:
    """The server's hook after an automatic rollback: move the MLflow alias ``env`` syncs
    (if any), then :func:`rollback_runbook` (with ``runbook``) and ``on_runbook`` with its
    result. A runbook that cannot run is recorded in the journal; it never affects serving.

    Raises:
        MlflowError: The alias was not moved (after the runbook ran): the server counts it
            as a background failure (``background`` in ``/status``); the move is journaled
            and a warning line names the command to retry.
    """
    moved = _move_alias(repo, name, env, result)
    if runbook:
        try:
            done = rollback_runbook(repo, name, env, result)
        except Exception as exc:  # recorded, never raised into serving
            Journal(Repository(repo).paths.journal).append("runbook-error", name=name, env=env, error=repr(exc))
        else:
            if on_runbook is not None:
                on_runbook(done)
    if moved is not None and not moved.ok:
        raise MlflowError(f"MLflow alias {moved.alias} was not moved: {moved.error}", f"Retry: {moved.retry}.")


def _move_alias(repo: str | Path, name: str, env: str, result: dict[str, Any]) -> AliasMove | None:
    """Move the synced MLflow alias after an automatic rollback; print a warning when it fails."""
    assignment = result.get("assignment") or {}
    try:
        moved = move_alias(Repository(repo), name, env, assignment["version"], action=assignment.get("action", ""))
    except Exception as exc:  # a broken mlflow.yaml or journal: report, never raise before the runbook
        print(f"warning: the MLflow alias of {env} was not checked: {exc}", file=sys.stderr)
        return None
    if moved is not None and not moved.ok:
        print(moved.line(), file=sys.stderr)
    return moved


def serve(
    repo: str | Path,
    name: str,
    env: str,
    *,
    runbook: bool = True,
    on_runbook: Callable[[RunbookResult], None] | None = None,
    **options: Unpack[ServeOptions],
) -> None:
    """Serve NAME in ENV until SIGINT/SIGTERM with :func:`rollbackkit.serving.server.serve`'s ``options``.

    With ``runbook`` (the default) an automatic rollback starts the rollback runbook
    (:func:`rollback_runbook`) once traffic has moved; traffic never waits for it.
    ``on_runbook`` is called with each such runbook's result (its record and verdict).
    """
    on_rollback = partial(after_auto_rollback, repo, name, env, on_runbook=on_runbook, runbook=runbook)
    on_assignment = partial(after_assignment, repo, name, env)
    serve_http(repo, name, env, on_rollback=on_rollback, on_assignment=on_assignment, **options)


def after_assignment(repo: str | Path, name: str, env: str, answer: dict[str, Any]) -> dict[str, Any] | None:
    """The server's hook after a deploy, promote or manual rollback (admin API or CLI): move the
    MLflow alias ``env`` syncs (:func:`~rollbackkit.registry.mlflow_sync.try_move_alias`, never
    raises); its JSON joins the server's answer (None: nothing synced here, or a canary)."""
    assignment = answer.get("assignment") or {}
    moved = try_move_alias(Repository(repo), name, env, assignment["version"], action=assignment.get("action", ""))
    if moved is not None and not moved.ok:
        print(moved.line(), file=sys.stderr)
    return moved.to_dict() if moved is not None else None
