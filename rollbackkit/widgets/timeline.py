"""TimelinePanel: which version served when and at what share, every change's reason, the runbooks.

A thin face over :func:`rollbackkit.ops.timeline.timeline`: the figure is
:func:`timeline_figure`, the header marks the version serving now, and each executed runbook
opens inside the panel (rendered by the kernel: works under JupyterLab and Voila alike) or,
under JupyterLab, in a tab of its own (see :mod:`rollbackkit.widgets.notebook_links`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from rollbackkit.errors import InvalidInput
from rollbackkit.widgets._common import RegistryLike, Safe, badge, guarded, registry_of, table
from rollbackkit.widgets.timeline_figure import timeline_figure

if TYPE_CHECKING:
    from rollbackkit.ops.timeline_types import Timeline, TimelineEvent, TimelineRunbook
    from rollbackkit.registry.store import Registry
    from rollbackkit.widgets.live import LiveControl

__all__ = ["TimelinePanel", "timeline_figure"]


class TimelinePanel(widgets.VBox):
    """Share of traffic per version of ``name`` in ``env`` over time, the markers of every change,
    the version serving now, and the executed runbooks (open them in the panel).

    Args:
        name: Bundle name.
        env: Environment.
        registry: A registry or a project path.
        live: Refresh every ``live`` seconds on its own (pausable), or None: only on ``refresh()``.
    """

    def __init__(self, name: str, env: str, registry: RegistryLike = ".", *, live: float | None = None) -> None:
        import plotly.graph_objects as go

        self.name, self.env = name, env
        self._source = registry
        self.timeline: Timeline | None = None
        self.header = widgets.HTML()
        self.message = widgets.HTML()
        self.figure = go.FigureWidget(layout=go.Layout(height=380))
        self.runbook_list = widgets.HTML()
        self.runbook_picker = widgets.Dropdown(description="runbook", layout=widgets.Layout(width="60%"))
        self.open_button = widgets.Button(description="Open here", icon="book", tooltip="render it below")
        self.close_button = widgets.Button(description="Close", tooltip="hide the runbook")
        self.viewer = widgets.HTML()
        self.open_button.on_click(lambda _: self.open_runbook(self.runbook_picker.value))
        self.close_button.on_click(lambda _: setattr(self.viewer, "value", ""))
        picker = widgets.HBox([self.runbook_picker, self.open_button, self.close_button])
        self.live: LiveControl[Timeline] | None = None
        children: list[widgets.Widget] = [
            self.header,
            self.message,
            self.figure,
            self.runbook_list,
            picker,
            self.viewer,
        ]
        if live is not None:
            from rollbackkit.widgets.live import LiveControl

            self.live = LiveControl(self._fetch, self._show, interval=live, start=True)
            children.insert(1, self.live)
        super().__init__(children)
        self.add_class("rollbackkit-timeline")
        self.refresh()

    @property
    def registry(self) -> Registry:
        """The registry (resolved on use, so a bad path shows as an error in the panel)."""
        return registry_of(self._source)

    def refresh(self) -> None:
        """Re-read the assignment tags, the journal and the runbooks."""
        guarded(self.message, lambda: self._show(self._fetch()))

    def _fetch(self) -> Timeline:
        from rollbackkit.ops.timeline import timeline

        return timeline(self.registry.root, self.name, self.env)

    def _show(self, t: Timeline) -> None:
        self.timeline = t
        self.message.value = f"<div class='rollbackkit-empty'>{html.escape(t.empty_words())}</div>" if t.empty else ""
        self.header.value = _header(t)
        figure = timeline_figure(t)
        zoomed = self.figure.layout.xaxis.autorange is False and self.figure.layout.xaxis.range
        if zoomed and figure.layout.uirevision == self.figure.layout.uirevision:  # keep the user's zoom
            figure.update_xaxes(range=list(self.figure.layout.xaxis.range), autorange=False)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.layout = figure.layout
            self.figure.add_traces(list(figure.data))
        for trace in self.figure.data:
            if trace.meta == "runbook":
                trace.on_click(self._clicked)
        self._show_runbooks(t)

    def _show_runbooks(self, t: Timeline) -> None:
        from rollbackkit.widgets.notebook_links import jupyter_host

        host = jupyter_host()
        rows = [
            (f"{r.time:%Y-%m-%d %H:%M:%S}", r.template, Safe(badge(r.status)), r.verdict, r.incident, _link(r, host))
            for r in reversed(t.runbooks)
        ]
        heading = "<h4 style='margin:4px 0'>Runbooks</h4>"
        headers = ["time (UTC)", "template", "status", "verdict", "incident", "notebook"]
        body = table(headers, rows, "rollbackkit-runbook-table") if rows else "No runbook executed for this model here."
        self.runbook_list.value = heading + body
        self.runbook_picker.options = [(_choice(r), r.notebook) for r in reversed(t.runbooks)]
        self.runbook_picker.layout.display = self.open_button.layout.display = "" if rows else "none"
        self.close_button.layout.display = self.runbook_picker.layout.display

    def open_runbook(self, which: str | int | Path | None) -> None:
        """Render an executed runbook below (by its notebook path as listed, or its index, newest 0)."""
        guarded(self.viewer, lambda: self._open(which))

    def _open(self, which: str | int | Path | None) -> None:
        from rollbackkit.widgets.notebook_links import jupyter_host, notebook_href, rendered_notebook

        runbooks = list(reversed(self.timeline.runbooks)) if self.timeline else []
        if isinstance(which, int):
            chosen = runbooks[which] if -len(runbooks) <= which < len(runbooks) else None
        else:
            chosen = next((r for r in runbooks if str(which) in (r.notebook, str(r.path))), None)
        if chosen is None:
            raise InvalidInput(f"No executed runbook {which!r} in this timeline.", "Pick one from the list.")
        if not chosen.path.is_file():
            raise InvalidInput(f"The runbook {chosen.notebook} is gone from the project.", "rollbackkit audit verify")
        href = notebook_href(chosen.path, jupyter_host())
        tab = f" <a href='{html.escape(href)}' target='_blank'>open in JupyterLab</a>" if href else ""
        title = f"<div style='margin:4px 0'><b>{html.escape(chosen.path.name)}</b>{tab}</div>"
        self.viewer.value = title + rendered_notebook(chosen.path)

    def _clicked(self, trace: Any, points: Any, _state: Any) -> None:
        for index in points.point_inds:
            self.open_runbook(str(trace.customdata[index]))

    # What callers read before the typed timeline: the assignment markers and the live version's changes.
    @property
    def assignments(self) -> list[TimelineEvent]:
        """The assignment events (every kind but gate breaches and runbooks), oldest first."""
        events = self.timeline.events if self.timeline else ()
        return [e for e in events if e.kind not in ("gate-breach", "runbook")]

    @property
    def serving(self) -> list[tuple[str, str]]:
        """``(time, version)`` each time the live version's span began, oldest first."""
        spans = self.timeline.spans.values() if self.timeline else []
        starts = sorted((s.start, s.version) for runs in spans for s in runs if s.role == "live")
        return [(when.isoformat(), version) for when, version in starts]

    @property
    def runbooks(self) -> list[TimelineRunbook]:
        """The executed runbooks shown, oldest first."""
        return list(self.timeline.runbooks) if self.timeline else []


