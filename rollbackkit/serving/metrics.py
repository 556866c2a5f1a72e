"""``GET /metrics``: one served environment's signals in Prometheus' text format.

:class:`ServingMetrics` keeps its own ``CollectorRegistry`` (never the global one: two
environments in one process never clash). What only a request knows is counted as it
happens, on the hot path (:meth:`ServingMetrics.observe`: a dict hit and a few atomic
increments); traffic changes and rollbacks come from the environment's listeners
(:meth:`ServingMetrics.on_event`); everything else the environment already keeps (routing,
gate report, log writer, shadow mirror, replicas, notifications) is read at scrape time by
:class:`~rollbackkit.serving.metrics_state.StateCollector`, within a bounded wait.

Every metric has the labels ``model`` and ``env``. No label ever holds a feature value, a
predicted label, a request key or a secret: versions, slots, roles, gate names, outcomes,
actions and reasons only (bounded sets). The names are what ``contrib/``'s dashboard and
alert rules read; the README's "Metrics" table lists them.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import choose_encoder

from rollbackkit.errors import MetricsBusy
from rollbackkit.serving.metrics_state import READ_BUDGET, StateCollector
from rollbackkit.serving.status import CHANGES, TrafficEvent

if TYPE_CHECKING:
    from rollbackkit.serving.routing_state import Slot

Outcome = Literal["ok", "client_error", "error"]
_OUTCOMES: tuple[Outcome, ...] = ("ok", "client_error", "error")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: ``rollbackkit_request_duration_seconds``' buckets (routing to answer, inside the server)."""

ACTIONS = CHANGES
"""``rollbackkit_traffic_changes_total``'s ``action`` values, each from 0 (the public words of status.CHANGES)."""

REUSE_S = 5.0
"""Seconds a body rendered for one scrape is handed to a scrape that arrives while the next renders;
older, that scrape waits for the body being rendered (at most ``READ_BUDGET`` + 1 s)."""

disable_created_metrics()  # no ``*_created`` series: half the lines of a scrape, nothing a dashboard reads


class _Children(NamedTuple):
    """One slot load's hot-path series, resolved once (no label lookup per request)."""

    ok: Any
    client_error: Any
    error: Any
    duration: Any
    rows: Any


