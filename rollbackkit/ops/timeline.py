"""The timeline of one environment: which version served when, at what share, and why it changed.

Read from the assignment tags (replayed by the one rule of what serves,
:func:`~rollbackkit.registry.serving_state.replay`: a canary takes its percent from the live
version, each step of a stepped rollout is a canary, a shadow takes no traffic), the journal
(gate breaches, with the gates that failed) and the executed runbooks. Panels draw it
(:func:`rollbackkit.widgets.timeline.timeline_figure`); this module never plots.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from rollbackkit.analysis.times import when
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.serving_now import now_of, shares
from rollbackkit.ops.timeline_types import (
    EventKind,
    ServingNow,
    Span,
    Timeline,
    TimelineEvent,
    TimelineRunbook,
)
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Assignment, Deployments, Serving, replay, require_known
from rollbackkit.registry.repository import Repository

__all__ = [
    "RollbackMark",
    "ServingNow",
    "Span",
    "Timeline",
    "TimelineEvent",
    "TimelineRunbook",
    "failed_gate_names",
    "rollback_marks",
    "timeline",
]

When = datetime | str | None


def timeline(repo: str | Path | Repository, name: str, env: str, *, since: When = None, until: When = None) -> Timeline:
    """Which version served ``name`` in ``env`` when, at what share, and every change's reason.

    Args:
        repo: Any path inside the project (or a repository).
        name: Bundle name.
        env: Environment.
        since: Leave out what ended before this time (a datetime or an ISO string; naive: local time).
        until: Leave out what began after this time (default: now).

    Returns:
        A :class:`Timeline`; an environment ``name`` was never deployed to gives an empty one
        (``empty``), whose ``known_envs`` say where it was.

    Raises:
        VersionNotFound: No bundle ``name`` is registered (the hint lists the known ones).
        InvalidName: ``name`` or ``env`` breaks the naming rules.
        InvalidInput: ``since`` or ``until`` is not a time, or ``since`` is after ``until``.
    """
    registry = repo if isinstance(repo, Repository) else Repository(repo)
    validate_name(name)
    validate_name(env, "environment name")
    start_at, end_at = _when(since, "since"), _when(until, "until")
    if start_at and end_at and start_at > end_at:
        raise InvalidInput(f"since ({start_at.isoformat()}) is after until ({end_at.isoformat()}).", "Swap them.")
    history = Deployments(registry).history(name)
    if not history:
        require_known(registry, name)  # an unknown name is an error; a name never deployed has an empty timeline
    mine = [a for a in history if a.env == env]
    known = tuple(sorted({a.env for a in history}))
    now = datetime.now(UTC)
    if mine:  # tag times may run a few seconds ahead of the clock (see assignments)
        now = max(now, _time(mine[-1].timestamp))
    end = end_at or now
    if not mine:
        return Timeline(name, env, None, end, known_envs=known)
    states = replay(name, env, mine)
    start = max(start_at, _time(mine[0].timestamp)) if start_at else _time(mine[0].timestamp)
    spans = _clipped(_spans(mine, states[1:], now), start, end)
    entries = registry.journal().entries()
    clock = _TagClock(mine, entries)
    named = {str(e["tag"]): _names(e["failed_gates"]) for e in entries if e.get("tag") and "failed_gates" in e}
    events = [*_assignment_events(mine, states, named), *_breaches(entries, name, env, clock)]
    runbooks = _runbooks(registry, name, env, {e.incident for e in events if e.incident}, clock)
    for r in runbooks:  # a runbook is about the version that served when it ran
        version = _state_at(mine, states, r.time).version or "?"
        events.append(TimelineEvent(r.time, "runbook", version, r.verdict, "", r.incident, runbook=r))
    shown = sorted((e for e in events if start <= e.time <= end), key=lambda e: e.time)
    serving = now_of(mine, states, _index_at(mine, end))
    kept = tuple(r for r in runbooks if start <= r.time <= end)
    return Timeline(name, env, start, end, spans, tuple(shown), serving, kept, known)


def _when(value: When, what: str) -> datetime | None:
    """A user's time by the one rule (naive: local time): :func:`rollbackkit.analysis.times.when`."""
    moment = when(value, what)
    return None if moment is None else moment.to_pydatetime()


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _spans(history: list[Assignment], states: list[Serving], now: datetime) -> dict[str, list[Span]]:
    """Each version's spans: one per run of an unchanged (role, share), merged across assignments."""
    spans: dict[str, list[Span]] = {}
    times = [_time(a.timestamp) for a in history] + [now]
    for i, state in enumerate(states):
        begin, end = times[i], times[i + 1]
        for part in shares(state):
            runs = spans.setdefault(part.version, [])
            last = runs[-1] if runs else None
            if last is not None and last.end == begin and (last.role, last.share) == (part.role, part.percent):
                runs[-1] = Span(part.version, last.start, end, part.percent, part.role, last.tag)
            elif end > begin or i == len(states) - 1:
                runs.append(Span(part.version, begin, end, part.percent, part.role, part.tag))
    return spans


