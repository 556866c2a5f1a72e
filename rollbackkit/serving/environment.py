"""One served environment: router + assignments + journal + prediction windows + watchdog.

This is the object the HTTP server wraps and the tests drive in-process. Order of effects
in every traffic operation: **shift first** (milliseconds; traffic never waits), then the
assignment tag, then the journal entry with timings. A crash after the shift and before the
tag leaves git saying the previous assignment, and that is what a restarted server serves.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.analysis.preflight import refuse_incompatible
from rollbackkit.errors import IncompatibleInput, RoutingError, Superseded
from rollbackkit.locking import checkpoint, repo_lock
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Assignment, Deployments, resolve
from rollbackkit.registry.checks import preflight_bundle
from rollbackkit.registry.contents import load
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.background import AssignmentHook, Background
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Routed, Router, Slot
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.threads import limit_scoring_threads
from rollbackkit.serving.watchdog import Watchdog
from rollbackkit.serving.window import Windows

RECENT_INPUT_ROWS = 2_000


def _version(slot: Slot | None) -> str | None:
    """The version a slot holds (None: no slot)."""
    return slot.bundle.version if slot is not None else None


def _plain_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a 0..n-1 index, copied only when it has another (off the hot path's way)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


class ServingEnvironment:
    """Serve bundle ``name`` in environment ``env`` of the repository at ``repo``.

    Args:
        repo: Path inside the project's git repository.
        name: Bundle name.
        env: Environment name (``prod``, ``staging``...).
        on_auto_rollback: Called (in a background thread) after an automatic rollback has
            shifted traffic and been recorded; the server starts the rollback runbook here.
        on_event: Called with a :class:`~rollbackkit.serving.status.TrafficEvent` after each
            recorded traffic change and each gate breach that moved no traffic (``serve``
            prints them); its errors are ignored.
        on_assignment: Called with the answer of each deploy, promote and manual rollback
            (admin API or CLI) once recorded; what it returns (the MLflow alias it moved, or
            failed to: ``ok`` false) joins the answer as ``mlflow_alias``. A failure is
            counted in ``background`` (:meth:`status`), never raised: the change stands.
        log: The durable prediction log (staging/production, quarantine, backfill).
        bake_seconds: How long a full deploy must pass its gates before its staged rows
            are promoted to production.
        scoring_threads: Threads per native pool (OpenMP, BLAS) while scoring a request;
            None leaves the libraries' defaults (see :mod:`rollbackkit.serving.threads`).
        freeze_heap: Freeze the garbage collector's heap after every model load, so full
            collections stop pausing requests (see :mod:`rollbackkit.serving.heap`). For
            processes that only serve; a server sets it.
    """

    def __init__(
        self,
        repo: str | Path,
        name: str,
        env: str,
        on_auto_rollback: Callable[[dict[str, Any]], None] | None = None,
        log: PredictionStore | None = None,
        bake_seconds: float = 600.0,
        scoring_threads: int | None = 1,
        freeze_heap: bool = False,
        on_event: Callable[[TrafficEvent], None] | None = None,
        on_assignment: AssignmentHook | None = None,
    ) -> None:
        self.registry = Repository(repo)
        self.scoring_threads = scoring_threads
        self.log = log
        self.bake_seconds = bake_seconds
        self.name = validate_name(name)
        self.env = validate_name(env, "environment name")
        self.deployments = Deployments(self.registry)
        self.router = Router(freeze_heap=freeze_heap)
        self.journal = Journal(self.registry.paths.journal)
        self.on_auto_rollback = on_auto_rollback
        self.on_event = on_event
        self.on_assignment = on_assignment
        self.last_report: dict[str, Any] | None = None
        self._ops = threading.Lock()
        self.windows = Windows(RECENT_INPUT_ROWS)
        self.deployed_at: dict[str, float] = {}  # deployment tag -> when it started serving (monotonic), for the bake
        self.watchdog = Watchdog(self)
        self.background = Background()

    # ------------------------------------------------------------------------- start-up
    def start(self) -> None:
        """Load what the history says serves here (:meth:`Deployments.state`), and resume it.

        The live version takes all traffic under its assignment's tag. A canary that was
        running when the server stopped is resumed at the same share; otherwise the
        automatic rollback target (if any) is loaded warm as the standby.
        """
        state = self.deployments.state(self.name, self.env)
        live = state.live
        if live is None:
            return
        if state.canary is None and state.fallback is not None:
            fallback = self.deployments.history(self.name, self.env)
            tag = next(a.tag for a in reversed(fallback) if a.version == state.fallback)
            self.router.load(load(self.registry, resolve(self.registry, f"{self.name}@{state.fallback}")), tag)
        slot = self.router.load(load(self.registry, resolve(self.registry, f"{self.name}@{live.version}")), live.tag)
        self.router.shift(slot.name, 100)
        if self.log is not None and not self.log.knows(live.tag):
            self.log.set_stage(live.tag, self.name, self.env, live.version, "production")
        canary = state.canary
        if canary is not None:
            if self.log is not None and not self.log.knows(canary.tag):
                self.log.set_stage(canary.tag, self.name, self.env, canary.version, "staging")
            loaded = self.router.load(
                load(self.registry, resolve(self.registry, f"{self.name}@{canary.version}")), canary.tag
            )
            self.router.shift(loaded.name, canary.canary_percent or 0)
        self.journal.append(
            "serve",
            name=self.name,
            env=self.env,
            version=live.version,
            tag=live.tag,
            canary=canary.version if canary else None,
            canary_percent=state.canary_percent,
        )

    # ------------------------------------------------------------------------- requests
    def predict(
        self, frame: pd.DataFrame, key: str | None = None, request_id: str | None = None, *, untyped: bool = False
    ) -> Routed:
        """Score a request and keep it: in the log when there is one, else in its slot's window.

        A request the version refuses (:class:`IncompatibleInput`: column names, columns,
        dtypes or values it cannot take) is the client's error: it is counted per slot load
        (``client_errors`` in :meth:`status`) and neither logged nor windowed, so no client
        can fail the error-rate gate and roll back a healthy version. Anything else raised
        while scoring is the model's error and is kept against the slot that scored it.

        Args:
            frame: The request's features.
            key: Sticky canary routing key.
            request_id: Logged with the rows.
            untyped: The frame came from JSON rows without dtypes: its columns are read with
                the scoring version's dtypes where nothing is lost (see
                :func:`rollbackkit.bundle.conform.conform`), and kept that way.
        """
        state = self.router.state
        limit_scoring_threads(self.scoring_threads, state.generation)
        when = datetime.now(UTC)
        slot = self.router.route(key)
        try:
            routed = self.router.score(slot, frame, untyped=untyped)
        except IncompatibleInput:  # the client's error: counted apart, never a gate's evidence
            self.windows.refused(slot.name, slot.loaded_at)
            raise
        except Exception as exc:  # the model failed on a compatible request: its slot's error
            self._keep(slot, frame, None, float("nan"), type(exc).__name__, request_id, when)
            raise
        self._keep(routed.slot, routed.inputs, routed.outputs, routed.latency_ms, None, request_id, when)
        return routed

    def _keep(
        self,
        slot: Slot,
        frame: pd.DataFrame,
        outputs: pd.DataFrame | None,
        latency_ms: float,
        error: str | None,
        request_id: str | None,
        when: datetime,
    ) -> None:
        """Queue the request for the log (or window it in memory); keep scored inputs for preflight.

        Only scored requests feed :meth:`recent_inputs`: a refused request (wrong columns or
        dtypes) must not make the next deploy's preflight fail on inputs nobody scored.
        """
        inputs = _plain_index(frame)
        outputs = _plain_index(outputs) if outputs is not None else None
        # with a log, gate windows come from it
        self.windows.keep(slot.name, slot.loaded_at, inputs, outputs, latency_ms, error, windowed=self.log is None)
        if self.log is None:
            return
        bundle = slot.bundle
        meta = {"request_id": request_id or uuid.uuid4().hex, "time": when, "env": self.env, "name": self.name}
        meta |= {"version": bundle.version, "bundle_id": bundle.bundle_id, "slot": slot.name}
        meta |= {"deployment": slot.deployment, "latency_ms": latency_ms, "error": error}
        meta["primary"] = bundle.schema.output.primary
        self.log.record(meta, inputs, outputs)

    def window(self, slot: Slot) -> pd.DataFrame:
        """The recent requests of one deployment as a gate window.

        From the durable prediction log when the server keeps one (so a restarted server
        still sees the window), else from the bounded in-memory window of the slot load.
        """
        if self.log is not None:
            return self.log.window(self.name, self.env, deployment=slot.deployment, limit=WINDOW_ROWS)
        return self.windows.frame(slot.name, slot.loaded_at)

    def recent_inputs(self) -> pd.DataFrame | None:
        """A sample of the inputs this server has scored lately (for preflight), in the dtypes scored."""
        return self.windows.recent()

    # ------------------------------------------------------------------------- operations
    def deploy(
        self,
        version: str,
        *,
        canary: int | None = None,
        features: pd.DataFrame | None = None,
        force: bool = False,
        reason: str = "",
        actor: str = "",
    ) -> dict[str, Any]:
        """Preflight, warm into the idle slot, shift (or start a canary), then record."""
        with self._ops:
            started = time.perf_counter()
            info = resolve(self.registry, f"{self.name}@{version}")
            state = self.router.state
            standby = state.standby
            previous = _version(state.slot(state.live))
            bundle = standby.bundle if standby and standby.bundle.info.tag == info.tag else load(self.registry, info)
            report = self._preflight(bundle, features, force)
            loaded = time.perf_counter()
            with repo_lock(self.registry.paths.lock_file):
                tag = self._reserve_tag(info.version, "staging")
                if standby is not None and standby.bundle is bundle:
                    self.router.shift(standby.name, 100 if canary is None else canary, deployment=tag)
                else:
                    self.router.deploy(bundle, canary, deployment=tag)
                shifted = time.perf_counter()
                checkpoint("deploy_shifted")
                assignment = self.deployments.assign_locked(
                    info,
                    self.env,
                    "canary" if canary else "deploy",
                    reason=reason,
                    actor=actor,
                    forced=force and report["verdict"] == "incompatible",
                    canary_percent=canary,
                    tag=tag,
                )
            self.deployed_at[tag] = time.monotonic()
            self._record("deploy", assignment, started, loaded, shifted, previous=previous, preflight=report["verdict"])
            answer = {
                "assignment": assignment.to_dict(),
                "status": self.status(),
                "preflight": report,
                "shift_ms": round((shifted - loaded) * 1000, 3),
            }
            self.background.order.acquire()
        return self._synced(answer)

    def promote(self, reason: str = "", actor: str = "") -> dict[str, Any]:
        """Send all traffic to the canary and record it (the slot is relabelled with the new tag)."""
        with self._ops:
            started = time.perf_counter()
            state = self.router.state
            canary = state.slot(state.canary)
            if canary is None:
                raise RoutingError("No canary is running.", "Start one with deploy --canary PCT.")
            info = canary.bundle.info
            previous = _version(state.slot(state.live))
            with repo_lock(self.registry.paths.lock_file):
                tag = self._reserve_tag(info.version, "production")
                self.router.shift(canary.name, 100, deployment=tag)
                shifted = time.perf_counter()
                assignment = self.deployments.assign_locked(
                    info, self.env, "promote", reason=reason, actor=actor, tag=tag
                )
            promoted = self.log.promote(canary.deployment) if self.log is not None else 0
            self._record("promote", assignment, started, started, shifted, previous=previous, rows_promoted=promoted)
            answer = {"assignment": assignment.to_dict(), "status": self.status()}
            self.background.order.acquire()
        return self._synced(answer)

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
        features: pd.DataFrame | None = None,
        unless_changed_since: int | None = None,
    ) -> dict[str, Any]:
        """Roll back to the target :meth:`Deployments.rollback_target` names, then record why.

        The target is ``to`` if given, else the live version when a canary runs (the canary
        is cancelled), else the newest other version that served here and was not rolled
        back from. It is reached the fastest way: cancelling the canary, shifting to the
        warm standby when it holds the target, or loading the target. The slot that takes
        the traffic is relabelled with the rollback's assignment tag. Preflight checks the
        target against ``features`` (default: the inputs this server has seen lately); an
        automatic rollback skips it, since traffic must move now.

        ``unless_changed_since`` is the routing generation a gate evaluation saw: if an
        operation has moved traffic since (an operator's deploy or rollback between the
        evaluation and this call), nothing happens and :class:`Superseded` is raised, so a
        verdict on one version never moves traffic away from another.

        Raises:
            RollbackRefused: No version qualifies, or the rollback would change nothing.
            Superseded: Traffic moved since generation ``unless_changed_since``.
        """
        with self._ops:
            if unless_changed_since is not None and self.router.state.generation != unless_changed_since:
                raise Superseded(f"Traffic in {self.env} moved after the gate evaluation.", "Evaluate again.")
            started = time.perf_counter()
            info = self.deployments.rollback_target(self.name, self.env, to)
            state = self.router.state
            live, canary, standby = state.slot(state.live), state.slot(state.canary), state.standby
            if canary is not None and live is not None and live.bundle.info.tag == info.tag:
                target: Slot | None = live  # cancel the canary
            elif canary is None and standby is not None and standby.bundle.info.tag == info.tag:
                target = standby  # the warm standby: a shift, nothing loaded
            else:
                target = None
            bundle = target.bundle if target is not None else load(self.registry, info)
            report = {"verdict": "skipped"} if automatic else self._preflight(bundle, features, force)
            loaded = time.perf_counter()
            bad = [s for s in (canary, live) if s is not None and s.bundle.version != info.version]
            with repo_lock(self.registry.paths.lock_file):
                log = self.log
                baking = target is not None and log is not None and log.stage_of(target.deployment) == "staging"
                tag = self._reserve_tag(info.version, "staging" if baking else "production")
                if baking and target is not None:  # still baking: the bake goes on under the new tag
                    self.deployed_at[tag] = self.deployed_at.get(target.deployment, time.monotonic())
                if target is not None:
                    self.router.rollback(deployment=tag)  # cancels the canary, or makes the standby live
                else:
                    if canary is not None:
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
            quarantined = sum(self._quarantine(s) for s in bad)
            self._record(
                "rollback",
                assignment,
                started,
                loaded,
                shifted,
                previous=bad[0].bundle.version if bad else None,
                automatic=automatic,
                gates=gates,
                quarantined=quarantined,
                **({} if target is not None else {"loaded_from_registry": True}),
            )
            answer = {
                "assignment": assignment.to_dict(),
                "status": self.status(),
                "preflight": report,
                "shift_ms": round((shifted - loaded) * 1000, 3),
            }
            if automatic:  # its hook is on_auto_rollback, run by the watchdog
                return answer
            self.background.order.acquire()
        return self._synced(answer)

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

    def _quarantine(self, slot: Slot) -> int:
        """Quarantine the rows of the version that just lost its traffic."""
        if self.log is None:
            return 0
        return self.log.quarantine(self.name, self.env, slot.bundle.version)

    def _preflight(self, bundle: Any, features: pd.DataFrame | None, force: bool) -> dict[str, Any]:
        sample = features if features is not None else self.recent_inputs()
        live = self.router.state.slot(self.router.state.live)
        consumer = live.bundle.info.tag if live else None
        report = preflight_bundle(self.registry, bundle, sample, consumer=consumer).to_dict()
        refuse_incompatible(bundle.info.tag, report, force, "Nothing was shifted.")
        return report

    def _record(
        self, event: str, assignment: Assignment, started: float, loaded: float, shifted: float, **extra: Any
    ) -> None:
        """Journal a traffic change, then tell :attr:`on_event` (``previous``: the version that lost traffic)."""
        previous = extra.pop("previous", None)
        shift_ms = round((shifted - loaded) * 1000, 3)
        said = {"name": self.name, "env": self.env, "version": assignment.version, "tag": assignment.tag}
        said |= {"action": assignment.action, "reason": assignment.reason}
        total_s = round(time.perf_counter() - started, 4)
        timing = {"load_s": round(loaded - started, 4), "shift_ms": shift_ms, "total_s": total_s}
        self.journal.append(event, **said, incident=assignment.incident, **timing, **extra)
        self.notify(
            TrafficEvent(
                kind=event,
                **said,
                previous=previous,
                shift_ms=shift_ms,
                canary_percent=assignment.canary_percent,
                gates=assignment.gates,
            )
        )

    def notify(self, event: TrafficEvent) -> None:
        """Give ``event`` to :attr:`on_event`; a failing listener never affects serving."""
        if self.on_event is None:
            return
        with contextlib.suppress(Exception):  # a terminal line must never fail an operation
            self.on_event(event)

    # ------------------------------------------------------------------------- watchdog
    def background_failed(self, error: str) -> None:
        """Count an after-rollback hook that failed (shown in :meth:`status`); traffic is never touched."""
        self.background.failed(error)

    def check_gates(self) -> dict[str, Any] | None:
        """Evaluate the gates once and roll back on a failure (:meth:`Watchdog.check`)."""
        return self.watchdog.check()

    def start_watchdog(self, interval: float) -> None:
        """Check gates every ``interval`` seconds in a daemon thread."""
        self.watchdog.start(interval)

    def stop(self, wait: float = 60.0) -> None:
        """Stop the watchdog and give running after-rollback hooks ``wait`` seconds to finish."""
        self.watchdog.stop(wait)

    def status(self) -> dict[str, Any]:
        """``GET /status``: name, env, live, standby, canary, since, gates, and the log's writer.

        Each slot says how many requests it refused as the client's error since it was
        loaded (``client_errors``); those never count as its errors.
        """
        log = self.log.status() if self.log is not None else None
        routing = self.router.status()
        state = self.router.state
        for role, slot in (
            ("live", state.slot(state.live)),
            ("standby", state.standby),
            ("canary", state.slot(state.canary)),
        ):
            if slot is not None and routing.get(role) is not None and routing[role]["slot"] == slot.name:
                routing[role]["client_errors"] = self.windows.client_errors(slot.name, slot.loaded_at)
        said = {"name": self.name, "env": self.env, **routing, "gates": self.last_report, "log": log}
        return {**said, "background": self.background.status()}
