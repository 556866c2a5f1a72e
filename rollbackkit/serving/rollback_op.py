"""Rollback of a served environment: cancel the canary or shadow, shift to the warm standby, or load the target.

The same order of effects as every traffic operation (:mod:`rollbackkit.serving.operations`):
shift first, then the assignment tag, then the journal entry. :class:`RollbackOperation` is
the base of :class:`~rollbackkit.serving.operations.Operations`.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from rollbackkit.errors import Superseded
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.registry.checks import unchecked
from rollbackkit.registry.contents import load
from rollbackkit.serving.recording import Recording
from rollbackkit.serving.routing_state import Slot


def slot_version(slot: Slot | None) -> str | None:
    """The version a slot holds (None: no slot)."""
    return slot.bundle.version if slot is not None else None


class RollbackOperation(Recording):
    """:meth:`rollback`, for :class:`~rollbackkit.serving.environment.ServingEnvironment`."""

    def rollback(
        self,
        *,
        reason: str,
        incident: str = "",
        to: str | None = None,
        force: bool = False,
        actor: str = "",
        automatic: bool = False,
        gates: str = "",
        failed_gates: tuple[str, ...] = (),
        features: pd.DataFrame | None = None,
        unless_changed_since: int | None = None,
    ) -> dict[str, Any]:
        """Roll back to the target :meth:`Deployments.rollback_target` names, then record why.

        The target is ``to`` if given, else the live version when a canary or a shadow runs
        (it is cancelled), else the newest other version that served here and was not rolled
        back from. It is reached the fastest way: cancelling the canary or shadow, shifting to
        the warm standby when it holds the target, or loading the target. The slot that takes
        the traffic is relabelled with the rollback's assignment tag. Preflight checks the
        target against ``features`` (default: the inputs this server has seen lately); an
        automatic rollback skips it, since traffic must move now, and so does cancelling a canary
        or shadow (the live version it keeps already serves live traffic).

        ``unless_changed_since`` is the routing generation a gate evaluation saw: if an
        operation has moved traffic since (an operator's deploy or rollback between the
        evaluation and this call), nothing happens and :class:`Superseded` is raised, so a
        verdict on one version never moves traffic away from another.

        An automatic rollback's ``gates`` (their public words) and ``failed_gates`` (their names, as
        data: metrics' ``reason``) travel on its traffic event.

        Raises:
            RollbackRefused: No version qualifies, or the rollback would change nothing.
            Superseded: Traffic moved since generation ``unless_changed_since``.
        """
        with self._operation("auto-rollback" if automatic else "rollback") as shift:
            if unless_changed_since is not None and self.router.state.generation != unless_changed_since:
                raise Superseded(f"Traffic in {self.env} moved after the gate evaluation.", "Evaluate again.")
            started = time.perf_counter()
            info = self.deployments.rollback_target(self.name, self.env, to)
            state = self.router.state
            live, canary, standby = state.slot(state.live), state.slot(state.canary), state.standby
            shadow = state.slot(state.shadow)
            if (canary or shadow) is not None and live is not None and live.bundle.info.tag == info.tag:
                target: Slot | None = live  # cancel the canary (or the shadow)
            elif canary is None and standby is not None and standby.bundle.info.tag == info.tag:
                target = standby  # the warm standby: a shift, nothing loaded
            else:
                target = None
            bundle = target.bundle if target is not None else load(self.registry, info)
            cancels = target is not None and target is live  # the live version already serves live traffic
            skipped = automatic or cancels
            report = {"verdict": "skipped"} if skipped else self._preflight(bundle, features, force, rollback=True)
            loaded = time.perf_counter()
            bad = [s for s in (canary, live) if s is not None and s.bundle.version != info.version]
            with repo_lock(self.registry.paths.lock_file):
                log = self.log
                baking = target is not None and log is not None and log.stage_of(target.deployment) == "staging"
                tag = self._reserve_tag(info.version, "staging" if baking else "production")
                if baking and target is not None:  # still baking: the bake goes on under the new tag
                    self.deployed_at[tag] = self.deployed_at.get(target.deployment, time.monotonic())
                if target is not None:
                    self.router.rollback(deployment=tag)  # cancels the canary or shadow, or makes the standby live
                else:
                    if canary is not None or shadow is not None:
                        self.router.rollback()
                    self.router.deploy(bundle, deployment=tag)
                shifted = time.perf_counter()
                checkpoint("rollback_shifted")
                assignment = self.deployments.assign_locked(
                    info,
                    self.env,
                    "auto-rollback" if automatic else "rollback",
                    reason=reason,
                    incident=incident,
                    actor=actor,
                    gates=gates,
                    forced=force and report["verdict"] == "incompatible",
                    tag=tag,
                )
            self.started_at[tag] = time.monotonic()
            counts = [self._quarantine(s) for s in bad]  # a shadow's rows never reached production
            quarantined = None if None in counts else sum(c for c in counts if c is not None)
            lost = bad[0] if bad else shadow if shadow is not None and shadow.bundle.version != info.version else None
            self._record(
                "rollback",
                assignment,
                started,
                loaded,
                shifted,
                previous=slot_version(lost),
                automatic=automatic,
                gates=gates,
                failed_gates=failed_gates,
                quarantined=quarantined,
                **({} if target is not None else {"loaded_from_registry": True}),
                **({"shadow_cancelled": shadow.bundle.version} if shadow is not None else {}),
                **unchecked(report),
            )
            answer = {
                "assignment": assignment.to_dict(),
                "status": self.status(),
                "preflight": report,
                "shift_ms": round((shifted - loaded) * 1000, 3),
            }
            if not automatic:  # an automatic one's hook is on_auto_rollback, run by the watchdog
                self._order(shift)
        return self._finish(answer, shift)