def _clipped(spans: dict[str, list[Span]], start: datetime, end: datetime) -> dict[str, tuple[Span, ...]]:
    out: dict[str, tuple[Span, ...]] = {}
    for version, runs in spans.items():
        kept = tuple(
            Span(s.version, max(s.start, start), min(s.end, end), s.share, s.role, s.tag)
            for s in runs
            if s.end >= start and s.start <= end
        )
        if kept:
            out[version] = kept
    return out


def failed_gate_names(summary: str) -> tuple[str, ...]:
    """The gate names in a gate summary (``rollback: errors error rate 0.12 > 0.05; ...``), sorted:
    for journal entries and tags written before the watchdog journalled ``failed_gates``."""
    body = summary.removeprefix("gate failed: ")
    decision, sep, rest = body.partition(": ")
    if not sep or " " in decision:
        return ()
    return tuple(sorted({part.strip().split(" ")[0].rstrip(":") for part in rest.split("; ") if part.strip()}))


def _names(value: Any) -> tuple[str, ...]:
    """Gate names as journalled (a list), sorted; anything else reads as none."""
    return tuple(sorted({str(v) for v in value})) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class RollbackMark:
    """A rollback in the environment: when, from which version to which, why, whether the watchdog did it, its tag."""

    time: datetime
    version: str
    from_version: str | None
    reason: str
    automatic: bool
    tag: str = ""


def rollback_marks(history: list[Assignment], states: list[Serving]) -> tuple[RollbackMark, ...]:
    """Every rollback in ``history`` (one environment's assignments; ``states``: their replay, the
    state before the first one first). ``automatic`` by the one rule: the watchdog's own action
    (``auto-rollback``); a rollback by hand stays manual whatever actor name it was given."""
    return tuple(
        RollbackMark(
            _time(a.timestamp),
            a.version,
            ", ".join(after.last_rolled_back_from) or None,
            a.reason,
            a.action == "auto-rollback",
            a.tag,
        )
        for a, after in zip(history, states[1:], strict=False)
        if a.action in ("rollback", "auto-rollback")
    )


def _assignment_events(
    history: list[Assignment], states: list[Serving], named: dict[str, tuple[str, ...]]
) -> Iterable[TimelineEvent]:
    """One event per assignment; an automatic rollback's failed gates as the watchdog journalled
    them (``named``, by tag), parsed from its words only for entries older than that field."""
    marks = {m.tag: m for m in rollback_marks(history, states)}
    for a, before in zip(history, states, strict=False):
        mark = marks.get(a.tag)
        kind, share, detail = _kind(a, before, mark)
        automatic = mark is not None and mark.automatic
        failed = named.get(a.tag) or failed_gate_names(a.gates or a.reason) if automatic else ()
        yield TimelineEvent(
            _time(a.timestamp), kind, a.version, a.reason, a.actor, a.incident, failed, None, a.tag, share, detail
        )


def _kind(a: Assignment, before: Serving, mark: RollbackMark | None) -> tuple[EventKind, float | None, str]:
    """The marker kind of one assignment, the share it gave, and a short detail."""
    if a.action == "canary":
        share = float(a.canary_percent or 0)
        step = a.step
        detail = f"step {step[0]} of {step[1]} ({share:g}%)" if step else f"{share:g}% of traffic"
        again = before.canary is not None and before.canary.version == a.version
        return ("step" if again or (step and step[0] > 1) else "canary"), share, detail
    if a.action == "shadow":
        return "shadow", float(a.shadow_percent or 100), f"scores {a.shadow_percent or 100}% of requests"
    if mark is not None:
        kind: EventKind = "auto-rollback" if mark.automatic else "rollback"
        return kind, 100.0, f"rolled back from {mark.from_version}" if mark.from_version else "rolled back"
    if a.action == "promote":
        return "promote", 100.0, "all traffic"
    return "deploy", 100.0, "all traffic"


