"""TimelinePanel: which version served when, rollbacks marked with their reasons and runbooks."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.registry.store import Registry

from rollbackkit.widgets._common import RegistryLike, Safe, badge, guarded, registry_of, table

SYMBOLS = {"deploy": "circle", "canary": "diamond", "promote": "star", "rollback": "x", "auto-rollback": "x-open"}
COLOURS = {"rollback": "#cf222e", "auto-rollback": "#cf222e", "canary": "#9a6700"}


class TimelinePanel(widgets.VBox):
    """Assignments of ``name`` in ``env`` over time (plotly) and the runbooks executed.

    Args:
        name: Bundle name.
        env: Environment.
        registry: A registry or a project path.
    """

    def __init__(self, name: str, env: str, registry: RegistryLike = ".") -> None:
        import plotly.graph_objects as go

        self.name, self.env = name, env
        self._source = registry
        self.assignments: list[Assignment] = []
        self.serving: list[tuple[str, str | None]] = []
        self.runbooks: list[dict[str, Any]] = []
        self.message = widgets.HTML()
        self.figure = go.FigureWidget(layout=go.Layout(height=320, margin={"t": 40, "b": 30}))
        self.runbook_list = widgets.HTML()
        super().__init__([self.message, self.figure, self.runbook_list])
        self.add_class("rollbackkit-timeline")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the assignment tags and the journal."""
        self.message.value = ""
        guarded(self.message, self._load)

    @property
    def registry(self) -> Registry:
        """The registry (resolved on use, so a bad path shows as an error in the panel)."""
        return registry_of(self._source)

    def _load(self) -> None:
        import plotly.graph_objects as go

        from rollbackkit.ops.runbook_record import executed
        from rollbackkit.registry.assignments import Deployments

        states = Deployments(self.registry).states(self.name, self.env)
        self.assignments = [a for a, _ in states]
        # the "serving" line is the live version after each assignment (Deployments.state's rule)
        self.serving = [(a.time, state.version) for a, state in states]
        self.runbooks = executed(self.registry.root)
        traces = []
        for action in sorted({a.action for a in self.assignments}):
            points = [a for a in self.assignments if a.action == action]
            traces.append(
                go.Scatter(
                    x=[a.time for a in points],
                    y=[a.version for a in points],
                    mode="markers",
                    name=action,
                    marker={"symbol": SYMBOLS.get(action, "circle"), "size": 13, "color": COLOURS.get(action)},
                    text=[f"{a.tag}<br>{html.escape(a.reason or '')}<br>{a.incident}" for a in points],
                    hoverinfo="text",
                )
            )
        line = go.Scatter(
            x=[when for when, _ in self.serving],
            y=[version for _, version in self.serving],
            mode="lines",
            line={"shape": "hv", "color": "#8c959f"},
            name="serving",
            hoverinfo="skip",
        )
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces([line, *traces])
            self.figure.layout.title = f"{self.name} in {self.env}: which version served when"
            self.figure.layout.annotations = [
                {
                    "x": a.time,
                    "y": a.version,
                    "text": html.escape((a.reason or a.action)[:40]),
                    "showarrow": True,
                    "arrowhead": 2,
                    "ay": -30,
                }
                for a in self.assignments
                if "rollback" in a.action
            ]
        self.runbook_list.value = "<h4 style='margin:4px 0'>Runbooks</h4>" + (
            table(
                ["time", "template", "status", "verdict", "incident", "notebook"],
                [
                    (r["time"], r["template"], Safe(badge(r["status"])), r["verdict"], r["incident"], _link(r))
                    for r in self.runbooks
                ],
                "rollbackkit-runbook-table",
            )
            if self.runbooks
            else "No runbook executed yet."
        )


def _link(entry: dict[str, Any]) -> Safe:
    path = str(entry["notebook"])
    return Safe(
        f"<a class='rollbackkit-notebook' href='{html.escape(path)}' target='_blank'>{html.escape(Path(path).name)}</a>"
    )
