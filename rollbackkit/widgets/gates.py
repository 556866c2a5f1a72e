"""GatesPanel: each gate's status, observed vs threshold, evidence; the failing slice highlighted."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from rollbackkit.cards import FAIL, tint
from rollbackkit.serving.status import GateStatus
from rollbackkit.widgets._common import Safe, badge, guarded, table
from rollbackkit.widgets.gate_evidence import bound, evidence_html, number, rows_of, slice_label
from rollbackkit.widgets.serving_now import NowServing, now_badge


class GatesPanel(widgets.VBox):
    """A gate report: one summary row per gate, then each gate's evidence as a small table.

    Args:
        report: A :class:`~rollbackkit.serving.status.GateStatus` (what ``gate_status``
            returns), a :class:`~rollbackkit.analysis.gates.GateReport`, either's dict (the
            ``gates`` of ``GET /status``), or None for "nothing evaluated yet".
        serving: What serves now (:func:`~rollbackkit.widgets.serving_now.now_serving`):
            the evaluated version gets its badge (``serving prod``, ``canary 10% prod``).
    """

    def __init__(self, report: Any = None, *, serving: list[NowServing] | None = None) -> None:
        self.header = widgets.HTML()
        self.body = widgets.HTML()
        super().__init__([self.header, self.body])
        self.add_class("rollbackkit-gates")
        self.report: GateStatus | None = None
        self.serving: list[NowServing] = list(serving or [])
        self.update(report)

    def update(self, report: Any, serving: list[NowServing] | None = None) -> None:
        """Show ``report`` (re-renders everything); ``serving`` replaces what serves now."""
        if serving is not None:
            self.serving = list(serving)
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
        marks = " ".join(now_badge(n) for n in self.serving if data.version and _same(n, data.version))
        self.header.value = f"<h4 style='margin:4px 0'>Gates{where} {marks}</h4>Decision: {badge(data.decision)}{note}"
        rows, styles = [], []
        for gate in data.gates or []:
            worst = gate.evidence.get("worst_slice")
            focus = (
                Safe(f"<b class='rollbackkit-failing-slice' style='color:{FAIL}'>{html.escape(_label(worst))}</b>")
                if worst is not None and gate.status == "fail"
                else _label(worst)
                if worst is not None
                else ""
            )
            rows.append(
                (
                    gate.name,
                    gate.kind,
                    gate.severity,
                    Safe(badge(gate.status)),
                    number(gate.observed),
                    bound(gate.threshold),
                    number(rows_of(gate.evidence)),
                    focus,
                )
            )
            styles.append(tint("fail", 0.1) if gate.status == "fail" else "")  # lighter than its badge
        summary = table(
            ["gate", "kind", "severity", "status", "observed", "threshold", "n", "worst slice"],
            rows,
            "rollbackkit-gate-table",
            styles,
        )
        self.body.value = summary + "".join(evidence_html(g) for g in data.gates or [])


def _same(now: NowServing, version: str) -> bool:
    """Whether a report's version (``v1.0.0`` or ``churn@v1.0.0``) is ``now``'s."""
    return version in (now.version, now.ref)


def _status_of(report: Any) -> GateStatus | None:
    """A gate report of any accepted kind as a :class:`GateStatus` (None: nothing evaluated)."""
    if isinstance(report, GateStatus) or not report:
        return report or None
    return GateStatus.from_dict(report.to_dict() if hasattr(report, "to_dict") else report)


def _label(value: Any) -> str:
    return slice_label(value)