class _TagClock:
    """Journal times on the tags' clock.

    A burst of assignments gets tag times a few seconds ahead of the wall clock (each tag of a
    bundle is a second after the one before), while the journal records real times. A journal
    event is placed no earlier than the tag time of the last assignment journaled before it, so
    a breach or a runbook never shows before the rollback it followed.
    """

    def __init__(self, history: list[Assignment], entries: list[dict[str, Any]]) -> None:
        tag_times = {a.tag: _time(a.timestamp) for a in history}
        anchors = sorted(
            (_parse_time(e.get("time")), tag_times[e["tag"]]) for e in entries if e.get("tag") in tag_times
        )
        self._real = [real for real, _ in anchors]
        self._tagged = list(accumulate((tagged for _, tagged in anchors), max))

    def __call__(self, real: datetime) -> datetime:
        index = bisect_right(self._real, real) - 1
        return max(real, self._tagged[index]) if index >= 0 else real


def _breaches(entries: list[dict[str, Any]], name: str, env: str, clock: _TagClock) -> Iterable[TimelineEvent]:
    """The journal's gate breaches in ``env`` (the watchdog's words and where traffic went)."""
    for entry in entries:
        if entry.get("event") != "gate-breach" or entry.get("name") != name or entry.get("env") != env:
            continue
        gates = str(entry.get("gates") or "")
        if entry.get("rolled_back"):
            detail = f"rolled back to {entry.get('target')}"
        else:
            detail = f"traffic stayed: {entry.get('reason') or 'no rollback target'}"
        failed = _names(entry["failed_gates"]) if "failed_gates" in entry else failed_gate_names(gates)
        yield TimelineEvent(
            clock(_parse_time(entry.get("time"))), "gate-breach", str(entry.get("version") or "?"), gates, "watchdog",
            str(entry.get("incident") or ""), failed, None, str(entry.get("deployment") or ""), None, detail,
        )  # fmt: skip


def _parse_time(value: Any) -> datetime:
    moment = _when(str(value), "time") if value else None
    return moment or datetime.fromtimestamp(0, UTC)


def _runbooks(
    registry: Repository, name: str, env: str, incidents: set[str], clock: _TagClock
) -> list[TimelineRunbook]:
    """The executed runbooks whose parameters name this model and environment (or, when the
    notebook is gone, whose incident is one of this timeline's)."""
    from rollbackkit.ops.runbook_record import executed

    out = []
    for record in executed(registry.root):
        notebook = str(record["notebook"])
        path = Path(notebook) if Path(notebook).is_absolute() else registry.root / notebook
        params = _parameters(path)
        incident = str(record["incident"] or "")
        mine = params.get("name") == name and params.get("env", "prod") == env if params else incident in incidents
        if mine:
            out.append(
                TimelineRunbook(
                    notebook, path, str(record["template"] or ""), str(record["status"] or ""),
                    str(record["verdict"] or ""), incident, clock(_parse_time(record["time"])),
                )
            )  # fmt: skip
    return out


_PARAMETERS: dict[tuple[str, float], dict[str, Any]] = {}


def _parameters(path: Path) -> dict[str, Any]:
    """The parameters an executed runbook ran with (``{}`` when it cannot be read); cached by mtime."""
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return {}
    if key not in _PARAMETERS:
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
            params = meta.get("rollbackkit", {}).get("parameters") or meta.get("papermill", {}).get("parameters") or {}
        except (OSError, ValueError, AttributeError):
            params = {}
        _PARAMETERS[key] = params if isinstance(params, dict) else {}
    return _PARAMETERS[key]


def _state_at(history: list[Assignment], states: list[Serving], when: datetime) -> Serving:
    """The serving state at ``when`` (``states`` from :func:`replay`: one before the first assignment)."""
    return states[_index_at(history, when)]


def _index_at(history: list[Assignment], when: datetime) -> int:
    """How many of ``history`` happened by ``when`` (the index of the state then)."""
    return bisect_right([a.timestamp for a in history], when.timestamp())
