"""The ``gates check`` screen: the decision, then one row per gate, wrapped at the terminal's width.

A gate that compares the candidate with the live version shows both sides under its row
(``candidate 41.2 vs live 30.1, ratio 1.37, ci [1.21, 1.52], n 1000 / 980``), so an
``inconclusive`` verdict (material, not supported by the data) reads with its evidence;
a ``skipped`` gate says why (``no live version serves beside it``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.padding import Padding
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from rollbackkit.analysis.gates import GateResult
    from rollbackkit.serving.status import GateStatus

STYLES = {"fail": "bold red", "insufficient": "yellow", "inconclusive": "yellow", "skipped": "dim", "pass": "green"}
DECISION_STYLES = {"rollback": "bold red", "warn": "bold yellow", "inconclusive": "bold yellow"}


def outcome(gate: GateResult) -> str:
    """What the gate saw, its status not repeated: ``score-drift psi 0.912 > 0.25``,
    ``error-rate: 80 samples in the window, 200 needed`` (an insufficient gate's reason),
    then, for a gate compared with the live version, the rows on each side and the verdict."""
    if gate.observed is None:
        why = gate.evidence.get("reason")
        said = f"{gate.name}: {why}" if why else gate.name
    else:
        said = gate.words()
        why = gate.evidence.get("reason")
        if gate.status in ("inconclusive", "skipped") and why and str(why) not in said:
            said += f" ({why})"
    compared = against_live(gate.evidence, told="vs live" in said)
    return f"{said}\n{compared}" if compared else said


def against_live(evidence: dict[str, Any], *, told: bool = False) -> str:
    """How a gate compared with live: ``candidate 41.2 vs live 31.7, ratio 1.3, 95% ci [1.1,
    1.52], over 400 rows (live 7600): material, not supported by the data``; only the rows
    and the level (``over 400 rows (live 7600), 95% ci``) when the gate's own words ``told``
    the rest; empty when it did not compare."""
    candidate, live = evidence.get("candidate"), evidence.get("live")
    if not isinstance(candidate, int | float) or not isinstance(live, int | float) or not _is_number(candidate):
        return ""
    n, n_live, level = evidence.get("n"), evidence.get("n_live"), evidence.get("confidence")
    sure = f"{level * 100:g}% ci" if isinstance(level, int | float) and _is_number(level) else "ci"
    parts = [f"over {n} rows (live {n_live})"] if _is_number(n) and _is_number(n_live) else []
    ci = evidence.get("ci")
    if not told:
        lead = [f"candidate {_num(candidate)} vs live {_num(live)}"]
        lead += [f"{k} {_num(evidence[k])}" for k in ("ratio", "difference") if _is_number(evidence.get(k))]
        if isinstance(ci, list | tuple) and len(ci) == 2 and all(_is_number(v) for v in ci):
            lead.append(f"{sure} [{_num(ci[0])}, {_num(ci[1])}]")
        parts = lead + parts
        verdict = _verdict(evidence)
        return ", ".join(parts) + (f": {verdict}" if verdict else "")
    return ", ".join(parts + ([sure] if parts and sure != "ci" else []))


def _verdict(evidence: dict[str, Any]) -> str:
    """``material, not supported`` (inconclusive), ``material and supported`` (fails), ``not material``."""
    material, supported = evidence.get("material"), evidence.get("supported")
    if not isinstance(material, bool):
        return ""
    if not material:
        return "not material"
    return "material and supported" if supported else "material, not supported by the data"


def _tagged(lines: list[str], tag: str) -> list[str]:
    """``lines`` with ``tag`` after the first (the gate's own line; evidence lines follow)."""
    return [lines[0] + tag, *lines[1:]]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    """Three significant digits (``0.912``, ``41.2``), whole numbers from 1,000 up."""
    return f"{value:.0f}" if 1000 <= abs(value) < 1e7 else f"{value:.3g}"


def render(console: Console, report: GateStatus) -> None:
    """``VERSION: DECISION (N rows)``, then ``status  outcome (kind, severity)`` per gate; a long
    outcome wraps under itself, never under the status."""
    rows = f" ({report.n} rows)" if report.n is not None else ""
    why = f": {report.reason}" if report.reason else ""
    head = Text(f"{report.version or 'gates'}: ")
    head.append(report.decision, style=DECISION_STYLES.get(report.decision, "bold"))
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
            Text("\n".join(_tagged(outcome(gate).split("\n"), f" ({gate.kind}, {gate.severity})"))),
        )
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))
