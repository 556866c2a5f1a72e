"""The timeline as a plotly figure: share of traffic per version over time, and every change's marker.

Built from a :class:`~rollbackkit.ops.timeline_types.Timeline` in numpy before plotting:
the step function of each version's share is sampled at its change points, or, when that
would send more than the figure's budget, averaged over time bins (the exact share of
traffic each version took in each bin). Reasons live in hover text; the figure carries only
short annotations (the version serving now, the last gate breaches), so nothing overlaps
into unreadable text.
"""

from __future__ import annotations

import html
import textwrap
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from rollbackkit.widgets._common import MAX_POINTS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from rollbackkit.ops.timeline_types import Timeline, TimelineEvent

EVENT_BUDGET = 3_000
"""The most event markers drawn (rollbacks, breaches and runbooks first; the rest thinned evenly)."""
SHADOW_BUDGET = 1_000
"""The most points of shadow lines, all versions together (the latest spans)."""
MAX_VERSIONS = 12
"""Versions drawn one by one; the rest share one "other versions" band."""
ANNOTATED_BREACHES = 3
"""Gate breaches annotated on the figure (the latest); every breach has its marker and hover."""

ROWS = {"assignment": 106.0, "gate-breach": 113.0, "runbook": 120.0}
STYLE = {  # kind: (row, symbol, colour)
    "deploy": ("assignment", "circle", "#0969da"),
    "canary": ("assignment", "diamond", "#9a6700"),
    "step": ("assignment", "diamond-open", "#9a6700"),
    "promote": ("assignment", "star", "#1a7f37"),
    "shadow": ("assignment", "square-open", "#8250df"),
    "rollback": ("assignment", "x", "#cf222e"),
    "auto-rollback": ("assignment", "x-open", "#cf222e"),
    "gate-breach": ("gate-breach", "triangle-down", "#cf222e"),
    "runbook": ("runbook", "square", "#57606a"),
}
PALETTE = (
    "#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e", "#1b7c83",
    "#bc4c00", "#6e7781", "#4d2d00", "#e85aad", "#54aeff", "#4ac26b",
)  # fmt: skip
OTHERS = "#afb8c1"


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
    events, drawn_note = _thinned(list(t.events))
    versions, edges, shares = _share_matrix(t)
    versions, shares = _fold_versions(t, versions, shares, edges)
    colours = _colours(t, versions)
    shadows = _shadow_traces(t, colours)
    budget = MAX_POINTS - len(events) - sum(len(s.x) for s in shadows)
    bands = _share_traces(t, versions, edges, shares, budget, colours)
    figure.add_traces([*bands, *shadows, *_event_traces(events)])
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


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def _dates(seconds: np.ndarray) -> np.ndarray:
    return (seconds * 1000).astype("int64").astype("datetime64[ms]")


def _share_matrix(t: Timeline) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Versions, change times ``T`` (seconds) and shares ``[version, interval]`` (``T - 1`` intervals)."""
    traffic = {v: [s for s in spans if s.role != "shadow"] for v, spans in t.spans.items()}
    versions = [v for v, spans in traffic.items() if spans]
    edges = np.unique([_seconds(x) for spans in traffic.values() for s in spans for x in (s.start, s.end)])
    shares = np.zeros((len(versions), max(len(edges) - 1, 0)))
    for row, version in enumerate(versions):
        for s in traffic[version]:
            lo, hi = np.searchsorted(edges, [_seconds(s.start), _seconds(s.end)])
            shares[row, lo:hi] += s.share
    return versions, edges, shares


def _fold_versions(
    t: Timeline, versions: list[str], shares: np.ndarray, edges: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """At most :data:`MAX_VERSIONS` rows: the most-served versions (and what serves now), then the rest summed."""
    if len(versions) <= MAX_VERSIONS:
        return versions, shares
    served = shares @ np.diff(edges)
    now = t.serving_now
    keep_first = {v for v in (now.version, now.canary) if v} if now else set()
    order = sorted(range(len(versions)), key=lambda i: (versions[i] not in keep_first, -served[i]))
    kept = sorted(order[: MAX_VERSIONS - 1])
    rest = [i for i in range(len(versions)) if i not in set(kept)]
    folded = np.vstack([shares[kept], shares[rest].sum(axis=0, keepdims=True)])
    return [versions[i] for i in kept] + [f"{len(rest)} other versions"], folded


def _binned(edges: np.ndarray, shares: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's time-weighted mean share over ``bins`` equal bins (the traffic it took there)."""
    grid = np.linspace(edges[0], edges[-1], bins + 1)
    integral = np.concatenate([np.zeros((len(shares), 1)), np.cumsum(shares * np.diff(edges), axis=1)], axis=1)
    at_grid = np.vstack([np.interp(grid, edges, row) for row in integral])
    return grid, np.diff(at_grid, axis=1) / np.diff(grid)


