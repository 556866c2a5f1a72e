"""Whether an operation reached every replica of an environment on a shared store.

A deploy, rollback or promote sent to one replica answers ``replicas`` (the server's
``Convergence.to_dict()``): the routing generation it published, whether every live replica
serves it, how long that took, and why the ones behind are. :class:`Convergence` reads it,
backend-free, for :class:`~rollbackkit.ops.assignment_results.AssignmentResult` and the CLI. On several
hosts the change's git tag must reach the other clones too: :class:`GitRemote` reads the
answer's ``git_remote`` (what was pushed to the shared remote, or why not). When another
replica published after the operation (``superseded_by``), the fleet serves that change:
:meth:`Convergence.holds` says whether the operation's version still serves in its role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollbackkit.serving.desired import ROLES, Desired


@dataclass(frozen=True)
class ReplicaServing:
    """One live replica after the operation: what it serves (``serving``, by role) at which generation."""

    replica: str
    generation: int | None
    serving: dict[str, Any]
    error: str | None = None

    @property
    def state(self) -> Desired:
        """What it serves, typed (the placements ``serving`` names; its other keys ignored)."""
        placed = {role: p for role, p in self.serving.items() if isinstance(p, dict) and p.get("version")}
        return Desired.from_json(placed)

    @property
    def live(self) -> str | None:
        """The version it serves live (None: nothing, or not said)."""
        return self.serves("live")

    def serves(self, role: str) -> str | None:
        """The version it serves as ``role`` (``live``, ``canary``, ``shadow``; None: nothing)."""
        placed = getattr(self.state, role) if role in ROLES else None
        return placed.version if placed is not None else None

    def describe(self) -> str:
        """One line: ``v1.1.0 live, v1.2.0 canary 25%``."""
        return self.state.describe()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplicaServing:
        """From one entry of ``replicas.replicas`` in an operation's answer."""
        serving = data.get("serving")
        generation = data.get("generation")
        error = data.get("error")
        return cls(
            replica=str(data.get("replica", "?")),
            generation=generation if isinstance(generation, int) else None,
            serving=serving if isinstance(serving, dict) else {},
            error=error if isinstance(error, str) else None,
        )


@dataclass(frozen=True)
class Superseded:
    """A publication after the operation's: another change (``action`` by replica ``by``) the fleet serves."""

    generation: int
    action: str
    by: str

    @classmethod
    def of(cls, data: Any) -> Superseded | None:
        """From ``replicas.superseded_by`` (None: absent, nothing published since)."""
        if not isinstance(data, dict) or not isinstance(data.get("generation"), int):
            return None
        return cls(data["generation"], str(data.get("action") or "?"), str(data.get("by") or "?"))

    def to_dict(self) -> dict[str, Any]:
        """``{generation, action, by}``."""
        return {"generation": self.generation, "action": self.action, "by": self.by}


ROLE_OF = {"canary": "canary", "shadow": "shadow"}
"""The role an assignment's action puts its version in (any other action: ``live``)."""


@dataclass(frozen=True)
class Convergence:
    """An operation's reach over the replicas.

    Attributes:
        generation: The routing generation the operation published.
        converged: Every live replica serves it.
        waited_ms: How long the operation waited for them.
        replicas: The live replicas when the wait ended.
        lagging: The replicas that do not serve it, with why (``cannot load v1.0.0: ...``).
        superseded_by: A later publication (another replica's change) the replicas serve instead.
    """

    generation: int
    converged: bool
    waited_ms: float
    replicas: list[ReplicaServing] = field(default_factory=list)
    lagging: dict[str, str] = field(default_factory=dict)
    superseded_by: Superseded | None = None

    @classmethod
    def of(cls, data: Any) -> Convergence | None:
        """From an answer's ``replicas`` (None: absent, i.e. no shared store)."""
        if not isinstance(data, dict) or not isinstance(data.get("generation"), int):
            return None
        listed = data.get("replicas")
        lagging = data.get("lagging")
        return cls(
            generation=data["generation"],
            converged=bool(data.get("converged")),
            waited_ms=float(data.get("waited_ms") or 0.0),
            replicas=[ReplicaServing.from_dict(r) for r in listed if isinstance(r, dict)]
            if isinstance(listed, list)
            else [],
            lagging={str(k): str(v) for k, v in lagging.items()} if isinstance(lagging, dict) else {},
            superseded_by=Superseded.of(data.get("superseded_by")),
        )

    @property
    def reached(self) -> int:
        """How many live replicas serve the generation."""
        return sum(1 for r in self.replicas if r.replica not in self.lagging)

    @property
    def total(self) -> int:
        """How many replicas were waited for (the live ones, and any lagging one not listed)."""
        return len({r.replica for r in self.replicas} | set(self.lagging))

    def serves(self, replica: str) -> str | None:
        """The live version ``replica`` serves as last heard (None: not listed)."""
        return next((r.live for r in self.replicas if r.replica == replica), None)

    def holds(self, action: str, version: str) -> bool:
        """Whether the replicas serve ``version`` where ``action`` put it (always, when not superseded)."""
        if self.superseded_by is None:
            return True
        role = ROLE_OF.get(action, "live")
        return bool(self.replicas) and all(r.serves(role) == version for r in self.replicas)

    def serving_now(self) -> str:
        """What the replicas at the newest generation serve (``v1.2.0 live``), for a superseded operation."""
        newest = max((r.generation or 0 for r in self.replicas), default=0)
        states = {r.describe() for r in self.replicas if (r.generation or 0) == newest}
        return states.pop() if len(states) == 1 else "another state"

    def to_dict(self) -> dict[str, Any]:
        """The answer's ``replicas`` shape."""
        return {
            "generation": self.generation,
            "converged": self.converged,
            "waited_ms": self.waited_ms,
            "replicas": [
                {"replica": r.replica, "generation": r.generation, "serving": r.serving, "error": r.error}
                for r in self.replicas
            ],
            "lagging": dict(self.lagging),
            "superseded_by": None if self.superseded_by is None else self.superseded_by.to_dict(),
        }


@dataclass(frozen=True)
class GitRemote:
    """The assignment tags an operation pushed to the project's shared git remote, or why not.

    Attributes:
        remote: The remote (``origin``).
        pushed: The tags pushed.
        error: Why the tags were not fetched or pushed (names them and the command to run), or None.
    """

    remote: str
    pushed: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, data: Any) -> GitRemote | None:
        """From an answer's ``git_remote`` (None: absent, i.e. no shared remote)."""
        if not isinstance(data, dict) or not isinstance(data.get("remote"), str):
            return None
        pushed, error = data.get("pushed"), data.get("error")
        return cls(
            remote=data["remote"],
            pushed=[str(t) for t in pushed] if isinstance(pushed, list) else [],
            error=error if isinstance(error, str) and error else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The answer's ``git_remote`` shape."""
        return {"remote": self.remote, "pushed": list(self.pushed), "error": self.error}
