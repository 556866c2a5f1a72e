"""A gate history's answer: at most N evaluations (thinned: the telling ones first), for a client or a figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rollbackkit.serving.gate_history import HISTORY_LIMIT, MOST, GateEvaluation, utc_time


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


def thin(evaluations: Sequence[GateEvaluation], most: int) -> tuple[GateEvaluation, ...]:
    """At most ``most`` of ``evaluations`` (:func:`keep`: changes of decision or deployment first,
    then failures, then the rest evenly spread; each need as far as room is left), in order."""
    if len(evaluations) <= most:
        return tuple(evaluations)
    kept = keep(
        [e.decision for e in evaluations],
        [e.decision in ("rollback", "warn", "error") or any(g.status == "fail" for g in e.gates) for e in evaluations],
        most,
        [e.deployment for e in evaluations],
    )
    return tuple(evaluations[i] for i in kept)


def history_answer(
    log: Any,
    name: str,
    env: str,
    *,
    since: str | None,
    until: str | None,
    version: str | None,
    most: int = MOST,
) -> dict[str, Any]:
    """``POST /admin/gate_history``'s answer over an open log: ``{"evaluations": [...], "truncated": bool}``,
    oldest first, at most ``most`` (thinned: :func:`thin`; ``truncated``
    says some were left out, also when the log's read stopped at its limit)."""
    found = log.gate_history(
        name,
        env,
        since=utc_time(since) if since else None,
        until=utc_time(until) if until else None,
        version=version,
    )
    kept = thin(found, most)
    truncated = len(kept) < len(found) or len(found) >= HISTORY_LIMIT
    return {"evaluations": [e.to_dict() for e in kept], "truncated": truncated}
