"""Gates over time: every watchdog evaluation, recorded as it was seen then, thinned to stay small.

The watchdog hands each evaluation to :class:`GateRecorder`, which stores a
:class:`GateEvaluation` in the prediction log (the DuckDB file through its writer process, or
the shared store's ``gate_evaluations``), so every replica reads one history. Each evaluation
lost is counted by reason (``gate_history_dropped`` in ``/status``,
``rollbackkit_gate_history_dropped_total{reason}`` in ``/metrics``); a failed write is also a
background failure; nothing is raised into the watchdog.

Recording never holds the watchdog up: :class:`GateRecorder` hands each evaluation to one
background writer (in order), after the watchdog has decided and acted. When :data:`PENDING`
wait, one *repeat* is dropped and counted (an evaluation whose run signature, see
:attr:`GateEvaluation.signature`, is its predecessor's: deployment, version, role, decision, each
gate's status and failure streak; its run's row loses one value, never a step; harmless, so no
background failure); a change of run (a decision, a gate's status or streak) is never dropped (up
to :data:`CHANGES_LIMIT` waiting changes, a memory bound).
Thinning (:mod:`rollbackkit.serving.gate_rows`): every change of decision is kept, runs of like
evaluations share rows, each gate keeping the lowest and highest value merged; rows are pruned
with the log's retention (``prune(days)``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollbackkit.analysis.gateresult import GateReport, GateResult
from rollbackkit.analysis.series import json_safe
from rollbackkit.serving.background import Background, HistoryDrop

PENDING = 256
"""Evaluations that may wait for the writer; past it a waiting repeat is dropped (counted)."""

CHANGES_LIMIT = 10_000
"""Waiting evaluations kept at most when none is a repeat (a store away for hours while the
decision flaps): past it the oldest waiting change is dropped, counted apart (a memory bound)."""

HISTORY_LIMIT = 100_000
"""The most records one read of a log returns (the newest ones)."""

MOST = 5_000
"""The most evaluations a history answer holds by default (thinned: :func:`~rollbackkit.serving.gate_thin.thin`)."""

GATE_COLUMNS = (
    "name VARCHAR, env VARCHAR, time TIMESTAMPTZ, first TIMESTAMPTZ, run_start TIMESTAMPTZ, "
    "evaluations INTEGER, run_evaluations INTEGER, deployment VARCHAR, version VARCHAR, role VARCHAR, "
    "decision VARCHAR, n INTEGER, signature VARCHAR, gates VARCHAR, error VARCHAR"
)
"""The ``gate_evaluations`` table (DuckDB types; the store maps them): one row per kept evaluation."""

FIELDS = tuple(part.split()[0] for part in GATE_COLUMNS.split(", "))
"""Its column names, in table order."""


@dataclass(frozen=True)
class GateSeen:
    """One gate as one evaluation saw it.

    Attributes:
        name, kind, severity: The gate.
        status: ``pass``, ``fail``, ``insufficient``, ``inconclusive`` or ``skipped``.
        value: The observed value (None when undecided without one).
        threshold: Its bounds (``max``, ``min``, ``max_ms``, ``max_ratio``...).
        n: Rows it was judged on.
        labelled, eligible, awaiting: Label gates: rows with a label, rows old enough for
            one, rows still waiting for theirs (unlabelled eligible rows plus rows too recent);
            None for other gates.
        failing: A failure within its ``failure_limit`` (``1 of 3``), else None.
        slice: The worst slice of a slice gate (the operator's own record: never sent out).
        reason: Why it is undecided, when it is.
        low, high: In a record that stands for several evaluations (thinned), the lowest and
            highest value among them (``value`` is the latest); None in a record of one.
    """

    name: str
    kind: str
    severity: str
    status: str
    value: float | None
    threshold: dict[str, float] = field(default_factory=dict)
    n: int | None = None
    labelled: int | None = None
    eligible: int | None = None
    awaiting: int | None = None
    failing: str | None = None
    slice: dict[str, Any] | None = None
    reason: str | None = None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, result: GateResult, rows: int) -> GateSeen:
        """What ``result`` says, with the window's ``rows`` when its evidence counts none."""
        e = result.evidence
        labelled, eligible = _count(e.get("labelled")), _count(e.get("eligible"))
        awaiting = None
        if labelled is not None and eligible is not None:
            awaiting = eligible - labelled + (_count(e.get("too_recent")) or 0)
        worst = e.get("worst_slice")
        return cls(
            name=result.name,
            kind=result.kind,
            severity=result.severity,
            status=result.status,
            value=result.observed,
            threshold=dict(result.threshold),
            n=_count(e.get("n")) if e.get("n") is not None else rows,
            labelled=labelled,
            eligible=eligible,
            awaiting=awaiting,
            failing=str(e["failing"]) if e.get("failing") is not None else None,
            slice=dict(worst) if isinstance(worst, dict) and worst else None,
            reason=str(e["reason"]) if result.observed is None and e.get("reason") else None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateSeen:
        """The gate as stored (unknown keys ignored)."""
        known: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "threshold": dict(data.get("threshold") or {})})


