"""The timeline as a plotly figure: share of traffic per version over time, and every change's marker.

Maps what :mod:`rollbackkit.ops.timeline_shares` computes (share bands, time-binned under the
figure's point budget, and the events kept) to traces. Reasons live in hover text; the figure
carries only short annotations (the version serving now, the last gate breaches), so nothing
overlaps into unreadable text.
"""

from __future__ import annotations

import html
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from rollbackkit.cards import ACCENT, FAIL, FOLDED, MUTED, NOW, PASS, SECOND, WARN, rgba, version_colour
from rollbackkit.ops.timeline_shares import EVENT_BUDGET, MAX_VERSIONS, ShareBands, drawn_events, is_folded, share_bands
from rollbackkit.widgets._common import MAX_POINTS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rollbackkit.ops.timeline_types import Timeline, TimelineEvent

__all__ = ["ANNOTATED_BREACHES", "EVENT_BUDGET", "MAX_VERSIONS", "OTHERS", "SHADOW_BUDGET", "timeline_figure"]

SHADOW_BUDGET = 1_000
"""The most points of shadow lines, all versions together (the latest spans)."""
ANNOTATED_BREACHES = 3
"""Gate breaches annotated on the figure (the latest); every breach has its marker and hover."""

ROWS = {"assignment": 106.0, "gate-breach": 113.0, "runbook": 120.0}
STYLE = {  # kind: (row, symbol, colour)
    "deploy": ("assignment", "circle", ACCENT),
    "canary": ("assignment", "diamond", WARN),
    "step": ("assignment", "diamond-open", WARN),
    "promote": ("assignment", "star", PASS),
    "shadow": ("assignment", "square-open", SECOND),
    "rollback": ("assignment", "x", FAIL),
    "auto-rollback": ("assignment", "x-open", FAIL),
    "gate-breach": ("gate-breach", "triangle-down", FAIL),
    "runbook": ("runbook", "square", MUTED),
}
OTHERS = FOLDED
"""Folded versions' colour (the cards' :data:`~rollbackkit.cards.FOLDED`; each drawn version has
:func:`~rollbackkit.cards.version_colour`: one palette for versions and states in cards and figures)."""


def timeline_figure(t: Timeline) -> go.Figure:
    """Share of traffic per version over ``t`` (stacked steps, 0-100%), shadows dotted, event
    markers above (reason in hover), the last gate breaches annotated, and a "now" line
    naming the version serving; at most :data:`~rollbackkit.widgets._common.MAX_POINTS` points."""
    import plotly.graph_objects as go

    title = f"{t.name} in {t.env}: share of traffic per version"
    figure = go.Figure(layout=_layout(title, f"{t.name}/{t.env}"))
    if t.empty:
        figure.add_annotation(
            text=html.escape(t.empty_words()), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
        )
        return figure
    drawn = drawn_events(t.events)
    events, drawn_note = list(drawn.events), drawn.note
    bands = share_bands(t)
    colours = _colours(t, list(bands.versions))
    shadows = _shadow_traces(t, colours)
    bands = bands.within(MAX_POINTS - len(events) - sum(len(s.x) for s in shadows))
    figure.add_traces([*_share_traces(t, bands, colours), *shadows, *_event_traces(events)])
    _mark_now(figure, t)
    _annotate_breaches(figure, [e for e in events if e.kind == "gate-breach"])
    if drawn_note:
        figure.update_layout(title=f"{title}<br><sup>{drawn_note}</sup>")
    return figure


def _layout(title: str, revision: str) -> dict[str, Any]:
    """The layout; ``uirevision`` (same model and environment) keeps a user's zoom across refreshes."""
    return {
        "title": title,
        "uirevision": revision,
        "height": 380,
        "margin": {"t": 60, "b": 40, "l": 50, "r": 20},
        "yaxis": {"title": "% of traffic", "range": [0, 126], "tickvals": [0, 25, 50, 75, 100]},
        "xaxis": {"type": "date"},
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.18},
    }


def _dates(seconds: np.ndarray) -> np.ndarray:
    return (seconds * 1000).astype("int64").astype("datetime64[ms]")


def _colours(t: Timeline, versions: list[str]) -> dict[str, str]:
    """Each drawn version's colour (its band's; a version that only shadowed takes the next free
    one), grey for folded ones: a version's shadow line has its band's colour."""
    colours = {v: OTHERS if is_folded(v) else version_colour(i) for i, v in enumerate(versions)}
    folded = any(is_folded(v) for v in versions)
    for version, spans in t.spans.items():
        if version in colours or not any(s.role == "shadow" for s in spans):
            continue
        used = len([v for v in colours if not is_folded(v)])
        colours[version] = OTHERS if folded or used >= MAX_VERSIONS else version_colour(used)
    return colours


def _share_traces(t: Timeline, bands: ShareBands, colours: dict[str, str]) -> list[Any]:
    """One stacked step line per band (the last interval drawn to its end)."""
    import plotly.graph_objects as go

    if not bands.versions or len(bands.edges) < 2:
        return []
    x = _dates(bands.edges)
    now = t.serving_now.version if t.serving_now else None
    how = "mean share in this bin" if bands.binned else "share"
    traces = []
    for row, version in enumerate(bands.versions):
        y = np.append(bands.shares[row], bands.shares[row, -1])  # the last interval drawn to its end
        serving = version == now
        traces.append(
            go.Scatter(
                x=x,
                y=np.round(y, 2),
                name=f"{version} \u25c0 serving now" if serving else version,
                legendgroup=version,
                mode="lines",
                line={"shape": "hv", "width": 1, "color": colours[version]},
                stackgroup="traffic",
                hovertemplate=f"{html.escape(version)}: %{{y:.1f}}% ({how})<br>%{{x}}<extra></extra>",
            )
        )
    return traces


