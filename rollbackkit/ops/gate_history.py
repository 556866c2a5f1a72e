"""Gates over time: what the watchdog saw at each evaluation, per gate, with the rollbacks between.

:func:`gate_history` reads the evaluations the watchdog recorded in the prediction log
(:mod:`rollbackkit.serving.gate_history`): through the environment's running server when it
writes the log (its one writer), else from the log file or the shared store. The rollbacks
come from the environment's assignment tags (automatic and by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from rollbackkit.analysis.gatecontext import THRESHOLD_KEYS
from rollbackkit.analysis.times import when
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import InvalidInput, ServerError
from rollbackkit.ops.predictions import has_log, log_server
from rollbackkit.ops.timeline import RollbackMark, rollback_marks
from rollbackkit.registry.assignments import Deployments, replay, require_known
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import READ_TIMEOUT, admin_call
from rollbackkit.serving.gate_history import MOST, GateEvaluation, GateSeen
from rollbackkit.serving.gate_thin import history_answer, keep, thin
from rollbackkit.serving.logs import open_log

__all__ = ["GateEvaluation", "GateHistory", "GateSeen", "GateSeries", "RollbackMark", "gate_history", "keep"]


@dataclass(frozen=True)
class GateSeries:
    """One gate over time: one entry per evaluation that judged it (oldest first).

    ``bound`` is the gate's main bound at each evaluation (``max``/``max_ms``/``min`` or its
    comparison's limit; None when it has none); ``labelled``/``awaiting`` are None outside
    label gates.
    """

    gate: str
    kind: str
    severity: str
    times: tuple[datetime, ...]
    values: tuple[float | None, ...]
    bounds: tuple[float | None, ...]
    statuses: tuple[str, ...]
    n: tuple[int | None, ...]
    labelled: tuple[int | None, ...]
    awaiting: tuple[int | None, ...]
    versions: tuple[str, ...]
    seen: tuple[GateSeen, ...]
    merged: tuple[int, ...] = ()
    """How many evaluations each entry stands for (a thinned record's ``evaluations``)."""

    @property
    def failures(self) -> int:
        """Evaluations where the gate failed."""
        return sum(s == "fail" for s in self.statuses)

    @property
    def has_labels(self) -> bool:
        """Whether the gate waits for labels (it counts labelled rows)."""
        return any(v is not None for v in self.labelled)


@dataclass(frozen=True)
class GateHistory(HasCard):
    """The watchdog's evaluations of NAME in ENV, oldest first, and the rollbacks among them.

    Attributes:
        name, env: The environment.
        evaluations: Each recorded :class:`GateEvaluation` (a thinned run's newest stands for
            ``evaluations`` of them).
        rollbacks: The rollbacks over the same span.
        where: Where it was read (the server's URL, ``log file`` or ``store``).
        truncated: Some evaluations were left out (thinned to ``most``, or past the log's read limit).
    """

    name: str
    env: str
    evaluations: tuple[GateEvaluation, ...]
    rollbacks: tuple[RollbackMark, ...] = ()
    where: str = ""
    truncated: bool = False

    @property
    def empty(self) -> bool:
        """No evaluation recorded."""
        return not self.evaluations

    @property
    def gates(self) -> list[str]:
        """The gates' names, in the order they first appear."""
        return list(self.series)

    @cached_property
    def series(self) -> dict[str, GateSeries]:
        """Per gate, its :class:`GateSeries`."""
        found: dict[str, list[tuple[GateEvaluation, GateSeen]]] = {}
        for evaluation in self.evaluations:
            for seen in evaluation.gates:
                found.setdefault(seen.name, []).append((evaluation, seen))
        return {name: _series(pairs) for name, pairs in found.items()}

    def card(self) -> Card:
        """Each gate's last status and failures, the rollbacks."""
        from rollbackkit.ops.result_cards import gate_history_card

        return gate_history_card(self)

    def thinned(self, most: int) -> GateHistory:
        """At most ``most`` evaluations: every change of decision (or deployment) with the one
        before it, each version's first and last, then failures, then the rest evenly spread,
        each as far as room is left (:func:`~rollbackkit.serving.gate_thin.thin`)."""
        kept = thin(self.evaluations, most)
        return self if len(kept) == len(self.evaluations) else replace(self, evaluations=kept, truncated=True)


def gate_history(
    repo: str | Path,
    name: str,
    env: str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    version: str | None = None,
    server: str | None = None,
    most: int = MOST,
) -> GateHistory:
    """What the watchdog of NAME in ENV saw at each evaluation, per gate, and the rollbacks.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        since: Only evaluations at or after this time (a datetime or ISO text).
        until: Only evaluations at or before it.
        version: Only evaluations of this version.
        server: The URL of the server for ``env`` (default: the running one; none: the log or store).
        most: At most this many evaluations, thinned where the log lives (``truncated`` says so).

    Returns:
        :class:`GateHistory` (empty when the watchdog recorded nothing yet).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
        InvalidInput: There is no prediction log (a server under ``--no-log``, none started yet),
            or ``since``/``until`` is not a time.
        ServerError: The server refused or did not answer (a running server found, not named,
            that stops answering is no error: the log is read instead).
    """
    registry = Repository(repo)
    require_known(registry, name, env)
    start, end = _time(since, "since"), _time(until, "until")
    url = log_server(registry, name, env, server)
    if not has_log(registry, url):
        raise InvalidInput(
            f"There is no prediction log for {name} in {env}: the watchdog records its evaluations there.",
            f"Serve it with a log (rollbackkit serve {name} --env {env}, without --no-log).",
        )
    query: dict[str, Any] = {"since": _iso(start), "until": _iso(end), "version": version, "most": most}
    try:
        asked = {**query, "name": name, "env": env}  # url may serve another env: it holds the log file
        answer, where = (
            (admin_call(registry.paths, url, "gate_history", asked, timeout=READ_TIMEOUT), url) if url else (None, "")
        )
    except ServerError as exc:  # the running server stopped meanwhile: its log is free to read
        if server is not None or not exc.message.startswith("Cannot reach"):
            raise
        answer = None
    if answer is None:
        answer, where = _from_log(registry, name, env, query)
    evaluations = tuple(GateEvaluation.from_dict(e) for e in answer["evaluations"])
    marks = _rollbacks(registry, name, env, start, end)
    return GateHistory(name, env, evaluations, marks, where, bool(answer.get("truncated")))


def _from_log(registry: Repository, name: str, env: str, query: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The history answer read from the log file or the store itself, and which it was."""
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        answer = history_answer(log, name, env, **query)
    finally:
        log.close()
    return answer, "store" if getattr(log, "dialect", "") == "postgresql" else "log file"


def _series(pairs: list[tuple[GateEvaluation, GateSeen]]) -> GateSeries:
    last = pairs[-1][1]
    return GateSeries(
        gate=last.name,
        kind=last.kind,
        severity=last.severity,
        times=tuple(e.time for e, _ in pairs),
        values=tuple(s.value for _, s in pairs),
        bounds=tuple(_bound(s) for _, s in pairs),
        statuses=tuple(s.status for _, s in pairs),
        n=tuple(s.n for _, s in pairs),
        labelled=tuple(s.labelled for _, s in pairs),
        awaiting=tuple(s.awaiting for _, s in pairs),
        versions=tuple(e.version for e, _ in pairs),
        seen=tuple(s for _, s in pairs),
        merged=tuple(e.evaluations for e, _ in pairs),
    )


def _bound(seen: GateSeen) -> float | None:
    """The bound a gate's value is drawn against (its first of the gates' threshold keys, :data:`THRESHOLD_KEYS`)."""
    for key in THRESHOLD_KEYS:
        value = seen.threshold.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _rollbacks(
    registry: Repository, name: str, env: str, since: datetime | None, until: datetime | None
) -> tuple[RollbackMark, ...]:
    """The environment's rollbacks (assignment tags), with the version each took traffic from (replayed)."""
    history = [a for a in Deployments(registry).history(name, env) if a.env == env]
    marks = rollback_marks(history, replay(name, env, history))
    return tuple(m for m in marks if (since is None or m.time >= since) and (until is None or m.time <= until))


def _time(value: datetime | str | None, what: str) -> datetime | None:
    """A user's time by the one rule (naive: local time): :func:`rollbackkit.analysis.times.when`."""
    moment = when(value, what)
    return None if moment is None else moment.to_pydatetime()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
