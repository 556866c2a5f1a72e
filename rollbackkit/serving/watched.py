"""What the watchdog needs of the environment it watches, and its count of evaluations that raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Router
from rollbackkit.serving.routing_state import Slot
from rollbackkit.serving.status import TrafficEvent

_DISTINCT_ERRORS = 100  # distinct errors journalled; later ones are only counted
EVALUATION_FAILED = "evaluation failed"
"""How the gate report's ``paused`` begins when the watchdog's last evaluation raised (its decision is older)."""


class Led(Protocol):
    """The leader's last gate report as followers read it (``LeaderReport``)."""

    @property
    def leader(self) -> str | None:
        """Who leads (None: nobody holds the lead)."""

    @property
    def report(self) -> dict[str, Any] | None:
        """Its last gate report."""


class Leader(Protocol):
    """Which replica's watchdog evaluates (``serving.postgres.leader.Leadership``): only the leader."""

    def leading(self) -> bool:
        """Whether this replica leads (takes the lead when it is free; False when the store is away)."""

    def last(self) -> Led | None:
        """Who leads and its last report (None: the store is unreachable)."""

    def record(self, report: dict[str, Any] | None) -> None:
        """Store the leader's last report for the followers."""

    def status(self) -> dict[str, Any]:
        """``watchdog`` in ``/status``: leader, leading, since, error."""


class Watched(Protocol):
    """What the watchdog reads and calls on the environment it watches."""

    name: str
    env: str
    router: Router
    deployments: Deployments
    journal: Journal
    log: PredictionStore | None
    bake_seconds: float
    last_report: dict[str, Any] | None
    on_auto_rollback: Callable[[dict[str, Any]], None] | None
    deployed_at: dict[str, float]

    def window(self, slot: Slot, *, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """The deployment's recent requests as a gate window (``since``, ``until``: ISO times)."""

    def step_started(self, deployment: str) -> float:
        """When the deployment's assignment began (monotonic seconds)."""

    def notify(self, event: TrafficEvent) -> None:
        """Tell the environment's listener what happened (never raises)."""

    def background_failed(self, error: str) -> None:
        """Count an after-rollback hook that failed (``background`` in ``/status``)."""

    def rollback(
        self,
        *,
        reason: str,
        actor: str,
        automatic: bool,
        gates: str,
        failed_gates: tuple[str, ...],
        unless_changed_since: int | None,
    ) -> dict[str, Any]:
        """Roll back as the watchdog (see :meth:`ServingEnvironment.rollback`)."""

    def advance(self, *, unless_changed_since: int, reason: str, actor: str = "watchdog") -> dict[str, Any]:
        """Move a stepped canary to its next step, or promote it at the last."""


class EvaluationErrors:
    """Evaluations (and gates) that raised since the server started: counted for ``/status``,
    each distinct error journalled once (``watchdog-error``), never once per tick."""

    def __init__(self, environment: Watched) -> None:
        self.environment = environment
        self.count = 0
        self.last: str | None = None
        self._journalled: set[str] = set()

    def failed(self, error: str) -> None:
        """Count one error (kept on one line, at most 500 characters); journal it if it is new."""
        env = self.environment
        said = " ".join(error.split())[:500]
        self.count += 1
        self.last = said
        if said not in self._journalled and len(self._journalled) < _DISTINCT_ERRORS:
            self._journalled.add(said)
            env.journal.append("watchdog-error", name=env.name, env=env.env, error=said)

    def counted(self) -> dict[str, Any]:
        """``watchdog_errors`` and ``last_watchdog_error``, as a gate report carries them."""
        return {"watchdog_errors": self.count, "last_watchdog_error": self.last}
