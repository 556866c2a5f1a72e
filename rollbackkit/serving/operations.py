"""The traffic operations of a served environment: deploy, shadow, stepped canary, promote, advance
(rollback: :mod:`rollbackkit.serving.rollback_op`).

Order of effects in every operation: **shift first** (milliseconds; traffic never waits),
then the assignment tag, then the journal entry with timings. A crash after the shift and
before the tag leaves git saying the previous assignment, and that is what a restarted
server serves. :class:`Operations` is mixed into
:class:`~rollbackkit.serving.environment.ServingEnvironment`.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from rollbackkit.analysis.rollout_plan import checked_promote, checked_rollout
from rollbackkit.errors import RoutingError, Superseded
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.registry.assignments import Action, Assignment, resolve
from rollbackkit.registry.checks import unchecked
from rollbackkit.registry.contents import load
from rollbackkit.serving.rollback_op import RollbackOperation, slot_version
from rollbackkit.serving.routing_state import Slot


class Operations(RollbackOperation):
    """Deploy, promote and advance for :class:`~rollbackkit.serving.environment.ServingEnvironment`
    (rollback: :class:`~rollbackkit.serving.rollback_op.RollbackOperation`)."""

    # ------------------------------------------------------------------------- deploy
    def deploy(
        self,
        version: str,
        *,
        canary: int | None = None,
        shadow: int | None = None,
        steps: list[int] | None = None,
        bake_s: float | None = None,
        features: pd.DataFrame | None = None,
        force: bool = False,
        reason: str = "",
        actor: str = "",
    ) -> dict[str, Any]:
        """Preflight, warm into the idle slot, then shift, start a canary, start a shadow, or start steps.

        Args:
            version: The version to deploy.
            canary: Percent of traffic for a canary (1-99).
            shadow: Percent of requests mirrored to the version as a shadow (1-100): it
                scores them off the request path, its answers logged (stage ``shadow``) and
                never returned.
            steps: A stepped rollout (``[5, 25, 50, 100]``): a canary at the first step,
                moved on by :meth:`advance`, promoted at 100.
            bake_s: How long each step's gates must pass (default: :attr:`bake_seconds`).
            features: Live features for preflight (default: the inputs scored lately).
            force: Deploy even when preflight finds the version incompatible.
            reason: Why (in the assignment).
            actor: Who.

        Raises:
            InvalidInput: The rollout options do not make one rollout
                (:func:`~rollbackkit.analysis.rollout_plan.checked_rollout`).
            RoutingError: A canary or a shadow is running.
        """
        plan = checked_rollout(canary, shadow, steps, bake_s).steps or ()
        if plan:
            canary, bake_s = plan[0], self.bake_seconds if bake_s is None else bake_s
        with self._operation("deploy") as shift:
            self.router.refuse_busy()
            started = time.perf_counter()
            info = resolve(self.registry, f"{self.name}@{version}")
            state = self.router.state
            standby = state.standby
            previous = slot_version(state.slot(state.live))
            bundle = standby.bundle if standby and standby.bundle.info.tag == info.tag else load(self.registry, info)
            report = self._preflight(bundle, features, force)
            loaded = time.perf_counter()
            with repo_lock(self.registry.paths.lock_file):
                tag = self._reserve_tag(info.version, "shadow" if shadow else "staging")
                if shadow:
                    self.router.start_shadow(bundle, shadow, tag)
                elif standby is not None and standby.bundle is bundle:
                    self.router.shift(standby.name, 100 if canary is None else canary, deployment=tag)
                else:
                    self.router.deploy(bundle, canary, deployment=tag)
                shifted = time.perf_counter()
                checkpoint("deploy_shifted")
                assignment = self.deployments.assign_locked(
                    info,
                    self.env,
                    "shadow" if shadow else "canary" if canary else "deploy",
                    reason=reason,
                    actor=actor,
                    forced=force and report["verdict"] == "incompatible",
                    canary_percent=canary,
                    tag=tag,
                    shadow_percent=shadow,
                    steps=plan,
                    bake_s=bake_s if plan else None,
                )
            self.deployed_at[tag] = self.started_at[tag] = time.monotonic()
            lost = None if shadow else previous  # a shadow takes no traffic from anyone
            checked = {"preflight": report["verdict"], **unchecked(report)}
            self._record("deploy", assignment, started, loaded, shifted, previous=lost, **checked)
            answer = {
                "assignment": assignment.to_dict(),
                "status": self.status(),
                "preflight": report,
                "shift_ms": round((shifted - loaded) * 1000, 3),
            }
            self._order(shift)
        return self._finish(answer, shift)

    # ------------------------------------------------------------------------- promote / advance
    def promote(
        self, reason: str = "", actor: str = "", *, from_shadow: bool = False, canary: int | None = None
    ) -> dict[str, Any]:
        """Send all traffic to the canary and record it (the slot is relabelled with the new tag).

        With ``from_shadow``, the running shadow takes traffic instead: ``canary``% of it as
        a canary (action ``canary``), or all of it (action ``promote``; its rows staged until
        its gates have passed for the bake time, like a deploy's).

        Raises:
            RoutingError: No canary (or, with ``from_shadow``, no shadow) is running.
            InvalidInput: ``canary`` without ``from_shadow``, or outside 1..99.
        """
        checked_promote(from_shadow, canary)
        with self._operation("promote") as shift:
            answer = self._from_shadow(canary, reason, actor) if from_shadow else self._promote_canary(reason, actor)
            self._order(shift)
        return self._finish(answer, shift)

    def _promote_canary(self, reason: str, actor: str) -> dict[str, Any]:
        """Promote the running canary (hold :attr:`_ops`): its rows, every step's, go to production."""
        started = time.perf_counter()
        state = self.router.state
        canary = state.slot(state.canary)
        if canary is None:
            hint = "Promote the shadow with --from-shadow." if state.shadow else "Start one with deploy --canary PCT."
            raise RoutingError("No canary is running.", hint)
        info = canary.bundle.info
        previous = slot_version(state.slot(state.live))
        rollout = self._rollout_tags(canary)
        with repo_lock(self.registry.paths.lock_file):
            tag = self._reserve_tag(info.version, "production")
            self.router.shift(canary.name, 100, deployment=tag)
            shifted = time.perf_counter()
            assignment = self.deployments.assign_locked(info, self.env, "promote", reason=reason, actor=actor, tag=tag)
        self.started_at[tag] = time.monotonic()
        log = self.log  # the rows of every step go to production; a log failure never undoes the promote
        promoted = (
            self._after_shift(f"promotion of {info.version}'s rows", lambda: sum(map(log.promote, rollout)))
            if log is not None
            else 0
        )
        self._record("promote", assignment, started, started, shifted, previous=previous, rows_promoted=promoted)
        return {"assignment": assignment.to_dict(), "status": self.status()}

    def _from_shadow(self, canary: int | None, reason: str, actor: str) -> dict[str, Any]:
        """The shadow takes ``canary``% of traffic, or all of it (hold :attr:`_ops`)."""
        started = time.perf_counter()
        state = self.router.state
        shadow = state.slot(state.shadow)
        if shadow is None:
            raise RoutingError("No shadow is running.", "Start one with deploy --shadow.")
        info = shadow.bundle.info
        previous = slot_version(state.slot(state.live))
        with repo_lock(self.registry.paths.lock_file):
            tag = self._reserve_tag(info.version, "staging")  # a full promotion bakes before production
            self.router.shift(shadow.name, 100 if canary is None else canary, deployment=tag)
            shifted = time.perf_counter()
            action: Action = "promote" if canary is None else "canary"
            assignment = self.deployments.assign_locked(
                info, self.env, action, reason=reason, actor=actor, canary_percent=canary, tag=tag
            )
        self.deployed_at[tag] = self.started_at[tag] = time.monotonic()
        self._record("promote", assignment, started, started, shifted, previous=previous, from_shadow=True)
        return {"assignment": assignment.to_dict(), "status": self.status()}

    def advance(self, *, unless_changed_since: int, reason: str, actor: str = "watchdog") -> dict[str, Any]:
        """Move the running stepped canary to its next step, or promote it at 100.

        The next step is a ``canary`` assignment at the next percent carrying the steps and
        the bake (the slot is resized, keeping the sticky rule: a key in the canary stays
        there); at 100 the canary is promoted (action ``promote``).

        Raises:
            Superseded: Traffic moved since generation ``unless_changed_since``.
            RoutingError: No stepped canary is running.
        """
        with self._operation("advance") as shift:
            if self.router.state.generation != unless_changed_since:
                raise Superseded(f"Traffic in {self.env} moved after the gate evaluation.", "Evaluate again.")
            state = self.router.state
            slot = state.slot(state.canary)
            current = self.deployments.state(self.name, self.env).canary
            if slot is None or current is None or current.tag != slot.deployment or not current.steps:
                raise RoutingError("No stepped canary is running.", "Start one with deploy --steps 5,25,50,100.")
            percent = next(s for s in current.steps if s > (current.canary_percent or 0))
            if percent >= 100:
                answer = self._promote_canary(reason, actor)
            else:
                answer = self._step(slot, current, percent, reason, actor)
            self._order(shift)
        return self._finish(answer, shift)

    def _step(self, slot: Slot, current: Assignment, percent: int, reason: str, actor: str) -> dict[str, Any]:
        """Resize the stepped canary to ``percent`` under a new ``canary`` assignment (hold :attr:`_ops`)."""
        started = time.perf_counter()
        info = slot.bundle.info
        with repo_lock(self.registry.paths.lock_file):
            tag = self._reserve_tag(info.version, "staging")
            self.router.shift(slot.name, percent, deployment=tag)
            shifted = time.perf_counter()
            assignment = self.deployments.assign_locked(
                info,
                self.env,
                "canary",
                reason=reason,
                actor=actor,
                canary_percent=percent,
                tag=tag,
                steps=current.steps,
                bake_s=current.bake_s,
            )
        self.deployed_at[tag] = self.started_at[tag] = time.monotonic()
        self._record("advance", assignment, started, started, shifted, previous=slot_version(self._live()))
        return {"assignment": assignment.to_dict(), "status": self.status()}

    def _rollout_tags(self, canary: Slot) -> list[str]:
        """The deployment tags of the running canary's rollout: one per step (its rows are staged under each)."""
        tags = [canary.deployment]
        history = self.deployments.history(self.name, self.env)
        for a in reversed(history[:-1] if history and history[-1].tag == canary.deployment else history):
            if a.action != "canary" or a.version != canary.bundle.version:
                break
            tags.append(a.tag)
        return list(dict.fromkeys(tags))
