"""The ``gates check`` screen: the decision, then one row per gate, wrapped at the terminal's width."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.padding import Padding
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from rollbackkit.analysis.gates import GateResult
    from rollbackkit.serving.status import GateStatus

STYLES = {"fail": "bold red", "insufficient": "yellow", "pass": "green"}


def outcome(gate: GateResult) -> str:
    """What the gate saw, its status not repeated: ``score-drift psi 0.912 > 0.25``,
    ``error-rate: 80 samples in the window, 200 needed`` (an insufficient gate's reason)."""
    if gate.observed is None:
        why = gate.evidence.get("reason")
        return f"{gate.name}: {why}" if why else gate.name
    return gate.words()


def render(console: Console, report: GateStatus) -> None:
    """``VERSION: DECISION (N rows)``, then ``status  outcome (kind, severity)`` per gate; a long
    outcome wraps under itself, never under the status."""
    rows = f" ({report.n} rows)" if report.n is not None else ""
    why = f": {report.reason}" if report.reason else ""
    head = Text(f"{report.version or 'gates'}: ")
    head.append(report.decision, style="bold red" if report.decision == "rollback" else "bold")
    head.append(f"{rows}{why}")
    console.print(head, highlight=False)
    if not report.gates:
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for gate in report.gates:
        grid.add_row(
            Text(gate.status, style=STYLES.get(gate.status, "")),
            Text(f"{outcome(gate)} ({gate.kind}, {gate.severity})"),
        )
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))