@dataclass(frozen=True)
class GateEvaluation:
    """One evaluation of the watchdog (or the newest of a thinned run of like ones).

    Attributes:
        time: When it was made (the newest merged into this record).
        first: When the first evaluation merged into this record was made.
        evaluations: How many evaluations this record stands for (1 unless thinned).
        deployment, version, role: What was judged (``canary``, ``shadow`` or ``live``).
        decision: ``rollback``, ``warn``, ``inconclusive``, ``pass``, or ``error`` (it raised).
        n: Rows in the window.
        gates: Each gate as seen then.
        error: Why an ``error`` evaluation raised.
    """

    time: datetime
    deployment: str
    version: str
    role: str
    decision: str
    n: int
    gates: tuple[GateSeen, ...] = ()
    error: str | None = None
    first: datetime | None = None
    evaluations: int = 1

    @property
    def signature(self) -> str:
        """What a run shares: deployment, version, role, decision, each gate's status and streak."""
        said: list[Any] = [
            self.deployment,
            self.version,
            self.role,
            self.decision,
            (self.error or "").partition(":")[0],
        ]
        said += [[g.name, g.status, g.failing] for g in self.gates]
        return hashlib.sha256(json.dumps(said).encode()).hexdigest()[:16]

    def gates_json(self) -> str:
        """The gates as stored (JSON text, non-finite numbers as null)."""
        return json.dumps(json_safe([asdict(g) for g in self.gates]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the admin API's answer)."""
        said = json_safe(asdict(self))
        said["time"] = self.time.isoformat()
        said["first"] = (self.first or self.time).isoformat()
        return said  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateEvaluation:
        """An evaluation from :meth:`to_dict` or a stored row (``gates`` a list or JSON text)."""
        gates = data.get("gates") or []
        if isinstance(gates, str):
            gates = json.loads(gates)
        first = data.get("first")
        return cls(
            time=utc_time(data["time"]),
            deployment=str(data.get("deployment") or ""),
            version=str(data.get("version") or ""),
            role=str(data.get("role") or ""),
            decision=str(data.get("decision") or ""),
            n=int(data.get("n") or 0),
            gates=tuple(GateSeen.from_dict(g) for g in gates),
            error=data["error"] if isinstance(data.get("error"), str) and data["error"] else None,
            first=utc_time(first) if first is not None else None,
            evaluations=int(data.get("evaluations") or 1),
        )


def evaluation_of(report: GateReport, *, deployment: str, version: str, role: str, at: datetime) -> GateEvaluation:
    """The record of one watchdog evaluation (its tolerated ``report``; ``version``: ``v1.2.0``)."""
    return GateEvaluation(
        time=at,
        deployment=deployment,
        version=version,
        role=role,
        decision=report.decision,
        n=report.n,
        gates=tuple(GateSeen.of(g, report.n) for g in report.gates),
    )


class GateRecorder:
    """Stores the watchdog's evaluations in the environment's log from one background writer.

    :meth:`record` never waits: the evaluation joins the writer's queue (in order). Past
    :data:`PENDING` waiting, a repeat is dropped (the oldest inside a run of like decisions,
    else the oldest repeat; never the newest) and counted: a decision change is never dropped
    (past :data:`CHANGES_LIMIT` waiting changes, the oldest is, counted apart). Every loss is
    counted by reason in the environment's ``background.history_dropped``; all but a trimmed
    repeat are also background failures (``/status``, ``/metrics``); none is raised into the watchdog.

    Args:
        environment: The watched environment (its ``log``, ``name``, ``env``, ``background`` and
            ``background_failed``; without ``background`` the counts are kept in a private one).
    """

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self._own = Background()  # counts for an environment that keeps none (asked at each count: it may come later)
        self._pending: deque[GateEvaluation] = deque()
        self._last: str | None = None  # the run signature of the evaluation last handed to the writer
        self._writing = False
        self._ready = threading.Condition()
        self._writer: threading.Thread | None = None

    @property
    def background(self) -> Background:
        """Where the losses are counted by reason (the environment's, shown in ``/status`` and ``/metrics``)."""
        found = getattr(self.environment, "background", None)
        return found if isinstance(found, Background) else self._own

    @property
    def dropped(self) -> int:
        """Repeats of an unchanged run (same signature) dropped because the writer was :data:`PENDING` behind."""
        return self.background.history_dropped["repeat"]

    @property
    def changes_dropped(self) -> int:
        """Changes of run (a decision, a gate's status or streak) dropped past :data:`CHANGES_LIMIT` waiting."""
        return self.background.history_dropped["change"]

    def record(self, evaluation: GateEvaluation) -> None:
        """Queue ``evaluation`` for the writer (nothing without a log); returns at once."""
        if getattr(self.environment, "log", None) is None:
            return
        with self._ready:
            self._pending.append(evaluation)
            lost = self._make_room() if len(self._pending) > PENDING else None
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_all, name="rollbackkit-gate-history", daemon=True)
                self._writer.start()
            self._ready.notify_all()
        if lost == "change":
            self._failed(f"a decision change dropped: {CHANGES_LIMIT} changes wait for the writer")

    def _make_room(self) -> HistoryDrop | None:
        """Drop one waiting repeat (or, past :data:`CHANGES_LIMIT`, the oldest change), count it, say which.

        A repeat has its predecessor's full run signature (a gate's status or streak changing is a
        change), so a trimmed one is no failure: its run's row counts one evaluation fewer, no step is lost.
        """
        keys = [self._last, *(e.signature for e in self._pending), None]
        repeats = [i for i in range(len(self._pending) - 1) if keys[i + 1] == keys[i]]  # never the newest
        if repeats:
            inside = [i for i in repeats if keys[i + 2] == keys[i + 1]]  # a run's last before a change stays
            at = (inside or repeats)[0]
            del self._pending[at]
            self.background.history_drop("repeat")
            return "repeat"
        if len(self._pending) <= CHANGES_LIMIT:
            return None
        self._pending.popleft()
        self.background.history_drop("change")
        return "change"

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued evaluation is written (or failed); False on ``timeout``."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._pending and not self._writing, timeout)

    def _write_all(self) -> None:
        """The writer: store the queued evaluations in order, until none is left."""
        while True:
            with self._ready:
                if not self._pending:
                    self._writer = None
                    self._ready.notify_all()
                    return
                evaluation, self._writing = self._pending.popleft(), True
                self._last = evaluation.signature
            try:
                env = self.environment
                env.log.record_gates(env.name, env.env, evaluation)
            except Exception as exc:  # the watchdog must go on: counted in /status and /metrics
                self.background.history_drop("write_failed")
                self._failed(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}")
            finally:
                with self._ready:
                    self._writing = False
                    self._ready.notify_all()

    def _failed(self, said: str) -> None:
        counted = getattr(self.environment, "background_failed", None)
        if counted is not None:
            counted(f"gate history not recorded: {said}")

    def evaluated(
        self, report: GateReport, *, deployment: str, version: str, role: str, at: datetime | None = None
    ) -> None:
        """Record one evaluation's tolerated report, as judged at ``at`` (default now; building it never raises)."""
        try:
            when = at or datetime.now(UTC)
            self.record(evaluation_of(report, deployment=deployment, version=version, role=role, at=when))
        except Exception as exc:  # a report that cannot be recorded is counted, never raised
            self.background.history_drop("not_built")
            self._failed(f"{type(exc).__name__}: {exc}")

    def failed(self, *, deployment: str, version: str, role: str, error: str) -> None:
        """Record an evaluation that raised (decision ``error``)."""
        now = datetime.now(UTC)
        self.record(GateEvaluation(now, deployment, version, role, "error", 0, (), error=error[:500]))


def decided(evaluation: GateEvaluation) -> tuple[str, ...]:
    """What a decision change changes: the deployment, version and role judged, and the decision."""
    return (evaluation.deployment, evaluation.version, evaluation.role, evaluation.decision)


def _count(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def utc_time(value: Any) -> datetime:
    """A stored or sent time (ISO text, datetime, pandas Timestamp) as an aware UTC datetime.

    Raises:
        ValueError: ``value`` is text that is not an ISO 8601 time.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
