"""What every traffic operation of a served environment does around its shift: tag, preflight, journal, hooks.

:class:`Recording` is the base of :class:`~rollbackkit.serving.operations.Operations`; it
declares what an operation reads on its :class:`~rollbackkit.serving.environment.ServingEnvironment`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.analysis.preflight import refuse_incompatible
from rollbackkit.errors import StoreError
from rollbackkit.registry.assignments import Assignment, Deployments
from rollbackkit.registry.checks import preflight_bundle
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.shared_tags import SharedRecord, sharing
from rollbackkit.serving.background import AssignmentHook, Background
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Router
from rollbackkit.serving.routing_state import Slot
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.window import Windows

if TYPE_CHECKING:
    from rollbackkit.serving.sync import ReplicaSync


@dataclass
class Shift:
    """What an operation published to the other replicas: its ``generation``, or why not (``error``)."""

    generation: int | None = None
    error: str | None = None
    record: SharedRecord | None = None  # the tags shared through git's origin (None: no remote)
    ordered: bool = False  # the operation holds ``background.order`` (released by _finish, or on a failure)


class Recording:
    """Tags, preflight, journal entries, events and after-change hooks of traffic operations."""

    name: str
    env: str
    registry: Repository
    router: Router
    deployments: Deployments
    journal: Journal
    log: PredictionStore | None
    windows: Windows
    background: Background
    bake_seconds: float
    deployed_at: dict[str, float]
    started_at: dict[str, float]
    on_event: Callable[[TrafficEvent], None] | None
    listeners: list[Callable[[TrafficEvent], None]]
    on_assignment: AssignmentHook | None
    _ops: threading.Lock
    sync: ReplicaSync | None

    def status(self) -> dict[str, Any]:
        """``GET /status`` (the environment's)."""
        raise NotImplementedError

    def recent_inputs(self) -> pd.DataFrame | None:
        """The inputs scored lately (the environment's; preflight's default sample)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _operation(self, action: str) -> Iterator[Shift]:
        """Hold the operation lock; with a :attr:`sync`, the environment's too, caught up first.

        Without a sync this is ``with self._ops``. With one: the store's operation lock
        (:meth:`ReplicaSync.exclusive`), then the newest published state served here
        (:meth:`ReplicaSync.catch_up`), then the operation; a change of traffic is published
        as ``action`` before the locks are let go (see :meth:`_converged`). An operation that
        fails after its shift (no tag, no journal entry) publishes nothing: this replica serves
        the published state again (:meth:`ReplicaSync.undo`).
        """
        shift = Shift()
        try:
            with self._locked(action, shift):
                yield shift
        except BaseException:  # the operation never reaches _finish: the order it took goes too
            self._unorder(shift)
            raise

    @contextlib.contextmanager
    def _locked(self, action: str, shift: Shift) -> Iterator[None]:
        """The locks and the publication of :meth:`_operation` (``shift`` filled in)."""
        sync = self.sync
        if sync is None:
            with self._ops:
                yield
            return
        tags = sharing(self.registry.git, self.name, self.journal, self.background.failed)
        with sync.exclusive(), self._ops, tags as record:  # another host's tags fetched, this one's pushed
            sync.catch_up()
            before = self.router.state.generation
            shift.record = record
            try:
                yield
            except BaseException:
                if self.router.state.generation != before:  # shifted, not recorded: never published
                    sync.undo(action)
                raise
            if self.router.state.generation != before:
                try:
                    shift.generation = sync.publish(action)
                except StoreError as exc:
                    shift.error = f"not published to the other replicas: {exc.message}"

    def _order(self, shift: Shift) -> None:
        """Take ``background.order`` before the operation's locks go (hooks run in change order)."""
        self.background.order.acquire()
        shift.ordered = True

    def _unorder(self, shift: Shift) -> None:
        if shift.ordered:
            shift.ordered = False
            self.background.order.release()

    def _finish(self, answer: dict[str, Any], shift: Shift) -> dict[str, Any]:
        """The operation's answer after its locks went: convergence, then its hooks (:meth:`_synced`)
        when it took ``order``; ``order`` is let go whatever is raised."""
        try:
            answer = self._converged(answer, shift)
        except BaseException:
            self._unorder(shift)
            raise
        if not shift.ordered:
            return answer
        shift.ordered = False
        return self._synced(answer)

    def _converged(self, answer: dict[str, Any], shift: Shift) -> dict[str, Any]:
        """``answer`` with ``replicas``: whether every replica serves the change (waits for them)."""
        sync = self.sync
        if shift.record is not None and (shift.record.pushed or shift.record.error):
            answer = answer | {"git_remote": shift.record.to_dict()}
        if sync is None or (shift.generation is None and shift.error is None):
            return answer
        if shift.generation is None:
            said: dict[str, Any] = {"generation": sync.generation, "converged": False, "waited_ms": 0.0}
            said |= {"replicas": [], "lagging": {sync.replica: shift.error}}
        else:
            said = sync.wait_converged(shift.generation).to_dict()
        if not said["converged"]:
            self._not_everywhere(answer, said["lagging"])
        return answer | {"replicas": said}

    def _not_everywhere(self, answer: dict[str, Any], lagging: dict[str, str]) -> None:
        """Journal and tell :attr:`on_event` that a change is not served by every replica (any actor,
        the watchdog's included: ``serve``'s terminal never shows a rollback as done alone)."""
        assignment = answer["assignment"]
        said = "; ".join(f"{replica}: {why}" for replica, why in lagging.items()) or "not confirmed by every replica"
        self.journal.append(
            "not-everywhere", name=self.name, env=self.env, version=assignment["version"], tag=assignment["tag"],
            action=assignment["action"], lagging=lagging,
        )  # fmt: skip
        self.notify(
            TrafficEvent(
                kind="not-everywhere", name=self.name, env=self.env, version=assignment["version"],
                tag=assignment["tag"], action=assignment["action"], reason=said,
            )
        )  # fmt: skip

    def _live(self) -> Slot | None:
        state = self.router.state
        return state.slot(state.live)

    # ------------------------------------------------------------------------- helpers
    def _synced(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Run :attr:`on_assignment` after the operation lock is let go (the caller took ``order`` first).

        The alias moves in the order the changes were made, and a slow or unreachable MLflow
        never holds the lock a gate breach's rollback needs.
        """
        try:
            return self.background.synced(answer, self.on_assignment)
        finally:
            self.background.order.release()

    def _reserve_tag(self, version: str, stage: str) -> str:
        """The next assignment's tag, its log stage declared (hold the repository lock).

        A damaged journal stops the operation here, before traffic or a tag moves.
        """
        self.journal.check_appendable()
        tag = self.deployments.next_tag(self.name, self.env)
        if self.log is not None:
            self.log.set_stage(tag, self.name, self.env, version, stage)
        return tag

    def _quarantine(self, slot: Slot) -> int | None:
        """Quarantine the rows of the version that just lost its traffic (None: the log failed).

        Traffic has moved and the assignment is tagged by now: a log that fails here (a store
        outage, a lock timeout) must never undo the rollback. The failure is counted in
        ``background`` (``/status``) and the quarantine retried until it succeeds, unless the
        version serves again by then.
        """
        log = self.log
        if log is None:
            return 0
        version = slot.bundle.version

        def gone() -> bool:
            state = self.router.state
            serving = (state.slot(state.live), state.slot(state.canary))
            return all(s is None or s.bundle.version != version for s in serving)

        step = lambda: log.quarantine(self.name, self.env, version)  # noqa: E731
        return self._after_shift(f"quarantine of {version}", step, gone)

    def _after_shift(self, what: str, step: Callable[[], int], wanted: Callable[[], bool] = lambda: True) -> int | None:
        """Run a log step that follows a recorded shift; a failure is counted (``background``) and
        the step retried by the replica (``background.pending``) while ``wanted()``; never raised."""
        try:
            return step()
        except Exception as exc:  # the shift and its tag stand: say it, never undo them
            why = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
            self.background.failed(
                f"{what} failed after traffic moved ({why}); the change stands and this replica retries the "
                "step until it succeeds (background.pending)"
            )
            self.background.retry_later(what, step, wanted)
            return None

    def _preflight(
        self, bundle: Any, features: pd.DataFrame | None, force: bool, rollback: bool = False
    ) -> dict[str, Any]:
        sample = features if features is not None else self.recent_inputs()
        live = self._live()
        consumer = live.bundle.info.tag if live else None
        report = preflight_bundle(self.registry, bundle, sample, consumer=consumer, rollback=rollback).to_dict()
        refuse_incompatible(bundle.info.tag, report, force, "Nothing was shifted.")
        return report

    def _record(
        self, event: str, assignment: Assignment, started: float, loaded: float, shifted: float, **extra: Any
    ) -> None:
        """Journal a traffic change, then tell :attr:`on_event` (``previous``: the version that lost traffic)."""
        previous, failed = extra.pop("previous", None), tuple(extra.pop("failed_gates", ()))
        shift_ms = round((shifted - loaded) * 1000, 3)
        said = {"name": self.name, "env": self.env, "version": assignment.version, "tag": assignment.tag}
        said |= {"action": assignment.action, "reason": assignment.reason}
        total_s = round(time.perf_counter() - started, 4)
        timing = {"load_s": round(loaded - started, 4), "shift_ms": shift_ms, "total_s": total_s}
        named = {"failed_gates": list(failed)} if failed else {}  # an automatic rollback's failed gates, as data
        self.journal.append(event, **said, incident=assignment.incident, **timing, **extra, **named)
        self.notify(
            TrafficEvent(
                kind=event,
                **said,
                previous=previous,
                shift_ms=shift_ms,
                canary_percent=assignment.canary_percent,
                gates=assignment.gates,
                failed_gates=failed,
            )
        )

    def notify(self, event: TrafficEvent) -> None:
        """Give ``event`` to :attr:`on_event` (the terminal) and each of :attr:`listeners` (metrics,
        notifications). A listener that raises never affects serving: its failure is counted in
        ``background`` (``/status``) and the next listener still gets the event."""
        for listener in [self.on_event, *self.listeners]:
            if listener is None:
                continue
            try:
                listener(event)
            except Exception as exc:  # a terminal line or a metric must never fail an operation
                self.background.failed(f"a listener of {event.kind} events failed: {type(exc).__name__}: {exc}")
