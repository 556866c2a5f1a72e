"""Tolerance: a gate's failure counts only after ``failure_limit`` consecutive failing evaluations.

:func:`tolerate` is pure: the caller (the watchdog) keeps the streaks between evaluations.
"""

from __future__ import annotations

from dataclasses import replace

from rollbackkit.analysis.gateresult import GateReport, GateResult, decide


def tolerate(report: GateReport, streaks: dict[str, int]) -> tuple[GateReport, dict[str, int]]:
    """Apply each gate's ``failure_limit`` to a report, given the failing streaks so far.

    A failing gate whose streak (this failure included) is below its limit becomes
    ``inconclusive`` with evidence ``failing: "1 of 3"``; at the limit it stays ``fail``.
    Only a ``pass`` resets the gate's streak: an insufficient, inconclusive or skipped
    evaluation keeps it (labels trickling in cannot hide a failing gate). Returns the report
    (decision recomputed) and the new streaks.
    """
    gates: list[GateResult] = []
    after: dict[str, int] = {}
    for gate in report.gates:
        if gate.status != "pass" and gate.status != "fail" and gate.name in streaks:
            after[gate.name] = streaks[gate.name]
        if gate.status == "fail":
            streak = after[gate.name] = streaks.get(gate.name, 0) + 1
            if streak < gate.failure_limit:
                failing = f"{streak} of {gate.failure_limit}"
                gate = replace(gate, status="inconclusive", evidence={**gate.evidence, "failing": failing})
        gates.append(gate)
    return GateReport(report.version, report.n, decide(gates), gates), after