class ServingMetrics:
    """The metrics of one :class:`~rollbackkit.serving.environment.ServingEnvironment`.

    Attributes:
        registry: Its own registry (``exposition`` renders it).
        refused: Requests refused before any slot saw them, by the app's counter names
            (``bad_predict_bodies``, ``bad_admin_bodies``, ``unauthorised``); the HTTP app sets it.
    """

    def __init__(self, environment: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._base = (environment.name, environment.env)
        base = ["model", "env"]
        self.requests = Counter(
            "rollbackkit_requests_total",
            "Prediction requests by version, slot and outcome (client_error: refused as the client's; "
            "error: the model failed).",
            [*base, "version", "slot", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "rollbackkit_request_duration_seconds",
            "Routing to answer inside the server, for requests a version scored or failed on.",
            [*base, "version"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "rollbackkit_rows_scored_total", "Rows scored by version.", [*base, "version"], registry=self.registry
        )
        self.changes = Counter(
            "rollbackkit_traffic_changes_total",
            "Traffic changes this process made, by action.",
            [*base, "action"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "rollbackkit_rollbacks_total",
            "Rollbacks this process made: kind manual|automatic; reason: the failed gates joined by '+', or manual.",
            [*base, "kind", "reason"],
            registry=self.registry,
        )
        build = Gauge("rollbackkit_build_info", "The rollbackkit that serves.", [*base, "rollbackkit_version"],
                      registry=self.registry)  # fmt: skip
        build.labels(*self._base, _version()).set(1)
        for action in ACTIONS:
            self.changes.labels(*self._base, action)
        self.rollbacks.labels(*self._base, "manual", "manual")
        self.refused: Mapping[str, int] | None = None
        self.signals: Any = None  # the app's SignalCounts (scrapes refused, /analysis unanswered); read at scrape
        self.environment = environment
        self._children: dict[tuple[str, str], _Children] = {}
        self._expected: set[str] = set()  # gates whose automatic-rollback series exists (at 0 until one)
        self._rendering = threading.Lock()  # one scrape renders at a time; the others get a recent body
        self._rendered: dict[str, tuple[float, bytes]] = {}  # content type -> when (monotonic) and the last body
        self.collector = StateCollector(environment, self)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)

    # ------------------------------------------------------------------------- the hot path
    def observe(self, slot: Slot, outcome: Outcome, seconds: float, rows: int) -> None:
        """Count one request ``slot`` answered (``ok``), refused (``client_error``) or failed on (``error``)."""
        children = self._children.get((slot.name, slot.bundle.version))
        if children is None:
            children = self._resolve(slot)
        if outcome == "ok":
            children.ok.inc()
            children.duration.observe(seconds)
            children.rows.inc(rows)
        elif outcome == "error":
            children.error.inc()
            children.duration.observe(seconds)
        else:
            children.client_error.inc()

    def _resolve(self, slot: Slot) -> _Children:
        version = slot.bundle.version
        ok, refused, error = (self.requests.labels(*self._base, version, slot.name, o) for o in _OUTCOMES)
        duration = self.duration.labels(*self._base, version)
        children = _Children(ok, refused, error, duration, self.rows.labels(*self._base, version))
        self._children[(slot.name, version)] = children
        return children

    # ------------------------------------------------------------------------- the listener
    def on_event(self, event: TrafficEvent) -> None:
        """A listener of the environment's traffic events: counts traffic changes and rollbacks."""
        action = event.change
        if action is None:
            return
        self.expect_rollbacks()
        self.changes.labels(*self._base, action).inc()
        if event.kind == "rollback":
            automatic = event.action == "auto-rollback"
            reason = "+".join(event.failed_gates) or "unknown" if automatic else "manual"
            self.rollbacks.labels(*self._base, "automatic" if automatic else "manual", reason).inc()

    def expect_rollbacks(self) -> None:
        """Create ``rollbackkit_rollbacks_total{kind="automatic", reason=G}`` at 0 for each rollback
        gate ``G`` of what is in a slot (at each traffic change and scrape), so that ``increase()``
        sees a first automatic rollback: a series born at 1 has no increase."""
        state = getattr(getattr(self.environment, "router", None), "state", None)
        if state is None:
            return
        for slot in (s for s in state.roles().values() if s is not None):
            for gate in (getattr(slot.bundle, "gates", None) or {}).get("gates") or []:
                name = gate.get("name")
                if name and gate.get("severity", "rollback") == "rollback" and name not in self._expected:
                    self._expected.add(name)
                    self.rollbacks.labels(*self._base, "automatic", name)

    # ------------------------------------------------------------------------- the scrape
    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body and content type of ``GET /metrics`` (OpenMetrics when ``accept`` asks for it).

        One scrape renders at a time (it may wait for the log writer or the store, up to
        :data:`~rollbackkit.serving.metrics_state.READ_BUDGET`). A scrape arriving meanwhile gets
        the last body at once when it is at most :data:`REUSE_S` old; else it waits for the body
        being rendered (or renders one), and gets :class:`~rollbackkit.errors.MetricsBusy` only
        after ``READ_BUDGET`` + 1 s: scrapes never pile up on the threads that serve ``/predict``,
        and no scrape is handed a picture older than ``REUSE_S``.
        """
        encoder, content_type = choose_encoder(accept)
        arrived = time.monotonic()
        if not self._rendering.acquire(blocking=False):
            at, last = self._rendered.get(content_type, (-REUSE_S - 1.0, b""))
            if arrived - at <= REUSE_S:  # recent enough
                return last, content_type
            if not self._rendering.acquire(timeout=READ_BUDGET + 1.0):  # wait for the body being rendered, bounded
                raise MetricsBusy(
                    "Another scrape of /metrics is being rendered.", "Scrape again; one scrape at a time is served."
                )
            at, last = self._rendered.get(content_type, (-REUSE_S - 1.0, b""))
            if arrived - at <= REUSE_S:  # the body rendered while this scrape waited
                self._rendering.release()
                return last, content_type
        try:
            self.expect_rollbacks()
            began = time.monotonic()  # a body is as old as the moment its rendering began
            body = encoder(self.registry)
            self._rendered[content_type] = (began, body)
        finally:
            self._rendering.release()
        return body, content_type


def _version() -> str:
    """The installed rollbackkit's version (``unknown`` when it is not installed)."""
    try:
        return importlib.metadata.version("rollbackkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
