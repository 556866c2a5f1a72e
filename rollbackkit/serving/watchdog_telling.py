"""What the watchdog tells: the journal's records about a deployment, and the listeners'
notices (``gate-failed``, ``paused``, ``resumed``, ``gate-breach``), each sent once per episode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rollbackkit.analysis.gates import GateReport
from rollbackkit.serving.routing_state import Slot
from rollbackkit.serving.traffic_event import TrafficEvent
from rollbackkit.serving.watched import Watched

__all__ = ["Teller", "failed_names"]


class Teller:
    """Journals and notifies for the watchdog of ``environment``, remembering what it already told."""

    def __init__(self, environment: Watched) -> None:
        self.environment = environment
        self._alerted: set[str] = set()  # deployments whose breach without a target was told
        self._failing: set[str] = set()  # deployments whose gate-failed was told (until they pass again)
        self._pauses: set[str] = set()  # deployments whose current pause was told

    def tell(
        self, slot: Slot, decision: str, gates: str, paused: str | None, *, rolled_back: bool = False,
        failed: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        """Tell the listeners once when a deployment's decision becomes rollback and traffic stays
        (``gate-failed``; again only after a pass), once per pause of its rollout (``paused``;
        each target sends it after its ``pause_grace``), and when a told pause ends (``resumed``).
        ``gates`` and ``paused`` leave the server (notifications): public words, no slice's value."""
        env, tag, version = self.environment, slot.deployment, slot.bundle.version
        if decision == "rollback" and tag not in self._failing:
            self._failing.add(tag)
            if not rolled_back:
                failed_at = TrafficEvent("gate-failed", env.name, env.env, version, tag=tag, reason=gates, gates=gates)
                env.notify(replace(failed_at, failed_gates=failed))
        elif decision in ("pass", "warn"):
            self._failing.discard(tag)
        if paused is None or decision == "rollback":
            if tag in self._pauses and decision != "rollback":
                env.notify(TrafficEvent("resumed", env.name, env.env, version, tag=tag))
            self._pauses.discard(tag)
        elif tag not in self._pauses:
            self._pauses.add(tag)
            env.notify(TrafficEvent("paused", env.name, env.env, version, tag=tag, reason=paused))

    def journal(self, event: str, slot: Slot, **extra: Any) -> None:
        """Journal ``event`` about the deployment in ``slot`` (name, env, version, deployment, ``extra``)."""
        env = self.environment
        said = {"name": env.name, "env": env.env, "version": slot.bundle.version, "deployment": slot.deployment}
        env.journal.append(event, **said, **extra)

    def breach_without_target(self, slot: Slot, report: GateReport, why: str) -> None:
        """Journal and announce, once per deployment, a failed gate that moved no traffic."""
        env = self.environment
        if slot.deployment in self._alerted:
            return
        self._alerted.add(slot.deployment)
        name, version, gates = env.name, slot.bundle.version, report.summary(public=True)
        failed = failed_names(report)
        said = {"gates": report.summary(), "failed_gates": list(failed)}
        self.journal("gate-breach", slot, **said, rolled_back=False, reason=why)
        breach = TrafficEvent("gate-breach", name, env.env, version, tag=slot.deployment, reason=why, gates=gates)
        env.notify(replace(breach, failed_gates=failed))


def failed_names(report: GateReport) -> tuple[str, ...]:
    """The names of ``report``'s failed rollback gates (a warn gate's failure moves no traffic), sorted."""
    return tuple(sorted({g.name for g in report.failed if g.severity == "rollback"}))
