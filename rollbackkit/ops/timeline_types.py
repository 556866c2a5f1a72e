"""What :func:`rollbackkit.ops.timeline.timeline` returns: spans of traffic, events, what serves now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from rollbackkit.analysis.times import when as moment_of
from rollbackkit.cards import Card, HasCard
from rollbackkit.ops.serving_now import Role, ServingNow

__all__ = ["EventKind", "Role", "ServingNow", "Span", "Timeline", "TimelineEvent", "TimelineRunbook"]

EventKind = Literal[
    "deploy", "canary", "step", "promote", "rollback", "auto-rollback", "shadow", "gate-breach", "runbook"
]


@dataclass(frozen=True)
class Span:
    """One version's share of traffic over ``[start, end)``.

    ``share`` is a percent of traffic (live, canary); for a shadow it is the percent of live
    requests it scores off the request path (it answers nobody, so it takes no share).
    ``tag`` is the assignment under which the span began.
    """

    version: str
    start: datetime
    end: datetime
    share: float
    role: Role
    tag: str


@dataclass(frozen=True)
class TimelineRunbook:
    """An executed runbook the timeline links to (``path``: the notebook on disk)."""

    notebook: str
    path: Path
    template: str
    status: str
    verdict: str
    incident: str
    time: datetime


@dataclass(frozen=True)
class TimelineEvent:
    """A marker on the timeline.

    Attributes:
        time: When (the assignment tag's time; the journal's for breaches and runbooks).
        kind: deploy, canary, step (a later step of a stepped rollout, or a canary's new share),
            promote, rollback, auto-rollback, shadow, gate-breach or runbook.
        version: The version the event is about (a breach: the version that failed its gates).
        reason: Why, as recorded (an automatic rollback: the gates' words).
        actor: Who (``watchdog`` for automatic ones).
        incident: The incident id, if any.
        failed_gates: The names of the gates that failed (auto-rollback, gate-breach).
        runbook: The executed runbook (kind ``runbook``).
        tag: The assignment tag (assignment events).
        share: The share the version took (a canary's or a step's percent, 100 for live).
        detail: A short extra line (``step 2 of 4``, ``rolled back to v1.0.0``).
    """

    time: datetime
    kind: EventKind
    version: str
    reason: str = ""
    actor: str = ""
    incident: str = ""
    failed_gates: tuple[str, ...] = ()
    runbook: TimelineRunbook | None = None
    tag: str = ""
    share: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Timeline(HasCard):
    """Which version served ``name`` in ``env`` when, at what share, and why it changed.

    Attributes:
        name: Bundle name.
        env: Environment.
        start: The first assignment's time (or ``since``); None when there is no history.
        end: Now (or ``until``).
        spans: Per version (first served first), its spans, oldest first.
        events: Every marker, oldest first.
        serving_now: What serves at ``end`` (None before any deploy).
        runbooks: The runbooks executed for this model and environment, oldest first.
        known_envs: The environments ``name`` was ever assigned to (for an empty timeline's line).
    """

    name: str
    env: str
    start: datetime | None
    end: datetime
    spans: dict[str, tuple[Span, ...]] = field(default_factory=dict)
    events: tuple[TimelineEvent, ...] = ()
    serving_now: ServingNow | None = None
    runbooks: tuple[TimelineRunbook, ...] = ()
    known_envs: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing was ever assigned to ``env`` (in the window asked for)."""
        return not self.spans and not self.events

    def empty_words(self) -> str:
        """The one line a panel shows for an empty timeline."""
        known = ", ".join(self.known_envs) or "none yet"
        return (
            f"{self.name} has no history in {self.env}: nothing was deployed there "
            f"(environments with history: {known})."
        )

    def card(self) -> Card:
        """What serves now, the span, events by kind and the last events."""
        from rollbackkit.ops.result_cards import timeline_card

        return timeline_card(self)

    def share_at(self, when: datetime | str) -> dict[str, float]:
        """Each version's share of traffic at ``when`` (shadows left out: they take none).

        At or after :attr:`end` it is what serves at the end (``share_at(now)``: what serves now);
        a naive time or ISO text is read by the one rule (:func:`rollbackkit.analysis.times.when`).
        """
        moment = min(moment_of(when, "when").to_pydatetime(), self.end)
        return {
            version: span.share
            for version, spans in self.spans.items()
            for span in spans
            if span.role != "shadow" and span.start <= moment and (moment < span.end or span.end == self.end)
        }
