"""One served environment: router + assignments + journal + prediction windows + shadow mirror + watchdog.

This is the object the HTTP server wraps and the tests drive in-process. Its traffic
operations (deploy, promote, advance, rollback) live in :mod:`rollbackkit.serving.operations`,
its requests (and their mirror to a shadow) and windows in :mod:`rollbackkit.serving.request_path`;
here are start-up, the watchdog and status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.notify.delivery import Notifier
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Assignment, Deployments, resolve
from rollbackkit.registry.contents import load
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.background import AssignmentHook, Background
from rollbackkit.serving.in_flight import InFlight
from rollbackkit.serving.metrics import ServingMetrics
from rollbackkit.serving.notifying import listener
from rollbackkit.serving.operations import Operations
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.request_path import RequestPath
from rollbackkit.serving.router import Router
from rollbackkit.serving.shadow import Mirror
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.watchdog import Watchdog
from rollbackkit.serving.window import Windows

if TYPE_CHECKING:
    from rollbackkit.serving.sync import ReplicaSync

RECENT_INPUT_ROWS = 2_000


class ServingEnvironment(RequestPath, Operations):
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
