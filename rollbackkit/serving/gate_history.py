"""Gates over time: every watchdog evaluation, recorded as it was seen then, thinned to stay small.

The watchdog hands each evaluation to :class:`GateRecorder`, which stores a
:class:`GateEvaluation` in the prediction log (the DuckDB file through its writer process, or
the shared store's ``gate_evaluations``), so every replica reads one history. A failed write is
counted as a background failure (``/status``, ``/metrics``), never raised into the watchdog.

Bounded growth (:func:`placement`): a *run* is a sequence of evaluations with the same
signature (deployment, version, role, decision and each gate's status and failure streak).
Every change of signature opens a new row, and a run's first evaluation keeps its own row;
later evaluations of the run are merged into the newest row (its values become the latest,
``evaluations`` counts them) until it holds ``max(MERGE, run / RUN_POINTS)`` evaluations.
A week of identical evaluations every 5 s stays a few hundred rows; every decision change
is kept. Rows are pruned with the log's retention (``prune(days)``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rollbackkit.analysis.gateresult import GateReport, GateResult
from rollbackkit.analysis.series import json_safe

MERGE = 10
"""Evaluations a row of a run absorbs at least before the next row opens."""

RUN_POINTS = 50
"""A long run keeps about this many rows per factor e of its length (logarithmic growth)."""

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
            time=_utc(data["time"]),
            deployment=str(data.get("deployment") or ""),
            version=str(data.get("version") or ""),
            role=str(data.get("role") or ""),
            decision=str(data.get("decision") or ""),
            n=int(data.get("n") or 0),
            gates=tuple(GateSeen.from_dict(g) for g in gates),
            error=data["error"] if isinstance(data.get("error"), str) and data["error"] else None,
            first=_utc(first) if first is not None else None,
            evaluations=int(data.get("evaluations") or 1),
        )


@dataclass(frozen=True)
class Newest:
    """What thinning reads of an environment's newest stored row."""

    signature: str
    first: datetime
    run_start: datetime
    evaluations: int
    run_evaluations: int


Placement = Literal["insert", "merge"]


def placement(newest: Newest | None, evaluation: GateEvaluation) -> tuple[Placement, datetime, int]:
    """Whether ``evaluation`` opens a row or is merged into the newest; its run's start and count so far.

    A new signature opens a row (a new run); a run's first row is never merged into; the
    newest row takes evaluations until it holds ``max(MERGE, run // RUN_POINTS)`` of them.
    """
    if newest is None or newest.signature != evaluation.signature:
        return "insert", evaluation.time, 1
    run = newest.run_evaluations + 1
    if newest.first == newest.run_start or newest.evaluations >= max(MERGE, run // RUN_POINTS):
        return "insert", newest.run_start, run
    return "merge", newest.run_start, run


def row_of(name: str, env: str, evaluation: GateEvaluation, run_start: datetime, run: int) -> dict[str, Any]:
    """A new stored row (every column of :data:`FIELDS`)."""
    return {
        "name": name,
        "env": env,
        "time": evaluation.time,
        "first": evaluation.time,
        "run_start": run_start,
        "evaluations": 1,
        "run_evaluations": run,
        "deployment": evaluation.deployment,
        "version": evaluation.version,
        "role": evaluation.role,
        "decision": evaluation.decision,
        "n": evaluation.n,
        "signature": evaluation.signature,
        "gates": evaluation.gates_json(),
        "error": evaluation.error,
    }


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
    """Stores the watchdog's evaluations in the environment's log; a failure is counted, never raised.

    Args:
        environment: The watched environment (its ``log``, ``name``, ``env`` and ``background_failed``).
    """

    def __init__(self, environment: Any) -> None:
        self.environment = environment

    def record(self, evaluation: GateEvaluation) -> None:
        """Store ``evaluation`` (nothing without a log)."""
        env = self.environment
        log = getattr(env, "log", None)
        if log is None:
            return
        try:
            log.record_gates(env.name, env.env, evaluation)
        except Exception as exc:  # the watchdog must go on: counted in /status and /metrics
            said = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
            counted = getattr(env, "background_failed", None)
            if counted is not None:
                counted(f"gate history not recorded: {said}")

    def evaluated(self, report: GateReport, *, deployment: str, version: str, role: str) -> None:
        """Store one evaluation's tolerated report, as of now."""
        self.record(evaluation_of(report, deployment=deployment, version=version, role=role, at=datetime.now(UTC)))

    def failed(self, *, deployment: str, version: str, role: str, error: str) -> None:
        """Store an evaluation that raised (decision ``error``)."""
        now = datetime.now(UTC)
        self.record(GateEvaluation(now, deployment, version, role, "error", 0, (), error=error[:500]))


def _count(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _utc(value: Any) -> datetime:
    """A stored or sent time as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def history_answer(
    log: Any, name: str, env: str, *, since: str | None, until: str | None, version: str | None
) -> dict[str, Any]:
    """``POST /admin/gate_history``'s answer over an open log: ``{"evaluations": [...]}`` oldest first."""
    found = log.gate_history(
        name,
        env,
        since=_utc(since) if since else None,
        until=_utc(until) if until else None,
        version=version,
    )
    return {"evaluations": [e.to_dict() for e in found]}
