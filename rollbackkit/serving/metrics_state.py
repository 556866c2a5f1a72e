"""The state a served environment already keeps, read at scrape time as Prometheus metrics.

:class:`StateCollector` is the custom collector of :class:`~rollbackkit.serving.metrics.ServingMetrics`.
Routing, the gate report, the shadow mirror and ``background`` are read from memory. What
may block (the log writer process, which a long backfill holds; the shared store) is read
by :class:`BoundedReads` in a daemon thread and waited for at most :data:`READ_BUDGET`
seconds in all: a read that does not answer in time is counted
(``rollbackkit_metrics_unread_total{source}``), so a scrape never hangs on the writer or the
store, and never more than one read per source is in flight. A source's last answer is shown
for at most :data:`STALE_AFTER` seconds (``rollbackkit_metrics_read_age_seconds{source}``);
older, it is no longer believed: the log says unreachable, the replicas' state ``unknown``.
What the server process counts itself (a log writer's ``dropped``, ``restarts``, backlog and
whether the child still runs) is read directly, so a stuck writer shows at once.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

READ_BUDGET = 0.5
"""Seconds a scrape waits, in all, for the reads that may block (log writer, store)."""

STALE_AFTER = 5.0
"""Seconds after which a source's last answer is no longer shown as the present (see above)."""

HISTORY_DROPPED_HELP = (
    "Watchdog evaluations the gate history lost, by reason: repeat (an unchanged run trimmed while the writer "
    "lagged; harmless), change (a change of run dropped past the memory bound), write_failed (the log or store "
    "refused it), not_built (its record raised)."
)
"""The HELP of ``rollbackkit_gate_history_dropped_total``: every reason of
:data:`~rollbackkit.serving.background.HISTORY_DROPS`, in a few words each."""

GATE_STATUSES = ("pass", "warn", "fail", "inconclusive", "error")
DECISIONS = ("rollback", "warn", "inconclusive", "pass")
REFUSALS = {
    "bad_predict_bodies": "bad_predict_body",
    "bad_admin_bodies": "bad_admin_body",
    "unauthorised": "unauthorised",
}
_ABSOLUTE = ("max_ms", "max", "min")  # a gate's bound in the unit of its observed value


class BoundedReads:
    """Reads that may block, each in a daemon thread, waited for within a scrape's budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._answers: dict[str, Any] = {}
        self._since: dict[str, float] = {}  # source -> when its last answer was read (else first asked; monotonic)
        self.unread: dict[str, int] = {}

    def start(self, source: str, read: Callable[[], Any]) -> None:
        """Start reading ``source`` unless its previous read still runs."""
        with self._lock:
            running = self._running.get(source)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=self._read, args=(source, read), name="rollbackkit-metrics-read")
            thread.daemon = True
            self._running[source] = thread
            self._since.setdefault(source, time.monotonic())
            thread.start()  # under the lock: a concurrent result() never joins a thread not yet started

    def _read(self, source: str, read: Callable[[], Any]) -> None:
        try:
            answer = read()
        except Exception:  # counted as unread; the last answer stays
            with self._lock:
                self.unread[source] = self.unread.get(source, 0) + 1
            return
        with self._lock:
            self._answers[source] = answer
            self._since[source] = time.monotonic()

    def result(self, source: str, deadline: float) -> Any:
        """``source``'s answer once read by ``deadline`` (monotonic), else its last answer (None: never read)."""
        with self._lock:
            thread = self._running.get(source)
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                with self._lock:
                    self.unread[source] = self.unread.get(source, 0) + 1
        with self._lock:
            return self._answers.get(source)

    def age(self, source: str) -> float:
        """Seconds since ``source`` last answered (since it was first asked, when it never did)."""
        with self._lock:
            return time.monotonic() - self._since.get(source, time.monotonic())

    def status(self) -> dict[str, dict[str, float]]:
        """Each source asked so far: its reads not answered in time (``unread``) and ``read_age_s`` (``/status``)."""
        with self._lock:
            sources = sorted(self._since)
            unread = dict(self.unread)
        ages = {source: round(self.age(source), 3) for source in sources}
        return {source: {"unread": unread.get(source, 0), "read_age_s": ages[source]} for source in sources}