def _colours(t: Timeline, versions: list[str]) -> dict[str, str]:
    """Each drawn version's colour (its band's; a version that only shadowed takes the next free
    one), grey for folded ones: a version's shadow line has its band's colour."""
    colours = {v: OTHERS if _folded(v) else PALETTE[i % len(PALETTE)] for i, v in enumerate(versions)}
    folded = any(_folded(v) for v in versions)
    for version, spans in t.spans.items():
        if version in colours or not any(s.role == "shadow" for s in spans):
            continue
        used = len([v for v in colours if not _folded(v)])
        colours[version] = OTHERS if folded or used >= MAX_VERSIONS else PALETTE[used % len(PALETTE)]
    return colours


def _folded(version: str) -> bool:
    """True for the "N other versions" band (a version name has no spaces)."""
    return version.endswith(" other versions")


def _share_traces(
    t: Timeline, versions: list[str], edges: np.ndarray, shares: np.ndarray, budget: int, colours: dict[str, str]
) -> list[Any]:
    import plotly.graph_objects as go

    if not versions or len(edges) < 2:
        return []
    binned = len(versions) * len(edges) > budget
    if binned:
        edges, shares = _binned(edges, shares, max(budget // len(versions) - 1, 2))
    x = _dates(edges)
    now = t.serving_now.version if t.serving_now else None
    traces = []
    for row, version in enumerate(versions):
        y = np.append(shares[row], shares[row, -1])  # the last interval drawn to its end
        serving = version == now
        how = "mean share in this bin" if binned else "share"
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
                legendgroup=version or next((v for v in colours if _folded(v)), "other versions"),
                line={"dash": "dot", "color": colours.get(version, OTHERS)},
                customdata=None if version else [s.version for s in chosen for _ in range(3)],
                hovertemplate=f"shadow {who} scores %{{y:.0f}}% of requests<extra></extra>",
            )
        )
    return traces


def _thinned(events: list[TimelineEvent]) -> tuple[list[TimelineEvent], str]:
    """At most :data:`EVENT_BUDGET` events: every rollback, breach and runbook, the rest evenly."""
    if len(events) <= EVENT_BUDGET:
        return events, ""
    rare = [e for e in events if e.kind in ("rollback", "auto-rollback", "gate-breach", "runbook")][-EVENT_BUDGET:]
    common = [e for e in events if e.kind not in ("rollback", "auto-rollback", "gate-breach", "runbook")]
    room = EVENT_BUDGET - len(rare)
    picked = [common[int(i)] for i in np.linspace(0, len(common) - 1, room)] if room > 0 and common else []
    kept = sorted([*rare, *picked], key=lambda e: e.time)
    return kept, f"{len(kept):,} of {len(events):,} events drawn (every rollback, breach and runbook among them)"


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
    """A dashed "now" line at the end, labelled with what serves (short: the version and its share)."""
    now = t.serving_now
    line = {"dash": "dash", "color": "#1f2328", "width": 1}
    figure.add_shape(type="line", x0=t.end, x1=t.end, y0=0, y1=1, yref="paper", line=line)
    label = f"now: {now.version} {now.share:g}%" if now else "now: nothing serves"
    if now and now.canary:
        label += f" + {now.canary} {now.canary_percent:g}%"
    figure.add_annotation(
        x=t.end, y=1, yref="paper", text=html.escape(label), showarrow=False, xanchor="right", yanchor="bottom",
        font={"size": 11}, bgcolor="rgba(255,255,255,0.7)", hovertext=html.escape(now.words()) if now else None,
    )  # fmt: skip


def _annotate_breaches(figure: go.Figure, breaches: list[TimelineEvent]) -> None:
    """The last :data:`ANNOTATED_BREACHES` breaches get a short label (failed gate names), staggered
    downwards (below the marker rows, clear of the "now" label above the plot)."""
    for i, e in enumerate(breaches[-ANNOTATED_BREACHES:]):
        names = ", ".join(e.failed_gates) or "gates failed"
        short = names if len(names) <= 24 else names[:23] + "\u2026"
        figure.add_annotation(
            x=e.time, y=ROWS["gate-breach"], text=f"\u26a0 {html.escape(short)}", showarrow=True, arrowhead=2,
            ax=-30, ay=24 + 18 * (i % 3), font={"size": 10, "color": "#cf222e"}, bgcolor="rgba(255,255,255,0.85)",
            xanchor="right",
        )  # fmt: skip
