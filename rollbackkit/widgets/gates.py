"""GatesPanel: each gate's status, observed vs threshold, evidence; the failing slice highlighted."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from rollbackkit.serving.status import GateStatus
from rollbackkit.widgets._common import Safe, badge, guarded, table


class GatesPanel(widgets.VBox):
    """A gate report as a table.

    Args:
        report: A :class:`~rollbackkit.serving.status.GateStatus` (what ``gate_status``
            returns), a :class:`~rollbackkit.analysis.gates.GateReport`, either's dict (the
            ``gates`` of ``GET /status``), or None for "nothing evaluated yet".
    """

    def __init__(self, report: Any = None) -> None:
        self.header = widgets.HTML()
        self.body = widgets.HTML()
        super().__init__([self.header, self.body])
        self.add_class("rollbackkit-gates")
        self.report: GateStatus | None = None
        self.update(report)

    def update(self, report: Any) -> None:
        """Show ``report`` (re-renders everything)."""
        guarded(self.header, lambda: self._render(report))

    def _render(self, report: Any) -> None:
        self.report = _status_of(report)
        data = self.report
        if data is None:
            self.header.value = "<h4 style='margin:4px 0'>Gates</h4>No gate report yet."
            self.body.value = ""
            return
        where = f" for {html.escape(data.version)}" if data.version else ""
        note = f" ({html.escape(data.reason)})" if data.reason else ""
        self.header.value = f"<h4 style='margin:4px 0'>Gates{where}</h4>Decision: {badge(data.decision)}{note}"
        rows, styles = [], []
        for gate in data.gates or []:
            evidence = dict(gate.evidence)
            worst = evidence.pop("worst_slice", None)
            evidence.pop("slices", None)
            focus = (
                Safe(f"<b class='rollbackkit-failing-slice' style='color:#cf222e'>{html.escape(_label(worst))}</b>")
                if worst is not None
                else ""
            )
            rows.append(
                (
                    gate.name,
                    gate.kind,
                    gate.severity,
                    Safe(badge(gate.status)),
                    _number(gate.observed),
                    json.dumps(gate.threshold, default=str),
                    focus,
                    json.dumps(evidence, default=str)[:160],
                )
            )
            styles.append("background:#ffebe9" if gate.status == "fail" else "")
        self.body.value = table(
            ["gate", "kind", "severity", "status", "observed", "threshold", "worst slice", "evidence"],
            rows,
            "rollbackkit-gate-table",
            styles,
        )


def _status_of(report: Any) -> GateStatus | None:
    """A gate report of any accepted kind as a :class:`GateStatus` (None: nothing evaluated)."""
    if isinstance(report, GateStatus) or not report:
        return report or None
    return GateStatus.from_dict(report.to_dict() if hasattr(report, "to_dict") else report)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _label(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
