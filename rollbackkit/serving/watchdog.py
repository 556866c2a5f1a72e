"""The watchdog: evaluate the gates of what is rolling out, then promote, advance, pause or roll back.

It acts on one :class:`~rollbackkit.serving.environment.ServingEnvironment` through the same
operations a person uses (:meth:`rollback`, :meth:`advance`), as actor ``watchdog``. Each
evaluation decides one of four things:

- ``rollback`` (after each gate's ``failure_limit`` consecutive failures): roll back (a
  canary or a shadow is cancelled, live is untouched);
- ``pass``: the bake clock runs; once a stepped canary's step (or a full deploy) has passed
  for its bake, the next step starts (or the staged rows are promoted);
- ``inconclusive`` (no traffic, too few labels, a difference the data does not support):
  nothing moves and the bake clock pauses (the time baked is kept); ``warn``: nothing moves
  and the bake clock restarts. The report's ``paused`` says why. Never a promotion.

An evaluation that raises (or a gate whose evidence says ``error``) is counted in the gate
report (``watchdog_errors``, ``last_watchdog_error``), pauses the rollout, and is journalled
once per distinct error.

Replicas on a shared store (``leadership`` set) evaluate only while they lead: a follower's
check reads the leader's last report (its ``/status`` shows it) and moves nothing.

Where the candidate's rollout stands (its step, bake and state) is
:class:`~rollbackkit.serving.rollout_tracking.RolloutTracker`'s to say.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from rollbackkit.analysis.durations import format_duration
from rollbackkit.analysis.gates import GateReport, tolerate
from rollbackkit.errors import RollbackRefused, Superseded
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.gate_history import GateRecorder
from rollbackkit.serving.gatewindows import judge_candidate
from rollbackkit.serving.rollout import Role, Rollout, candidate
from rollbackkit.serving.rollout_tracking import RolloutTracker, pause_reason, why_paused
from rollbackkit.serving.routing_state import RoutingState, Slot
from rollbackkit.serving.watchdog_telling import Teller, failed_names
from rollbackkit.serving.watched import EVALUATION_FAILED, EvaluationErrors, Leader, Watched

ERRORS_BEFORE_PAUSE = 3  # evaluations that raise in a row before the pause is told (paused)


class Watchdog:
    """Checks one environment's gates, on demand or every few seconds in a daemon thread.

    Args:
        environment: The served environment it watches, advances and rolls back.
        clock: The wall clock label delays are measured against (tests may fix it).
    """

    def __init__(self, environment: Watched, clock: Callable[[], datetime] | None = None) -> None:
        self.environment = environment
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.teller = Teller(environment)
        """Journals and notifies (each notice once per episode)."""
        self._error_streak = 0  # evaluations that raised in a row (a pause is told after ERRORS_BEFORE_PAUSE)
        self._hooks: list[threading.Thread] = []
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._streaks: dict[str, dict[str, int]] = {}  # deployment -> gate -> consecutive failures
        self.rollouts = RolloutTracker(environment)
        """Each candidate's bake clock and the rollout its last evaluation left."""
        self._assignments: dict[str, Assignment] = {}
        self.errors = EvaluationErrors(environment)
        self.history = GateRecorder(environment)
        """Records every evaluation in the log (gates over time); a failed write is counted, never raised."""
        self.leadership: Leader | None = None
        """Set on a replica of a shared store: only the leader evaluates (None: this one always does)."""

    def check(self) -> dict[str, Any] | None:
        """:meth:`evaluate` when this watchdog leads (always without ``leadership``); a follower
        adopts the leader's last report as its own and returns None.

        The leader stores its report after each evaluation, for the followers.
        """
        lead = self.leadership
        if lead is None:
            return self.evaluate()
        if not lead.leading():
            self._follow(lead)
            return None
        try:
            return self.evaluate()
        finally:
            lead.record(self.environment.last_report)

    def _follow(self, lead: Leader) -> None:
        """Show the leader's last report; forget the streaks and bake of a lead this replica lost."""
        self._streaks.clear()
        self.rollouts.forget()
        last = lead.last()
        if last is not None:
            self.environment.last_report = last.report

    def evaluate(self) -> dict[str, Any] | None:
        """Evaluate the version under evaluation; roll back, advance, promote its bake, or pause.

        The version under evaluation is the canary, else the shadow, else the live version
        (also a first version, with nothing to fall back to: its bake must complete). Its
        window is evaluated even when empty (inconclusive: ``no traffic since ...``); gates that
        compare with live read the live version's rows since the candidate's first row.
        A failure counts once a gate failed ``failure_limit`` evaluations in a row
        (:func:`~rollbackkit.analysis.gates.tolerate`, per deployment).

        A ``rollback`` decision rolls back to the target :meth:`Deployments.rollback_target`
        names: never onto a version a person or a gate rolled back from. With no such target
        the breach is only recorded (``last_report["rollback"]`` and, once per deployment, a
        ``gate-breach`` journal entry with ``rolled_back: false``); traffic stays.

        Returns:
            The traffic change made (a rollback's or an advance's answer), else None.
        """
        env = self.environment
        state = env.router.state
        role, slot = candidate(state)
        if slot is None:
            return None
        evaluated = self._evaluate(state, role, slot)
        if evaluated is None:
            return None
        report, rollout, told = evaluated
        for broken in (g for g in report.gates if g.evidence.get("error")):
            self.errors.failed(f"gate {broken.name}: {broken.evidence.get('reason', 'error')}")
        judged = datetime.now(UTC)
        at = judged.isoformat(timespec="milliseconds")  # how old it is (GET /analysis reuses it fresh)
        said = {"version": slot.bundle.version, "slot": slot.name, "deployment": slot.deployment, "evaluated_at": at}
        env.last_report = {**said, **report.to_dict()}
        env.last_report |= {"rollout": rollout.to_dict() if rollout else None, "paused": pause_reason(rollout)}
        env.last_report |= self.errors.counted()
        try:
            return self._act(state, slot, report, rollout, told)
        finally:  # recorded once decided and acted on, by a background writer: never a wait before acting
            # as judged (not after the rollback it led to): the history's times line up with the tags
            self.history.evaluated(
                report, deployment=slot.deployment, version=slot.bundle.version, role=role, at=judged
            )

    def _act(
        self, state: RoutingState, slot: Slot, report: GateReport, rollout: Rollout | None, told: str | None
    ) -> dict[str, Any] | None:
        """Roll back, advance or tell, as ``report`` decided (nothing when traffic moved meanwhile)."""
        env = self.environment
        if env.router.state.generation != state.generation:
            return None  # an operator moved traffic meanwhile: judge the new state next time
        public = report.summary(public=True)  # what leaves the server (notifications): no slice's value
        if report.decision != "error":
            self._error_streak = 0
        if report.decision == "rollback":  # gate-failed only when traffic stays (an auto-rollback says the gates)
            try:
                result = self._roll_back(slot, report, rollout, state.generation)
            except Superseded:  # traffic moved after the evaluation: judge the new state next time, tell nothing
                return None
            self.teller.tell(
                slot, report.decision, public, None, rolled_back=result is not None, failed=failed_names(report)
            )
            return result
        paused = told if pause_reason(rollout) else None  # public words: the full ones stay in /status
        self.teller.tell(slot, report.decision, public, paused)
        if rollout is not None and rollout.state == "advancing":
            return self._advance(slot, rollout, state.generation)
        return None

    def _evaluate(
        self, state: RoutingState, role: Role, slot: Slot
    ) -> tuple[GateReport, Rollout | None, str | None] | None:
        """The candidate's tolerated gate report and its rollout (the bake clock observed).

        None for a live version with nothing to bake and no traffic yet: there is no rollout
        to pause, and the last report (an automatic rollback's, say) stays in ``/status``.
        """
        env = self.environment
        window = env.window(slot)
        if window.empty and role == "live" and not self.rollouts.baking(slot):
            return None
        assignment = self._assignment(slot.deployment)
        began = assignment.time if assignment is not None else None
        report = judge_candidate(env, state, role, slot, window, began=began, now=self.clock())
        report, self._streaks[slot.deployment] = tolerate(report, self._streaks.get(slot.deployment, {}))
        for gone in set(self._streaks) - {slot.deployment}:
            del self._streaks[gone]
        self.rollouts.keep_only(slot.deployment)
        rollout = self.rollouts.observe(state, role, slot, assignment, report, window)
        return report, rollout, why_paused(report, window, began, public=True)  # the words that leave the server

    def _assignment(self, deployment: str) -> Assignment | None:
        """The assignment a deployment tag records (read once per tag)."""
        if deployment not in self._assignments:
            env = self.environment
            found = {a.tag: a for a in env.deployments.history(env.name, env.env)}
            if deployment not in found:
                return None
            self._assignments = {deployment: found[deployment]}  # only the current one is needed again
        return self._assignments[deployment]

    def _advance(self, slot: Slot, rollout: Rollout, generation: int) -> dict[str, Any] | None:
        """A stepped canary's next step, or a full deploy's staged rows promoted, once baked."""
        env = self.environment
        if rollout.role == "live":
            self._complete_bake(slot)
            self._moved_on(rollout, {"action": "promote", "tag": slot.deployment})
            return None
        if rollout.role != "canary" or rollout.step is None or rollout.bake_s is None:
            return None
        target = rollout.next_percent
        move = "promoting to 100%" if target in (None, 100) else f"advancing to {target}%"
        reason = (
            f"step {rollout.step} of {len(rollout.steps)} ({rollout.percent}%) passed its gates for "
            f"{format_duration(rollout.baked_s)} (bake {format_duration(rollout.bake_s)}): {move}"
        )
        try:
            moved = env.advance(unless_changed_since=generation, reason=reason, actor="watchdog")
        except Superseded:  # an operator moved traffic after the evaluation: judge the new state next time
            return None
        self._moved_on(rollout, moved.get("assignment") or {})
        return moved

    def _moved_on(self, rollout: Rollout, assignment: dict[str, Any]) -> None:
        """The gate report names the new step (baking, nothing baked yet), or the promotion that ended the rollout."""
        env = self.environment
        if env.last_report is None:
            return
        if assignment.get("action") == "promote":
            env.last_report = {**env.last_report, "rollout": None, "paused": None, "promoted": assignment.get("tag")}
            return
        tag, percent = str(assignment.get("tag", rollout.deployment)), assignment.get("canary_percent")
        step = replace(
            rollout, deployment=tag, percent=percent, step=(rollout.step or 0) + 1, baked_s=0.0, state="baking",
            paused=None, since=assignment.get("time"),
        )  # fmt: skip
        env.last_report = {**env.last_report, "rollout": step.to_dict(), "paused": None}

    def tick(self) -> dict[str, Any] | None:
        """One watchdog tick: :meth:`check`; an evaluation that raises is counted and pauses the rollout."""
        try:
            return self.check()
        except Exception as exc:  # the watchdog must outlive one bad evaluation, and say so in /status
            self._evaluation_failed(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}")
            if self.leadership is not None:
                self.leadership.record(self.environment.last_report)
            return None

    def _evaluation_failed(self, error: str) -> None:
        """Count the error, stop the bake, and say in the gate report that the rollout waits on it."""
        env = self.environment
        self.errors.failed(error)
        paused = f"{EVALUATION_FAILED}: {self.errors.last}"
        role, slot = candidate(env.router.state)
        if slot is not None:
            self.rollouts.pause(slot.deployment)
            self.history.failed(deployment=slot.deployment, version=slot.bundle.version, role=role, error=error)
        last = dict(env.last_report or {"decision": "insufficient", "reason": paused})
        if last.get("rollout") is not None:
            last["rollout"] = replace(Rollout.from_dict(last["rollout"]), state="paused", paused=paused).to_dict()
        env.last_report = {**last, "paused": paused, **self.errors.counted()}
        if slot is not None:
            self._error_streak += 1
            if self._error_streak >= ERRORS_BEFORE_PAUSE:  # one failed evaluation is no news; several are
                said = f"{EVALUATION_FAILED} {self._error_streak} times in a row ({error.partition(':')[0]})"
                self.teller.tell(slot, "error", "", said)  # the pause only; it leaves the server: no exception text

    def _complete_bake(self, slot: Slot) -> None:
        """Promote a full deploy's staged rows: its gates passed for the whole bake."""
        env = self.environment
        if env.log is None or not self.rollouts.baking(slot):
            return
        self.teller.journal("bake-complete", slot, rows_promoted=env.log.promote(slot.deployment))

    def _roll_back(
        self, slot: Slot, report: GateReport, rollout: Rollout | None, generation: int
    ) -> dict[str, Any] | None:
        """Roll back after a failed gate, or record the breach when there is nowhere to go (None).

        Raises:
            Superseded: Traffic moved after the evaluation (an operator, another replica).
        """
        env = self.environment
        last = env.last_report or {}
        try:
            env.deployments.rollback_target(env.name, env.env)
        except RollbackRefused as exc:
            last["rollback"] = f"none: {exc.message}"
            self.teller.breach_without_target(slot, report, exc.message)
            return None
        breach = time.perf_counter()
        result = env.rollback(  # Superseded when traffic moved after the evaluation (the caller tells nothing)
            reason=f"gate failed: {report.summary()}",  # the tag and the journal: the operator's own records
            actor="watchdog",
            automatic=True,
            gates=report.summary(public=True),  # the event notifications forward: no slice's value
            failed_gates=failed_names(report),  # metrics' reason label: names as data, never parsed back
            unless_changed_since=generation,
        )
        if rollout is not None:
            last |= {"rollout": replace(rollout, state="rolled-back", paused=None).to_dict(), "paused": None}
        result["breach_to_shift_ms"] = round((time.perf_counter() - breach) * 1000, 3)
        result["report"] = last
        self.teller.journal(
            "gate-breach",
            slot,
            gates=report.summary(),
            failed_gates=list(failed_names(report)),  # names as data: the timeline never parses them back
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

    def start(self, interval: float) -> None:
        """Check gates every ``interval`` seconds in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()
                retry = getattr(self.environment, "retry_pending", None)  # a served environment's
                if retry is not None:
                    retry()  # a quarantine or row promotion that failed after a shift (background.pending)

        self._watchdog = threading.Thread(target=loop, name="rollbackkit-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, wait: float = 60.0) -> None:
        """Stop the watchdog (joined: an evaluation or a rollback in progress finishes) and give
        running after-rollback hooks ``wait`` seconds to finish."""
        self._stop.set()
        deadline = time.monotonic() + wait
        thread = self._watchdog
        if thread is not None and thread is not threading.current_thread():
            thread.join(min(30.0, wait))
        for hook in self._hooks:
            hook.join(max(0.0, deadline - time.monotonic()))
        self.history.flush(max(1.0, min(10.0, deadline - time.monotonic())))  # the last evaluations reach the log
