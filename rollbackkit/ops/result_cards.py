"""Cards (:mod:`rollbackkit.cards`) for the ops layer's issue-22 results: what a data scientist
reads at a glance when a cell ends with a readable diff, a rollback preview, a timeline or a gate
history. The objects are typed ``Any`` here because their modules import this one lazily."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rollbackkit.cards import Badge, Card, Section, clock, number

LAST_EVENTS = 8
"""Events a timeline's card lists (the newest)."""


def _percent(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.3g}%"


def readable_diff_card(d: Any) -> Card:
    """The diff's own card, with the changed features whose reference distributions were binned."""
    card = d.diff.card()
    rows = [
        (f.name, f.kind, f"{f.rows[0]:,} / {f.rows[1]:,}", f"{_percent(f.missing[0])} / {_percent(f.missing[1])}")
        for f in d.distributions
    ]
    extra = Section(
        "Reference distributions", rows, ("feature", "kind", "rows a / b", "missing a / b"), count=len(rows)
    )
    notes = [*card.notes, d.note] if d.note else list(card.notes)
    return replace(card, sections=[*card.sections, *([extra] if rows else [])], notes=notes)


def preview_card(p: Any) -> Card:
    """The flip share of the version losing traffic, its rows scored and refused, each part (share,
    rows, flips), the slices, the flips, the column sets."""
    from rollbackkit.ops.preview_groups import group_lines

    parts = [
        (
            part.version,
            part.role,
            "" if part.traffic is None else f"{part.traffic:g}%",
            f"{part.n:,}",
            _percent(part.flip_share) if part.refused is None else "not compared",
            f"{clock(part.first)} - {clock(part.last)}" if part.n else "",
        )
        for part in p.parts
    ]
    slices = [
        (s.slice, f"{s.n:,}", _percent(s.flip_share), number(s.mean), number(s.p5), number(s.p95)) for s in p.slices
    ]
    flips = [(f"{t.before} -> {t.after}", f"{t.rows:,}") for t in p.changes]
    verdict = p.preflight.verdict if p.preflight is not None and not p.serves else None
    sets = [(part.version, said) for part in p.parts if len(part.groups) > 1 for said, _ in group_lines(part.groups)]
    return Card(
        f"Rollback preview: {p.name} in {p.env} -> {p.to_version}",
        status="done" if p.done else verdict,
        fields=[
            ("from", p.from_version),
            ("flip share", p.flip_said()),
            ("preflight", p.preflight_said() if p.preflight is not None else None),
            ("rows scored", f"{p.n:,}"),
            ("score deltas of", p.score),
            ("threshold", p.threshold),
            ("scored", p.where),
            ("not compared", p.refused),
            ("backfill would rewrite", None if p.rewrite is None else f"{p.rewrite:,} rows (all their deployments)"),
        ],
        notes=[p.note] if p.note else [],
        sections=[
            Section("Versions losing traffic", parts, ("version", "role", "traffic", "rows", "flips", "sample"),
                    count=len(parts)),
            *([Section(f"Slices by {p.by}" if p.by else "All rows", slices,
                       ("slice", "rows", "flips", "mean delta", "p5", "p95"), count=len(slices) - 1 if p.by else None)]
              if slices else []),
            *([Section("Most frequent flips", flips, ("decision", "rows"))] if flips else []),
            *([Section("Column sets", sets, ("version", "rows"), count=sum(len(x.groups) for x in p.parts))]
              if sets else []),
        ],
        css="rollbackkit-preview-card",
    )  # fmt: skip


def timeline_card(t: Any) -> Card:
    """What serves now, the span, how many events of each kind, and the last events."""
    if t.empty:
        return Card(f"Timeline of {t.name} in {t.env}", notes=[t.empty_words()], css="rollbackkit-timeline-card")
    kinds: dict[str, int] = {}
    for e in t.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    last = [
        (clock(e.time, day=True), e.kind, e.version, e.detail or (e.reason[:80] if e.reason else ""), e.actor)
        for e in reversed(t.events[-LAST_EVENTS:])
    ]
    return Card(
        f"Timeline of {t.name} in {t.env}",
        fields=[
            ("serving now", t.serving_now.words() if t.serving_now is not None else "nothing"),
            ("from", clock(t.start, day=True)),
            ("to", clock(t.end, day=True)),
            ("versions", ", ".join(t.spans)),
            ("events", ", ".join(f"{n} {k}" for k, n in kinds.items())),
            ("runbooks", len(t.runbooks) or None),
        ],
        sections=[Section("Last events", last, ("time", "kind", "version", "what", "who"), count=len(t.events))],
        css="rollbackkit-timeline-card",
    )


def gate_history_card(h: Any) -> Card:
    """Each gate's last status, value and bound, and its failures; the rollbacks; where it was read."""
    if h.empty:
        return Card(f"Gate history of {h.name} in {h.env}", notes=["The watchdog recorded no evaluation yet."])
    gates = [
        (s.gate, s.kind, Badge(s.statuses[-1]), number(s.values[-1]), number(s.bounds[-1]), s.failures, len(s.times))
        for s in h.series.values()
    ]
    marks = [
        (clock(m.time, day=True), f"{m.from_version or '?'} -> {m.version}", "watchdog" if m.automatic else "by hand",
         m.reason[:80])
        for m in reversed(h.rollbacks)
    ]  # fmt: skip
    first, last = h.evaluations[0], h.evaluations[-1]
    return Card(
        f"Gate history of {h.name} in {h.env}",
        status=last.decision,
        fields=[
            ("evaluations", f"{sum(e.evaluations for e in h.evaluations):,}" + (" (thinned)" if h.truncated else "")),
            ("from", clock(first.first or first.time, day=True)),
            ("to", clock(last.time, day=True)),
            ("last judged", f"{last.version} ({last.role}), {last.n:,} rows"),
            ("read from", h.where),
        ],
        sections=[
            Section("Gates (last evaluation)", gates, ("gate", "kind", "status", "value", "bound", "failures",
                                                       "points"), count=len(gates)),
            *([Section("Rollbacks", marks, ("time", "versions", "who", "why"), count=len(marks))] if marks else []),
        ],
        css="rollbackkit-gate-history-card",
    )  # fmt: skip
