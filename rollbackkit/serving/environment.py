"""One served environment: router + assignments + journal + prediction windows + shadow mirror + watchdog.

This is the object the HTTP server wraps and the tests drive in-process. Its traffic
operations (deploy, promote, advance, rollback) live in :mod:`rollbackkit.serving.operations`;
here are start-up, requests (and their mirror to a shadow), windows and status.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.analysis.times import when
from rollbackkit.errors import IncompatibleInput
from rollbackkit.notify.delivery import Notifier
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Assignment, Deployments, resolve
from rollbackkit.registry.contents import load
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.background import AssignmentHook, Background
from rollbackkit.serving.in_flight import InFlight
from rollbackkit.serving.metrics import ServingMetrics
from rollbackkit.serving.mirrored import KeepFailed, Mirrored, sampled
from rollbackkit.serving.notifying import listener
from rollbackkit.serving.operations import Operations
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Router
from rollbackkit.serving.routing_state import Routed, Slot
from rollbackkit.serving.shadow import Mirror
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.threads import limit_scoring_threads
from rollbackkit.serving.watchdog import Watchdog
from rollbackkit.serving.window import Kept, Windows

if TYPE_CHECKING:
    from rollbackkit.serving.sync import ReplicaSync

RECENT_INPUT_ROWS = 2_000


def _moment(since: str | None, field: str = "since") -> datetime | None:
    """``since`` as a time-zone-aware time, or None, by the one rule (naive: local time) of
    :func:`rollbackkit.analysis.times.when`."""
    moment = when(since, field)
    return None if moment is None else moment.to_pydatetime()


def _plain_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a 0..n-1 index, copied only when it has another (off the hot path's way)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


class ServingEnvironment(Operations):
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
        notifier: Sends each traffic change, gate failure and pause to the ``notify:`` targets
            (:mod:`rollbackkit.serving.notifying`); its counters join :meth:`status` as ``notifications``.
        metrics: Keep Prometheus metrics (:attr:`metrics`, ``GET /metrics``): each request is
            counted on the hot path, traffic changes through :attr:`listeners`.
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
        metrics: bool = True,
        notifier: Notifier | None = None,
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
        # each also gets every TrafficEvent (metrics, notifications); see Recording.notify
        self.listeners: list[Callable[[TrafficEvent], None]] = []
        self.on_assignment = on_assignment
        self.last_report = None
        self._ops = threading.Lock()
        self.windows = Windows(RECENT_INPUT_ROWS)
        # deployment tag -> when it started serving in this process (monotonic): the bake counts from it;
        # an assignment resumed after a restart is absent, its bake starts at its first passing evaluation
        self.deployed_at: dict[str, float] = {}
        self.started_at: dict[str, float] = {}  # deployment tag -> when its assignment began (monotonic)
        self.watchdog = Watchdog(self)
        self.background = Background()
        self.in_flight = InFlight()  # live requests being scored: the shadow's mirror waits for none
        self.mirror = Mirror(self._score_shadow, score_many=self._score_shadows, live=self.in_flight)
        # with a shared store: the replica's link to the environment's other replicas (None: this process alone)
        self.sync: ReplicaSync | None = None
        # signed webhooks (notify: in the config): its listener only queues, a thread sends
        self.notifier = notifier
        if notifier is not None:
            self.listeners.append(listener(notifier))
        self.metrics: ServingMetrics | None = ServingMetrics(self) if metrics else None
        if self.metrics is not None:
            self.listeners.append(self.metrics.on_event)

    @property
    def last_report(self) -> dict[str, Any] | None:
        """The watchdog's latest gate report (``gates`` in :meth:`status`), None before the first."""
        return self._last_report

    @last_report.setter
    def last_report(self, report: dict[str, Any] | None) -> None:
        self._last_report = report
        self.report_at = time.monotonic()  # when the watchdog last wrote it (/metrics: the report's age)

    # ------------------------------------------------------------------------- start-up
    def start(self) -> None:
        """Load what the history says serves here (:meth:`Deployments.state`), and resume it.

        The live version takes all traffic under its assignment's tag. A canary that was
        running when the server stopped is resumed at the same share (a stepped canary at
        its current step), a shadow at the same share of mirrored requests; otherwise the
        automatic rollback target (if any) is loaded warm as the standby. Each assignment's
        start (:meth:`step_started`) is resumed from its tag's time.
        """
        state = self.deployments.state(self.name, self.env)
        live = state.live
        if live is None:
            return
        canary, shadow = state.canary, state.shadow
        if canary is None and shadow is None and state.fallback is not None:
            fallback = self.deployments.history(self.name, self.env)
            tag = next(a.tag for a in reversed(fallback) if a.version == state.fallback)
            self.router.load(self._bundle(state.fallback), tag)
        slot = self.router.load(self._bundle(live.version), live.tag)
        self.router.shift(slot.name, 100)
        self._declare(live, "production")
        if canary is not None:
            self._declare(canary, "staging")
            loaded = self.router.load(self._bundle(canary.version), canary.tag)
            self.router.shift(loaded.name, canary.canary_percent or 0)
        if shadow is not None:
            self._declare(shadow, "shadow")
            self.router.start_shadow(self._bundle(shadow.version), shadow.shadow_percent or 100, shadow.tag)
        for assignment in (live, canary, shadow):
            if assignment is not None:  # monotonic now, less the time since the tag
                self.started_at[assignment.tag] = time.monotonic() - max(0.0, time.time() - assignment.timestamp)
        self.journal.append(
            "serve",
            name=self.name,
            env=self.env,
            version=live.version,
            tag=live.tag,
            canary=canary.version if canary else None,
            canary_percent=state.canary_percent,
            shadow=shadow.version if shadow else None,
        )

    def _bundle(self, version: str) -> Any:
        return load(self.registry, resolve(self.registry, f"{self.name}@{version}"))

    def _declare(self, assignment: Assignment, stage: str) -> None:
        """Declare an assignment's log stage, unless the log knows it (a restart keeps a bake's stage)."""
        if self.log is not None and not self.log.knows(assignment.tag):
            self.log.set_stage(assignment.tag, self.name, self.env, assignment.version, stage)

    def adopted(self, relabelled: Sequence[tuple[str, str]]) -> None:
        """After switching to another replica's operation: a kept slot's new tag bakes on from its old one's start.

        ``relabelled``: ``(new tag, old tag)`` of each slot kept. A version loaded for the
        switch has no bake start here: its bake starts at its first passing evaluation.
        """
        for tag, old in relabelled:
            if tag != old and old in self.deployed_at and self.log is not None and self.log.stage_of(tag) == "staging":
                self.deployed_at.setdefault(tag, self.deployed_at[old])

    def step_started(self, deployment: str) -> float:
        """When the assignment ``deployment`` began (``time.monotonic()``; resumed from its tag after a restart).

        For ``initial_delay`` only: a bake never counts from it after a restart (see :attr:`deployed_at`).
        """
        if deployment not in self.started_at:
            found = next((a for a in self.deployments.history(self.name, self.env) if a.tag == deployment), None)
            age = max(0.0, time.time() - found.timestamp) if found is not None else 0.0
            self.started_at[deployment] = time.monotonic() - age
        return self.started_at[deployment]

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

        Once the live answer is computed, a running shadow gets the request when it is in
        the shadow's sampled share (:func:`~rollbackkit.serving.mirrored.sampled`): a
        reference on the mirror's queue, scored off the request path, and only while no
        live request is being scored (:attr:`in_flight`).

        Args:
            frame: The request's features.
            key: Sticky canary routing key, logged with the rows (without one, the request id
                routes the request).
            request_id: Logged with the rows (default: a fresh one).
            untyped: The frame came from JSON rows without dtypes: its columns are read with
                the scoring version's dtypes where nothing is lost (see
                :func:`rollbackkit.bundle.conform.conform`), and kept that way.
        """
        state = self.router.state
        limit_scoring_threads(self.scoring_threads, state.generation)
        when = datetime.now(UTC)
        request_id = request_id or uuid.uuid4().hex
        started = time.perf_counter()
        slot = self.router.route(key if key is not None else request_id)
        metrics = self.metrics
        with self.in_flight:
            try:
                routed = self.router.score(slot, frame, untyped=untyped)
            except IncompatibleInput:  # the client's error: counted apart, never a gate's evidence
                self.windows.refused(slot.name, slot.loaded_at)
                if metrics is not None:
                    metrics.observe(slot, "client_error", time.perf_counter() - started, len(frame))
                raise
            except Exception as exc:  # the model failed on a compatible request: its slot's error
                self._keep(slot, frame, None, float("nan"), type(exc).__name__, (request_id, when, key))
                if metrics is not None:
                    metrics.observe(slot, "error", time.perf_counter() - started, len(frame))
                raise
            self._keep(routed.slot, routed.inputs, routed.outputs, routed.latency_ms, None, (request_id, when, key))
        if metrics is not None:
            metrics.observe(routed.slot, "ok", time.perf_counter() - started, len(routed.outputs))
        shadow = state.slot(state.shadow)
        if shadow is not None and sampled(request_id, state.shadow_percent):
            self.mirror.offer(Mirrored(shadow, frame, untyped, request_id, when, key))
        return routed

    def _score_shadow(self, request: Mirrored) -> bool:
        """Score one mirrored request with its shadow and keep its rows (the mirror's worker calls this).

        Returns False when that shadow no longer runs. Raises what the shadow raised: a
        refusal (:class:`IncompatibleInput`) is kept nowhere, a model failure is kept as the
        shadow's error row; either is counted by the mirror, never the client's.
        """
        return self._score_shadows([request])[0]

    def _score_shadows(self, requests: Sequence[Mirrored]) -> list[bool]:
        """Score mirrored requests in one model call and keep each one's rows (one bool each, as one request).

        Several requests must share a slot, columns and dtypes (typed frames); their rows keep
        no latency (the call answered them together) and a failure keeps no error row: it is
        raised, and the mirror scores them one by one.
        """
        state = self.router.state
        slot = requests[0].slot
        if state.slot(state.shadow) is not slot:
            return [False] * len(requests)
        limit_scoring_threads(self.scoring_threads, state.generation)  # the worker's pools: as live's
        one = requests[0] if len(requests) == 1 else None
        keys = [(r.request_id, r.when, r.key) for r in requests]
        frame = one.frame if one is not None else pd.concat([r.frame for r in requests], ignore_index=True)
        try:
            routed = self.router.score(slot, frame, untyped=one is not None and one.untyped)
        except IncompatibleInput:
            raise
        except Exception as exc:
            if one is not None:
                self._keep(slot, one.frame, None, float("nan"), type(exc).__name__, keys[0], recent=False)
            raise
        if one is not None:
            self._keep(slot, routed.inputs, routed.outputs, routed.latency_ms, None, keys[0], recent=False)
            return [True]
        if len(routed.outputs) != len(frame):
            raise ValueError(f"{len(routed.outputs)} answers for {len(frame)} rows")
        start = 0
        for kept, (request, key) in enumerate(zip(requests, keys, strict=True)):
            self.mirror.yield_to_live()  # each request's rows are kept between live requests
            outputs, start = routed.outputs.iloc[start : start + len(request.frame)], start + len(request.frame)
            try:
                self._keep(slot, request.frame, outputs, float("nan"), None, key, recent=False)
            except Exception as exc:  # the ones kept stay kept: never scored (and logged) twice
                raise KeepFailed(kept, exc) from exc
        return [True] * len(requests)

    def _keep(
        self,
        slot: Slot,
        frame: pd.DataFrame,
        outputs: pd.DataFrame | None,
        latency_ms: float,
        error: str | None,
        keys: tuple[str, datetime, str | None],
        *,
        recent: bool = True,
    ) -> None:
        """Queue the request for the log (or window it in memory); keep scored inputs for preflight.

        ``keys``: the request id, time and routing key. Only scored
        requests feed :meth:`recent_inputs` (and a shadow's never, ``recent`` false): a
        refused request must not make the next deploy's preflight fail on inputs nobody scored.
        """
        request_id, when, key = keys
        inputs = _plain_index(frame)
        outputs = _plain_index(outputs) if outputs is not None else None
        kept = Kept(inputs, outputs, latency_ms, error, request_id, when, key)
        # with a log, gate windows come from it
        self.windows.keep(slot.name, slot.loaded_at, kept, windowed=self.log is None, recent=recent)
        if self.log is None:
            return
        bundle = slot.bundle
        meta = {"request_id": request_id, "time": when, "env": self.env, "name": self.name, "key": key}
        meta |= {"version": bundle.version, "bundle_id": bundle.bundle_id, "slot": slot.name}
        meta |= {"deployment": slot.deployment, "latency_ms": latency_ms, "error": error}
        meta["primary"] = bundle.schema.output.primary
        self.log.record(meta, inputs, outputs)

    def window(self, slot: Slot, *, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """The recent requests of one deployment as a gate window (rows at or after ISO time ``since``
        and, read before the row cap, at or before ``until``: the newest rows up to that time).

        From the durable prediction log when the server keeps one (so a restarted server
        still sees the window; a shadow's rows from its own table), else from the bounded
        in-memory window of the slot load. Columns: inputs, outputs, ``latency_ms``,
        ``error``, ``time``, ``request_id``, ``row``, ``key`` (and ``label`` from the log).

        Raises:
            InvalidInput: ``since`` or ``until`` is not an ISO 8601 time.
        """
        moment, end = _moment(since), _moment(until, "until")
        if self.log is not None:
            where: dict[str, Any] = {"deployment": slot.deployment, "limit": WINDOW_ROWS}
            if moment is not None:
                where["since"] = moment.isoformat()
            if end is not None:
                where["until"] = end.isoformat()
            return self.log.window(self.name, self.env, **where)
        frame = self.windows.frame(slot.name, slot.loaded_at, moment)
        return frame if end is None or frame.empty else frame[frame["time"] <= pd.Timestamp(end)]

    def recent_inputs(self) -> pd.DataFrame | None:
        """A sample of the inputs this server has scored lately (for preflight), in the dtypes scored.

        With a shared store, the environment's (every replica's) from the log.
        """
        shared = getattr(self.log, "recent_inputs", None) if self.sync is not None else None
        if shared is not None:
            return shared(self.name, self.env)  # type: ignore[no-any-return]
        return self.windows.recent()

    # ------------------------------------------------------------------------- watchdog
    def background_failed(self, error: str) -> None:
        """Count an after-rollback hook that failed (shown in :meth:`status`); traffic is never touched."""
        self.background.failed(error)

    def retry_pending(self) -> None:
        """Retry the log steps that failed after a shift (``background.pending``; the watchdog's thread)."""
        self.background.retry(self._ops)

    def check_gates(self) -> dict[str, Any] | None:
        """Evaluate the gates once and roll back on a failure (:meth:`Watchdog.check`)."""
        return self.watchdog.check()

    def start_watchdog(self, interval: float) -> None:
        """Check gates every ``interval`` seconds in a daemon thread."""
        self.watchdog.start(interval)

    def stop(self, wait: float = 60.0) -> None:
        """Stop the watchdog and the shadow's mirror; give running after-rollback hooks ``wait`` seconds to finish."""
        self.mirror.stop(min(wait, 5.0))
        self.watchdog.stop(wait)

    def status(self) -> dict[str, Any]:
        """``GET /status``: name, env, live, standby, canary, shadow, since, gates, and the log's writer.

        Each slot says how many requests it refused as the client's error since it was
        loaded (``client_errors``); those never count as its errors. A running shadow says
        its share and the mirror's counters (``mirrored``, ``dropped``, ``failed``,
        ``queued``, ``last_error``, since the server started); ``mirror`` keeps them once it has stopped.
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
        mirror = self.mirror.status().to_dict()
        if routing.get("shadow") is not None:
            routing["shadow"] |= mirror
        said = {"name": self.name, "env": self.env, **routing, "gates": self.last_report, "log": log}
        if self.sync is not None:
            said["replica"] = self.sync.status()
        if self.notifier is not None:  # deliveries by this process, and what waits in the outbox
            said["notifications"] = self.notifier.status().to_dict()
        return {**said, "mirror": mirror, "background": self.background.status()}