class _Families:
    """Metric families under construction, each with the ``model`` and ``env`` labels first."""

    def __init__(self, base: tuple[str, str]) -> None:
        self.base = base
        self.made: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

    def add(self, kind: str, name: str, doc: str, value: float | None, **labels: str) -> None:
        """One sample (left out when ``value`` is None or NaN)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        family = self.made.get(name)
        if family is None:
            maker = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = self.made[name] = maker(name, doc, labels=["model", "env", *labels])  # type: ignore[abstract]
        family.add_metric([*self.base, *labels.values()], float(value))


class StateCollector(Collector):
    """Reads routing, gates, log, background, mirror, replicas and notifications at each scrape."""

    def __init__(self, environment: Any, metrics: Any) -> None:
        self.environment = environment
        self.metrics = metrics
        self.reads = BoundedReads()

    def describe(self) -> list[Metric]:
        """Nothing up front: the families depend on what is served (no collect at registration)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every family the environment's state gives now."""
        env = self.environment
        out = _Families((env.name, env.env))
        log = getattr(env, "log", None)
        table = getattr(env, "replica_table", None) if env.sync is not None else None
        shared = table is not None
        if log is not None:
            self.reads.start("log", lambda: _log_status(log))
        if table is not None:
            self.reads.start("replicas", lambda: (table.list(env.name, env.env), env.leadership.status()))
        self._routing(out)
        self._gates(out)
        self._background(out)
        self._notifications(out)
        deadline = time.monotonic() + READ_BUDGET
        if log is not None:
            said = self.reads.result("log", deadline)
            self._log(out, said, _counts(log), self.reads.age("log") > STALE_AFTER)
        if shared:
            said = self.reads.result("replicas", deadline)
            self._replicas(out, said, self.reads.age("replicas") > STALE_AFTER)
        for source in [*(["log"] if log is not None else []), *(["replicas"] if shared else [])]:
            doc = "Scrapes that could not read a source in time, by source."
            out.add("counter", "rollbackkit_metrics_unread", doc, self.reads.unread.get(source, 0), source=source)
            doc = f"Seconds since a source last answered; past {STALE_AFTER:g} its last answer is not shown."
            out.add("gauge", "rollbackkit_metrics_read_age_seconds", doc, self.reads.age(source), source=source)
        yield from out.made.values()

    def _routing(self, out: _Families) -> None:
        state = self.environment.router.state
        canary_share = state.percent / 100 if state.canary else 0.0
        shares = {"live": 1.0 - canary_share, "canary": canary_share, "shadow": state.shadow_percent / 100}
        for role, slot in state.roles().items():
            if slot is None:
                continue
            share = shares.get(role, 0.0)  # a standby takes none
            version = slot.bundle.version
            doc = "Share of requests (0..1) by role; a shadow's: the share of requests it mirrors."
            out.add("gauge", "rollbackkit_traffic_share", doc, share, version=version, slot=slot.name, role=role)
            info = {"version": version, "slot": slot.name, "role": role}
            info |= {"bundle_id": slot.bundle.bundle_id, "deployment": slot.deployment}
            out.add("gauge", "rollbackkit_serving_info", "What serves, by role (always 1).", 1.0, **info)
        out.add("gauge", "rollbackkit_routing_generation", "Traffic moves since start.", float(state.generation))
        refused = self.metrics.refused
        if refused is not None:
            for key, reason in REFUSALS.items():
                doc = "Requests refused before any version saw them, by reason."
                out.add("counter", "rollbackkit_refused_requests", doc, refused.get(key, 0), reason=reason)
        signals = getattr(self.metrics, "signals", None)
        if signals is not None:
            doc = "Scrapes of /metrics answered 503: another scrape was rendering and no recent body could be reused."
            out.add("counter", "rollbackkit_metrics_refused", doc, signals.scrapes_refused)
            for reason, value in (("error", signals.analysis_errors), ("waiting", signals.analysis_waiting)):
                doc = "GET /analysis answers without a verdict (503): the evaluation raised, or waited too long."
                out.add("counter", "rollbackkit_analysis_unanswered", doc, value, reason=reason)

    def _gates(self, out: _Families) -> None:
        env = self.environment
        errors = getattr(getattr(env, "watchdog", None), "errors", None)
        doc = "Gate evaluations and gates that raised since the server started."
        out.add("counter", "rollbackkit_watchdog_errors", doc, getattr(errors, "count", 0))
        report = env.last_report
        if not report:
            return
        version = bare(report.get("version"))
        if version not in _served(env.router.state):
            return  # a version rolled back or replaced: its gates are history (the journal keeps them)
        doc = "Seconds since the gates were last evaluated (the watchdog's latest report)."
        out.add(
            "gauge", "rollbackkit_gate_report_age_seconds", doc, report_age(report, getattr(env, "report_at", None))
        )
        for decision in DECISIONS:
            doc = "The latest gate report's decision (1) and the others (0)."
            value = float(report.get("decision") == decision)
            out.add("gauge", "rollbackkit_gate_decision", doc, value, version=version, decision=decision)
        for gate in report.get("gates") or []:
            name = str(gate.get("name", ""))
            doc = "A gate's last observed value."
            out.add("gauge", "rollbackkit_gate_value", doc, _number(gate.get("observed")), version=version, gate=name)
            bounds = gate.get("threshold") or {}
            bound = next((_number(bounds[k]) for k in _ABSOLUTE if k in bounds), None)
            doc = "A gate's bound, in the unit of its value (max_ms, max or min)."
            out.add("gauge", "rollbackkit_gate_threshold", doc, bound, version=version, gate=name)
            status = gate_status(gate)
            for each in GATE_STATUSES:
                doc = "A gate's last status (1) and the others (0)."
                value = float(each == status)
                out.add("gauge", "rollbackkit_gate_status", doc, value, version=version, gate=name, status=each)

    def _background(self, out: _Families) -> None:
        env = self.environment
        said = env.background.status()
        out.add(
            "counter", "rollbackkit_background_failures", "Work after traffic changes that failed.", said["failures"]
        )
        out.add("gauge", "rollbackkit_background_pending", "Log steps waiting for a retry.", len(said["pending"]))
        for reason, value in said["gate_history_dropped"].items():
            out.add("counter", "rollbackkit_gate_history_dropped", HISTORY_DROPPED_HELP, value, reason=reason)
        mirror = env.mirror.status()
        for name, value, doc in (
            ("mirrored", mirror.mirrored, "Mirrored requests a shadow scored."),
            ("dropped", mirror.dropped, "Mirrored requests dropped: the mirror's queue was full."),
            ("failed", mirror.failed, "Mirrored requests a shadow failed on."),
        ):
            out.add("counter", f"rollbackkit_shadow_{name}", doc, value)

    def _log(self, out: _Families, said: dict[str, Any] | None, counts: dict[str, Any], stale: bool) -> None:
        said = {**(said or {}), **counts}  # what this process counts itself is always current
        backlog = said.get("buffered", said.get("backlog"))
        out.add("gauge", "rollbackkit_log_backlog_rows", "Rows (or requests) waiting to be written.", backlog)
        for key, name, doc in (
            ("write_errors", "write_errors", "Log commits that failed."),
            ("restarts", "writer_restarts", "Times the log's writer process was started again."),
            ("dropped", "dropped_rows", "Requests (or store rows) dropped: the log's buffer was full."),
            ("sink_errors", "sink_errors", "Log sink deliveries that failed."),
        ):
            out.add("counter", f"rollbackkit_log_{name}", doc, said.get(key, 0))
        reachable = said.get("reachable", said.get("alive", True)) and not stale
        doc = f"1 when the log's writer (process or shared store) runs and answered within {STALE_AFTER:g} s."
        out.add("gauge", "rollbackkit_log_store_reachable", doc, float(bool(reachable)))

    def _replicas(self, out: _Families, said: tuple[list[Any], dict[str, Any]] | None, stale: bool) -> None:
        env = self.environment
        sync = env.sync
        doc = "Failures to follow the shared store (store errors, versions it could not load)."
        out.add("counter", "rollbackkit_sync_failures", doc, getattr(sync, "failures", 0))
        if said is None or stale:  # the store does not answer: what it last said is no longer the picture
            known = len(said[0]) if said is not None else 0
            for state in ("serving", "lagging", "stale", "error", "unknown"):
                value = float(known if state == "unknown" else 0)
                out.add("gauge", "rollbackkit_replicas", "The environment's replicas by state.", value, state=state)
            return
        records, leadership = said
        newest = max((r.generation or 0 for r in records if r.fresh), default=sync.generation)
        states = dict.fromkeys(("serving", "lagging", "stale", "error"), 0)
        for record in records:
            generation = record.generation or 0
            state = (
                "error"
                if record.error
                else "stale"
                if not record.fresh
                else "lagging"
                if generation < newest
                else "serving"
            )
            states[state] += 1
            doc = "The routing generation each replica serves."
            out.add("gauge", "rollbackkit_replica_generation", doc, generation, replica=record.replica)
        for state, count in states.items():
            out.add("gauge", "rollbackkit_replicas", "The environment's replicas by state.", count, state=state)
        doc = "Generations this replica is behind the newest one a replica serves."
        out.add("gauge", "rollbackkit_replica_behind", doc, max(0, newest - sync.generation))
        doc = "1 when this replica's watchdog leads (evaluates the gates)."
        out.add("gauge", "rollbackkit_watchdog_leader", doc, float(bool(leadership.get("leading"))))

    def _notifications(self, out: _Families) -> None:
        notifier = getattr(self.environment, "notifier", None)
        if notifier is None:
            return
        said_all = notifier.status()
        doc = "Notification journal entries, outbox writes and delivery loops that failed."
        out.add("counter", "rollbackkit_notification_errors", doc, getattr(said_all, "errors", 0))
        doc = "Notices kept in memory because the outbox could not be written (retried)."
        out.add("gauge", "rollbackkit_notifications_unsaved", doc, getattr(said_all, "unsaved", 0))
        doc = "Notices not sent because notify: was broken when they happened (journaled)."
        out.add("counter", "rollbackkit_notification_config_errors", doc, getattr(said_all, "config_errors", 0))
        targets = getattr(said_all, "targets", {}) or {}
        for target, said in targets.items():
            doc = "Outbox entries that could not be read (kept as .bad files for a person), by target."
            out.add("gauge", "rollbackkit_notifications_unreadable", doc, getattr(said, "unreadable", 0), target=target)
            for outcome in ("delivered", "failed"):
                doc = "Notifications by target and final outcome."
                value = getattr(said, outcome, 0)
                out.add("counter", "rollbackkit_notifications", doc, value, target=target, outcome=outcome)
            doc = "Notification attempts retried, by target."
            out.add("counter", "rollbackkit_notification_retries", doc, getattr(said, "retries", 0), target=target)
            doc = "Notifications waiting in the outbox, by target."
            out.add("gauge", "rollbackkit_notifications_queued", doc, getattr(said, "queued", 0), target=target)


