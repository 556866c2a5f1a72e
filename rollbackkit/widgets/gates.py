"""GatesPanel: each gate's status, observed vs threshold, evidence; the failing slice highlighted."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from rollbackkit.widgets._common import Safe, badge, guarded, table


class GatesPanel(widgets.VBox):
    """A gate report as a table.

    Args:
        report: A :class:`~rollbackkit.analysis.gates.GateReport` or its dict (``to_dict()``, the
            ``gates`` of ``GET /status``), or None for "nothing evaluated yet".
    """

    def __init__(self, report: Any = None) -> None:
        self.header = widgets.HTML()
        self.body = widgets.HTML()
        super().__init__([self.header, self.body])
        self.add_class("rollbackkit-gates")
        self.report: dict[str, Any] | None = None
        self.update(report)

    def update(self, report: Any) -> None:
        """Show ``report`` (re-renders everything)."""
        guarded(self.header, lambda: self._render(report))

    def _render(self, report: Any) -> None:
        data = report.to_dict() if hasattr(report, "to_dict") else report
        self.report = data
        if not data:
            self.header.value = "<h4 style='margin:4px 0'>Gates</h4>No gate report yet."
            self.body.value = ""
            return
        decision = str(data.get("decision", "insufficient"))
        where = f" for {html.escape(str(data['version']))}" if data.get("version") else ""
        note = f" ({html.escape(str(data['reason']))})" if data.get("reason") else ""
        self.header.value = f"<h4 style='margin:4px 0'>Gates{where}</h4>Decision: {badge(decision)}{note}"
        rows, styles = [], []
        for gate in data.get("gates", []):
            evidence = dict(gate.get("evidence") or {})
            worst = evidence.pop("worst_slice", None)
            evidence.pop("slices", None)
            focus = (
                Safe(f"<b class='rollbackkit-failing-slice' style='color:#cf222e'>{html.escape(_label(worst))}</b>")
                if worst is not None
                else ""
            )
            rows.append(
                (
                    gate["name"],
                    gate["kind"],
                    gate.get("severity", ""),
                    Safe(badge(gate["status"])),
                    _number(gate.get("observed")),
                    json.dumps(gate.get("threshold"), default=str),
                    focus,
                    json.dumps(evidence, default=str)[:160],
                )
            )
            styles.append("background:#ffebe9" if gate["status"] == "fail" else "")
        self.body.value = table(
            ["gate", "kind", "severity", "status", "observed", "threshold", "worst slice", "evidence"],
            rows,
            "rollbackkit-gate-table",
            styles,
        )


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _label(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