def _choice(r: TimelineRunbook) -> str:
    return f"{r.time:%Y-%m-%d %H:%M} {r.template} {r.incident}".strip()


def _header(t: Timeline) -> str:
    """The title and the version serving now (class ``rollbackkit-serving-now``), live since when."""
    from rollbackkit.widgets.serving_now import tinted

    title = f"<b>{html.escape(t.name)}</b> in <b>{html.escape(t.env)}</b>"
    now = t.serving_now
    if now is None:
        return f"<div>{title}: nothing serves</div>"
    mark = tinted("live", f"serving now: {now.words()}", f"{t.name}@{now.version} now")
    since = f" <span style='opacity:0.75'>live since {now.since:%Y-%m-%d %H:%M} UTC</span>" if now.since else ""
    return f"<div>{title} {mark}{since}</div>"


def _link(runbook: TimelineRunbook, host: Any) -> Safe:
    """The notebook's name, a link where the host can open it (JupyterLab), or plain text."""
    from rollbackkit.widgets.notebook_links import notebook_href

    name = html.escape(runbook.path.name)
    href = notebook_href(runbook.path, host)
    if href is None:
        return Safe(f"<span class='rollbackkit-notebook' title='{html.escape(runbook.notebook)}'>{name}</span>")
    return Safe(f"<a class='rollbackkit-notebook' href='{html.escape(href)}' target='_blank'>{name}</a>")
