"""``rollbackkit history``: every assignment of a bundle in an environment, with the state after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.registry.assignments import Deployments, require_known
from rollbackkit.registry.repository import Repository

if TYPE_CHECKING:
    from rollbackkit.registry.serving_state import Assignment, Serving

__all__ = ["AssignmentHistory", "history", "serving_state"]


@dataclass(frozen=True)
class AssignmentHistory:
    """Every assignment of ``name`` in ``env``, oldest first, each with the serving state right after it.

    Attributes:
        name: The bundle.
        env: The environment.
        states: ``(assignment, state after it)`` pairs; the last state is what serves now.
    """

    name: str
    env: str
    states: Sequence[tuple[Assignment, Serving]] = ()

    @property
    def assignments(self) -> list[Assignment]:
        """The assignments alone, oldest first."""
        return [a for a, _ in self.states]

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``history --json`` prints: ``name``, ``env``, ``assignments``."""
        return {"name": self.name, "env": self.env, "assignments": [a.to_dict() for a in self.assignments]}


def history(repo: str | Path, name: str, env: str) -> AssignmentHistory:
    """Every assignment of ``name`` in ``env``: which version served when, and why.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.

    Returns:
        :class:`AssignmentHistory`, oldest first.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` breaks the naming rules.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    return AssignmentHistory(name, env, tuple(Deployments(registry).states(name, env)))


def serving_state(repo: str | Path, name: str, env: str) -> Serving:
    """What serves ``name`` in ``env`` now (live, and a running canary or shadow), from the history.

    An environment never deployed to is an empty state (``serve`` starts one).
    """
    return Deployments(Repository(repo)).state(name, env)