def _shadow_traces(t: Timeline, colours: dict[str, str]) -> list[Any]:
    """Dotted shadow lines in their version's colour: at most :data:`SHADOW_BUDGET` points in all
    (the latest spans), versions without a colour of their own folded into one grey line."""
    import plotly.graph_objects as go

    spans = sorted((s for runs in t.spans.values() for s in runs if s.role == "shadow"), key=lambda s: s.start)
    spans = spans[len(spans) - SHADOW_BUDGET // 3 :] if len(spans) > SHADOW_BUDGET // 3 else spans
    groups: dict[str, list[Any]] = {}
    for s in spans:
        own = colours.get(s.version, OTHERS) != OTHERS
        groups.setdefault(s.version if own else "", []).append(s)
    others = len({s.version for s in groups.get("", [])})
    traces = []
    for version, chosen in sorted(groups.items(), key=lambda g: g[0] == ""):  # the folded line last
        x: list[Any] = []
        y: list[Any] = []
        for s in chosen:
            x += [s.start, s.end, None]
            y += [s.share, s.share, None]
        who = html.escape(version) if version else "%{customdata}"
        traces.append(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=f"{version or f'{others} other versions'} shadow (mirror, answers nobody)",
                legendgroup=version or next((v for v in colours if is_folded(v)), "other versions"),
                line={"dash": "dot", "color": colours.get(version, OTHERS)},
                customdata=None if version else [s.version for s in chosen for _ in range(3)],
                hovertemplate=f"shadow {who} scores %{{y:.0f}}% of requests<extra></extra>",
            )
        )
    return traces


def _hover(e: TimelineEvent) -> str:
    lines = [f"<b>{html.escape(e.kind)}</b> {html.escape(e.version)}  {e.time:%Y-%m-%d %H:%M:%S} UTC"]
    if e.detail:
        lines.append(html.escape(e.detail))
    if e.reason:
        lines += [html.escape(part) for part in textwrap.wrap(f"why: {e.reason}", 80)[:6]]
    if e.failed_gates:
        lines.append("failed gates: " + html.escape(", ".join(e.failed_gates)))
    said = ", ".join(p for p in (f"by {e.actor}" if e.actor else "", e.incident, e.tag) if p)
    if said:
        lines.append(html.escape(said))
    if e.runbook is not None:
        lines.append(f"{html.escape(e.runbook.template)} runbook: {html.escape(e.runbook.status)} (click to open)")
    return "<br>".join(lines)


def _event_traces(events: list[TimelineEvent]) -> list[Any]:
    import plotly.graph_objects as go

    traces = []
    for kind, (row, symbol, colour) in STYLE.items():
        chosen = [e for e in events if e.kind == kind]
        if not chosen:
            continue
        traces.append(
            go.Scatter(
                x=_dates(np.array([e.time.timestamp() for e in chosen])),
                y=np.full(len(chosen), ROWS[row]),
                mode="markers",
                name=kind,
                marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 1, "color": colour}},
                hovertext=np.array([_hover(e) for e in chosen], dtype=object),
                hoverinfo="text",
                meta=kind,
                customdata=np.array([str(e.runbook.path) if e.runbook else e.tag for e in chosen], dtype=object),
            )
        )
    return traces


def _mark_now(figure: go.Figure, t: Timeline) -> None:
    """A dashed "now" line at the end, labelled with what serves (short: the version and its share), in
    the live tone (:data:`~rollbackkit.cards.NOW`, a translucent label: readable on light and dark themes)."""
    now = t.serving_now
    line = {"dash": "dash", "color": NOW, "width": 1.5}
    figure.add_shape(type="line", x0=t.end, x1=t.end, y0=0, y1=1, yref="paper", line=line)
    label = f"now: {now.version} {now.share:g}%" if now else "now: nothing serves"
    if now and now.canary:
        label += f" + {now.canary} {now.canary_percent:g}%"
    figure.add_annotation(
        x=t.end, y=1, yref="paper", text=html.escape(label), showarrow=False, xanchor="right", yanchor="bottom",
        font={"size": 11}, bgcolor=rgba(NOW, 0.18), bordercolor=rgba(NOW, 0.7),
        hovertext=html.escape(now.words()) if now else None,
    )  # fmt: skip


def _annotate_breaches(figure: go.Figure, breaches: list[TimelineEvent]) -> None:
    """The last :data:`ANNOTATED_BREACHES` breaches get a short label (failed gate names), staggered
    downwards (below the marker rows, clear of the "now" label above the plot)."""
    for i, e in enumerate(breaches[-ANNOTATED_BREACHES:]):
        names = ", ".join(e.failed_gates) or "gates failed"
        short = names if len(names) <= 24 else names[:23] + "\u2026"
        figure.add_annotation(
            x=e.time, y=ROWS["gate-breach"], text=f"\u26a0 {html.escape(short)}", showarrow=True, arrowhead=2,
            ax=-30, ay=24 + 18 * (i % 3), font={"size": 10, "color": FAIL}, bgcolor=rgba(FAIL, 0.12),
            xanchor="right",
        )  # fmt: skip