def bare(version: Any) -> str:
    """``v1.1.0`` from ``model@v1.1.0`` (a gate report names the bundle), or ``version`` as it is."""
    return str(version or "").rpartition("@")[2]


def report_age(report: dict[str, Any], written: float | None) -> float | None:
    """Seconds since the report's ``evaluated_at``, else since it was written (``written``: monotonic)."""
    at = report.get("evaluated_at")
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds())
    return time.monotonic() - written if written is not None else None


def gate_status(gate: dict[str, Any]) -> str:
    """A gate result's status as a metric says it: ``error`` (it raised), ``warn`` (a warn-severity
    failure), ``fail``, ``pass``, else ``inconclusive`` (insufficient, inconclusive or skipped)."""
    if (gate.get("evidence") or {}).get("error"):
        return "error"
    status = gate.get("status")
    if status == "fail":
        return "warn" if gate.get("severity") == "warn" else "fail"
    return "pass" if status == "pass" else "inconclusive"


def _number(value: Any) -> float | None:
    """``value`` as a finite-or-infinite float; None for None, NaN and what is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _log_status(log: Any) -> dict[str, Any]:
    """The log's ``status()`` (a writer process asked for at most the read budget)."""
    try:
        return dict(log.status(wait=READ_BUDGET))
    except TypeError:  # a log in this process: its status takes no wait
        return dict(log.status())


def _counts(log: Any) -> dict[str, Any]:
    """What the server process counts itself about its log writer (``LogProcess.counts``), read without asking it."""
    counts = getattr(log, "counts", None)
    return dict(counts()) if callable(counts) else {}


def _served(state: Any) -> set[str]:
    """The versions in a slot now (live, canary, shadow, standby)."""
    return {slot.bundle.version for slot in state.roles().values() if slot is not None}
