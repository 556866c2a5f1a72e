"""The watchdog: evaluate the gates of what serves, promote a bake, roll back on a breach.

It acts on one :class:`~rollbackkit.serving.environment.ServingEnvironment` through the same
operations a person uses (:meth:`rollback`), as actor ``watchdog``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from rollbackkit.analysis.gates import evaluate
from rollbackkit.errors import RollbackRefused, Superseded
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Router, Slot
from rollbackkit.serving.status import TrafficEvent


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

    def window(self, slot: Slot) -> pd.DataFrame:
        """The deployment's recent requests as a gate window."""

    def notify(self, event: TrafficEvent) -> None:
        """Tell the environment's listener what happened (never raises)."""

    def background_failed(self, error: str) -> None:
        """Count an after-rollback hook that failed (``background`` in ``/status``)."""

    def rollback(
        self, *, reason: str, actor: str, automatic: bool, gates: str, unless_changed_since: int | None
    ) -> dict[str, Any]:
        """Roll back as the watchdog (see :meth:`ServingEnvironment.rollback`)."""


class Watchdog:
    """Checks one environment's gates, on demand or every few seconds in a daemon thread.

    Args:
        environment: The served environment it watches and rolls back.
    """

    def __init__(self, environment: Watched) -> None:
        self.environment = environment
        self._alerted: set[str] = set()
        self._hooks: list[threading.Thread] = []
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    def check(self) -> dict[str, Any] | None:
        """Evaluate the gates of the version under evaluation; roll back on a failed gate.

        The version under evaluation is the canary if one runs, else the live version
        (also a first version, with nothing to fall back to: its bake must complete). A
        failed gate rolls back to the target :meth:`Deployments.rollback_target` names:
        never onto a version a person or a gate rolled back from. With no such target the
        breach is only recorded (``last_report["rollback"]`` and, once per deployment, a
        ``gate-breach`` journal entry with ``rolled_back: false``); traffic stays.
        """
        env = self.environment
        state = env.router.state
        slot = state.slot(state.canary) or state.slot(state.live)
        if slot is None:
            return None
        window = env.window(slot)
        if window.empty:
            return None
        report = evaluate(slot.bundle, window)
        env.last_report = {"version": slot.bundle.version, "slot": slot.name, **report.to_dict()}
        self._maybe_promote_baked(slot, state.canary is None, report.decision)
        if report.decision != "rollback" or env.router.state.generation != state.generation:
            return None
        try:
            env.deployments.rollback_target(env.name, env.env)
        except RollbackRefused as exc:
            env.last_report["rollback"] = f"none: {exc.message}"
            if slot.deployment not in self._alerted:
                self._alerted.add(slot.deployment)
                env.journal.append(
                    "gate-breach",
                    name=env.name,
                    env=env.env,
                    version=slot.bundle.version,
                    deployment=slot.deployment,
                    gates=report.summary(),
                    rolled_back=False,
                    reason=exc.message,
                )
                env.notify(
                    TrafficEvent(
                        kind="gate-breach",
                        name=env.name,
                        env=env.env,
                        version=slot.bundle.version,
                        tag=slot.deployment,
                        reason=exc.message,
                        gates=report.summary(),
                    )
                )
            return None
        breach = time.perf_counter()
        try:
            result = env.rollback(
                reason=f"gate failed: {report.summary()}",
                actor="watchdog",
                automatic=True,
                gates=report.summary(),
                unless_changed_since=state.generation,
            )
        except Superseded:  # an operator moved traffic after the evaluation: judge the new state next time
            return None
        result["breach_to_shift_ms"] = round((time.perf_counter() - breach) * 1000, 3)
        result["report"] = env.last_report
        env.journal.append(
            "gate-breach",
            name=env.name,
            env=env.env,
            version=slot.bundle.version,
            deployment=slot.deployment,
            gates=report.summary(),
            rolled_back=True,
            target=result["assignment"]["version"],
            breach_to_shift_ms=result["breach_to_shift_ms"],
        )
        if env.on_auto_rollback is not None:
            hook = threading.Thread(target=self._after_rollback, args=(result,), daemon=True)
            hook.start()
            self._hooks.append(hook)
        return result

    def _after_rollback(self, result: dict[str, Any]) -> None:
        """Run the environment's after-rollback hook; a failure is counted, never raised into serving."""
        env = self.environment
        try:
            if env.on_auto_rollback is not None:
                env.on_auto_rollback(result)
        except Exception as exc:  # a hook thread must not die silently: count it in /status
            said = f"{getattr(exc, 'message', '') or exc} {getattr(exc, 'hint', '')}"
            env.background_failed(f"{type(exc).__name__}: {said}")

    def _maybe_promote_baked(self, slot: Slot, full: bool, decision: str) -> None:
        """Promote a full deploy's staged rows once its gates have passed for the bake time."""
        env = self.environment
        if env.log is None or not full or decision != "pass" or env.log.stage_of(slot.deployment) != "staging":
            return
        deployed = env.deployed_at.setdefault(slot.deployment, time.monotonic())
        if time.monotonic() - deployed >= env.bake_seconds:
            rows = env.log.promote(slot.deployment)
            env.journal.append(
                "bake-complete",
                name=env.name,
                env=env.env,
                version=slot.bundle.version,
                deployment=slot.deployment,
                rows_promoted=rows,
            )

    def start(self, interval: float) -> None:
        """Check gates every ``interval`` seconds in a daemon thread."""
        env = self.environment

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check()
                except Exception as exc:  # the watchdog must outlive one bad evaluation
                    env.journal.append("watchdog-error", name=env.name, env=env.env, error=repr(exc))

        self._watchdog = threading.Thread(target=loop, name="rollbackkit-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, wait: float = 60.0) -> None:
        """Stop the watchdog and give running after-rollback hooks ``wait`` seconds to finish."""
        self._stop.set()
        deadline = time.monotonic() + wait
        for hook in self._hooks:
            hook.join(max(0.0, deadline - time.monotonic()))
