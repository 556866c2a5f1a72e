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

import numpy as np

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.predictions import has_log, log_server
from rollbackkit.registry.assignments import Deployments, require_known
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import admin_call
from rollbackkit.serving.gate_history import GateEvaluation, GateSeen
from rollbackkit.serving.logs import open_log

__all__ = ["GateEvaluation", "GateHistory", "GateSeen", "GateSeries", "RollbackMark", "gate_history"]


@dataclass(frozen=True)
class RollbackMark:
    """A rollback in the environment: when, from which version to which, why, and whether the watchdog did it."""

    time: datetime
    version: str
    from_version: str | None
    reason: str
    automatic: bool


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

    @property
    def failures(self) -> int:
        """Evaluations where the gate failed."""
        return sum(s == "fail" for s in self.statuses)

    @property
    def has_labels(self) -> bool:
        """Whether the gate waits for labels (it counts labelled rows)."""
        return any(v is not None for v in self.labelled)


@dataclass(frozen=True)
class GateHistory:
    """The watchdog's evaluations of NAME in ENV, oldest first, and the rollbacks among them.

    Attributes:
        name, env: The environment.
        evaluations: Each recorded :class:`GateEvaluation` (a thinned run's newest stands for
            ``evaluations`` of them).
        rollbacks: The rollbacks over the same span.
        where: Where it was read (the server's URL, ``log file`` or ``store``).
    """

    name: str
    env: str
    evaluations: tuple[GateEvaluation, ...]
    rollbacks: tuple[RollbackMark, ...] = ()
    where: str = ""

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

    def thinned(self, most: int) -> GateHistory:
        """At most ``most`` evaluations (evenly spread), always keeping every failure, every
        change of decision and each version's first and last (for the figures)."""
        kept = keep(
            [e.decision for e in self.evaluations],
            [e.decision in ("rollback", "warn", "error") or any(g.status == "fail" for g in e.gates)
             for e in self.evaluations],
            most,
            [e.deployment for e in self.evaluations],
        )  # fmt: skip
        if len(kept) == len(self.evaluations):
            return self
        return replace(self, evaluations=tuple(self.evaluations[i] for i in kept))


def keep(decisions: list[str], failed: list[bool], most: int, runs: list[str] | None = None) -> np.ndarray:
    """Indexes to keep (at most ``most``) of a sequence of evaluations, in order of need: the first,
    the last and every change of decision (or of ``runs``, the deployment) with the evaluation
    before it; then every failure; then the rest, evenly spread. A need that does not fit whole
    is spread evenly over what is left."""
    n = len(decisions)
    if n <= most:
        return np.arange(n)
    labels = np.asarray(decisions, dtype=object)
    change = np.zeros(n, dtype=bool)
    change[1:] = labels[1:] != labels[:-1]
    if runs is not None:
        deployments = np.asarray(runs, dtype=object)
        change[1:] |= deployments[1:] != deployments[:-1]
    edges = change.copy()
    edges[:-1] |= change[1:]  # the evaluation before a change too: the step stays sharp
    edges[[0, -1]] = True
    chosen = np.zeros(n, dtype=bool)
    for need in (edges, np.asarray(failed, dtype=bool), np.ones(n, dtype=bool)):
        candidates = np.flatnonzero(need & ~chosen)
        room = most - int(chosen.sum())
        if room <= 0:
            break
        if len(candidates) > room:
            candidates = candidates[np.linspace(0, len(candidates) - 1, room).round().astype(int)]
        chosen[candidates] = True
    return np.flatnonzero(chosen)


def gate_history(
    repo: str | Path,
    name: str,
    env: str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    version: str | None = None,
    server: str | None = None,
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

    Returns:
        :class:`GateHistory` (empty when the watchdog recorded nothing yet).

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` is not registered or was never in ``env`` (the hint lists the known ones).
        InvalidInput: There is no prediction log (a server under ``--no-log``, none started yet),
            or ``since``/``until`` is not a time.
        ServerError: The server refused or did not answer.
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
    if url is not None:
        body = {"since": _iso(start), "until": _iso(end), "version": version}
        found = admin_call(registry.paths, url, "gate_history", body)["evaluations"]
        evaluations = tuple(GateEvaluation.from_dict(e) for e in found)
        where = url
    else:
        log = open_log(registry.paths, existing=True, sinks=False)
        try:
            evaluations = tuple(log.gate_history(name, env, since=start, until=end, version=version))
        finally:
            log.close()
        where = "store" if getattr(log, "dialect", "") == "postgresql" else "log file"
    marks = _rollbacks(registry, name, env, start, end)
    return GateHistory(name, env, evaluations, marks, where)


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
    )


_BOUND_KEYS = ("max_ms", "max", "min", "max_ratio", "max_increase", "max_decrease")


def _bound(seen: GateSeen) -> float | None:
    """The bound a gate's value is drawn against (its first of :data:`_BOUND_KEYS`)."""
    for key in _BOUND_KEYS:
        value = seen.threshold.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _rollbacks(
    registry: Repository, name: str, env: str, since: datetime | None, until: datetime | None
) -> tuple[RollbackMark, ...]:
    """The environment's rollbacks (assignment tags), with the version each left."""
    marks, before = [], None
    for a in Deployments(registry).history(name, env):
        if a.action in ("rollback", "auto-rollback"):
            at = GateEvaluation.from_dict({"time": a.time}).time
            if (since is None or at >= since) and (until is None or at <= until):
                automatic = a.action == "auto-rollback" or a.actor == "watchdog"
                marks.append(RollbackMark(at, a.version, before, a.reason, automatic))
        before = a.version
    return tuple(marks)


def _time(value: datetime | str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return GateEvaluation.from_dict({"time": value}).time
    except ValueError:
        raise InvalidInput(
            f"{what}={value!r} is not a time.", "Give an ISO 8601 time such as 2026-01-05T09:30:00+00:00."
        ) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
