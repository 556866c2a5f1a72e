"""Where a candidate's rollout stands after each evaluation: its step, bake time and state.

The watchdog judges the candidate's gates; this turns each report into a :class:`Rollout`
(baking, holding, advancing or paused, and why), keeping each deployment's bake clock and the
newest row it judged, so rows already judged never bake twice.
"""

from __future__ import annotations

import time

import pandas as pd

from rollbackkit.analysis.gates import GateReport
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.rollout import BakeClock, Role, Rollout, RolloutState, Verdict, last_time
from rollbackkit.serving.routing_state import RoutingState, Slot
from rollbackkit.serving.watched import Watched


class RolloutTracker:
    """The bake clocks of one environment's candidates and the rollout each evaluation leaves.

    Args:
        environment: The served environment (its bake, deploy times and prediction log).
    """

    def __init__(self, environment: Watched) -> None:
        self.environment = environment
        self._bake = BakeClock()
        self._newest: dict[str, str | None] = {}  # deployment -> its window's newest row time when last judged

    def forget(self) -> None:
        """Drop every bake and judged row (a replica that lost its lead starts afresh when it leads again)."""
        self._newest.clear()
        self._bake = BakeClock()

    def keep_only(self, deployment: str) -> None:
        """Forget the bakes and judged rows of every deployment but ``deployment``."""
        self._bake.keep_only({deployment})
        for gone in set(self._newest) - {deployment}:
            del self._newest[gone]

    def pause(self, deployment: str) -> None:
        """Stop ``deployment``'s bake clock (an evaluation failed); the time baked is kept."""
        self._bake.observe(deployment, "pause", self.environment.deployed_at.get(deployment), time.monotonic())

    def baking(self, slot: Slot) -> bool:
        """Whether a full deploy's rows still wait in staging for its bake."""
        log = self.environment.log
        return log is not None and log.stage_of(slot.deployment) == "staging"

    def observe(
        self,
        state: RoutingState,
        role: Role,
        slot: Slot,
        assignment: Assignment | None,
        report: GateReport,
        window: pd.DataFrame,
    ) -> Rollout | None:
        """Where the candidate stands: step, bake and state (None: a live version with nothing to bake).

        The bake counts from the assignment's start only when it began in this process
        (``deployed_at``); after a restart it starts at the first passing evaluation, so the
        server's downtime never counts as bake time.
        """
        env = self.environment
        steps: tuple[int, ...] = assignment.steps if assignment is not None else ()
        percent: int | None = None
        if role == "live":
            if not self.baking(slot):
                return None
            bake_s: float | None = env.bake_seconds
        elif role == "canary":
            percent = state.percent
            bake_s = _bake_of(assignment, env.bake_seconds) if steps else None
        else:
            percent, steps, bake_s = state.shadow_percent, (), None
        verdict = _verdict(report)
        known, newest, seen = slot.deployment in self._newest, last_time(window), self._newest.get(slot.deployment)
        self._newest[slot.deployment] = newest
        if verdict == "pass" and known and newest == seen:  # the same rows pass again: no time baked
            verdict = "hold"
        passing = verdict in ("pass", "hold")
        baked = self._bake.observe(slot.deployment, verdict, env.deployed_at.get(slot.deployment), time.monotonic())
        if not passing:
            status: RolloutState = "paused"
        elif bake_s is None:
            status = "holding"
        else:
            status = "advancing" if baked >= bake_s else "baking"
        began = assignment.time if assignment is not None else None
        why = None
        if not passing:
            why = why_paused(report, window, began)
        return Rollout(
            version=slot.bundle.version,
            deployment=slot.deployment,
            role=role,
            percent=percent,
            steps=steps,
            step=steps.index(percent) + 1 if steps and percent in steps else None,
            bake_s=bake_s,
            baked_s=baked,
            state=status,
            paused=why,
            since=began,
        )


def pause_reason(rollout: Rollout | None) -> str | None:
    """Why the rollout waits (None: it does not)."""
    return rollout.paused if rollout is not None and rollout.state == "paused" else None


def why_paused(report: GateReport, window: pd.DataFrame, began: str | None, *, public: bool = False) -> str:
    """Why a rollout that did not pass waits (``public``: the words that leave the server, no slice's value)."""
    return f"no traffic since {began or 'it began'}" if window.empty else report.summary(public=public)


def _bake_of(assignment: Assignment | None, default: float) -> float:
    """A stepped canary's bake per step: its assignment's ``bake_s``, else the server's bake."""
    bake = assignment.bake_s if assignment is not None else None
    return float(bake) if bake is not None else default


def _verdict(report: GateReport) -> Verdict:
    """What an evaluation does to the bake: a pass runs it (never on an empty window or with no
    gate that passed), an inconclusive one pauses it, a warning or a failure (also one within its
    ``failure_limit``) resets it."""
    if any("failing" in g.evidence for g in report.gates) or report.decision in ("warn", "rollback"):
        return "reset"
    if report.decision == "pass" and report.n > 0 and any(g.status == "pass" for g in report.gates):
        return "pass"
    return "pause"
