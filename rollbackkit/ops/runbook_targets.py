"""The rollback rule as a runbook needs it: the version to roll back to, and the one that loses traffic.

The rule itself lives in :meth:`rollbackkit.registry.assignments.Deployments.rollback_target`
only: :func:`rollback_target` gives the version a runbook rolls back to by that rule, and
:func:`rolled_back_from` the version such a rollback takes traffic from.
"""

from __future__ import annotations

from pathlib import Path

from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository


def rollback_target(
    repo: str | Path, name: str, env: str, to: str | None = None, *, flag: str = "-p to_version=VERSION"
) -> str:
    """The runbook's rollback target, by the one rule (:meth:`Deployments.rollback_target`).

    When the latest assignment already is a rollback and ``to`` is empty or names the
    version it restored (an automatic rollback hands its runbook that version), the version
    now serving is returned: the rollback already happened, and the runbook goes on to
    check and repair, never rolling the restored version back too (pass ``to`` for a
    further rollback). Hints name the runbook parameter.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        to: The runbook's ``to_version`` parameter (None or empty: the rule's target).
        flag: How a hint names a target (the runbook's ``-p to_version=VERSION``; the Python API's
            ``to_version='vX.Y.Z'``).

    Returns:
        The version (``vX.Y.Z``) to roll back to, or the one now serving after a rollback.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        RollbackRefused: Nothing serves, or no version is eligible.
        VersionNotFound: ``to`` is not registered.
    """
    deployments = Deployments(Repository(repo))
    state = deployments.state(name, env)
    done = state.canary is None and bool(state.last_rolled_back_from)
    if done and state.version is not None and to in (None, "", state.version):
        return state.version
    return deployments.rollback_target(name, env, to or None, flag=flag).version


def rolled_back_from(repo: str | Path, name: str, env: str, target: str) -> str | None:
    """The bad version a rollback to ``target`` takes traffic from (the canary, else the live
    version), or, when ``target`` already serves after a rollback, the version it replaced.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        target: The version rolled back to (from :func:`rollback_target`).

    Returns:
        That version, or None when nothing served before ``target``.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
    """
    state = Deployments(Repository(repo)).state(name, env)
    if state.canary is not None:
        return state.canary.version
    if state.version is not None and state.version != target:
        return state.version
    return state.last_rolled_back_from[0] if state.last_rolled_back_from else None
