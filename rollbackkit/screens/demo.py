"""The demo's summary (``rollbackkit demo``), readable at 80 columns.

Three width-adaptive tables (:mod:`rollbackkit.screens.tables`): the versions, what served
prod when (times of day, actions whole, reasons in plain words: no dict reprs) and the gate
report of the version rolled back from (each gate as ``score-drift psi 0.912 > 0.25``); then
the story's numbers, one fact a line, and the command that explores the project on a line of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollbackkit.screens import times
from rollbackkit.screens.history import action, reason
from rollbackkit.screens.tables import Column, show, table

if TYPE_CHECKING:
    from rollbackkit.analysis.gates import GateResult
    from rollbackkit.demo.result import DemoResult


def gate_words(g: GateResult) -> str:
    """A gate's outcome in plain words, without its status (``score-drift psi 0.912 > 0.25``)."""
    return g.words()


def _print(console: Any, columns: list[Column], rows: list[list[str]], title: str) -> None:
    fitted = table(columns, rows, console.width, title=title)
    show(console, fitted)
    if fitted.dropped:
        console.print(f"(not shown for want of width: {', '.join(fitted.dropped)})", style="dim", highlight=False)


def render(console: Any, result: DemoResult) -> None:
    """Print the demo's summary on ``console`` (its width decides the layout).

    Args:
        console: A rich console.
        result: What :func:`rollbackkit.demo.story.run_demo` did (steps that did not run are None).
    """
    _print(
        console,
        [Column("version"), Column("features"), Column("bundle id", priority=1), Column("message", wrap=True)],
        [[v.version, str(v.features), v.bundle_id[:19], v.message] for v in result.versions],
        "Versions",
    )
    console.print()
    _print(
        console,
        [
            Column(f"time ({times.zone()})"),
            Column("version"),
            Column("action"),
            Column("reason", wrap=True, min_width=24),
        ],
        [[times.local(a.time), a.version, action(a), reason(a, lines=True)] for a in result.history],
        "What served prod when",
    )
    console.print()
    report = result.gates
    evaluated = (report.gates if report is not None else None) or []
    _print(
        console,
        [Column("status"), Column("gate: observed and bound", wrap=True, min_width=24)],
        [[g.status, gate_words(g)] for g in evaluated],
        f"Gate report of {report.version if report and report.version else '?'}"
        + (f" ({report.n} rows)" if report is not None and report.n is not None else ""),
    )
    console.print()
    rows, schema = result.affected, result.preflight
    total = sum(seconds for _, _, seconds in result.steps)
    facts = [
        f"[bold]Traffic shift[/]: {result.shift_ms} ms; gate breach -> v1.0.0 live in {result.breach_to_shift_ms} ms",
        f"[bold]Schema[/]: 52 live columns vs v1.0.0 -> {schema.live_52 if schema else None} "
        f"(drops {len(schema.dropped) if schema else 0});",
        f"  a missing column -> {schema.missing_column if schema else None} "
        f"({', '.join(schema.named if schema else [])})",
        f"[bold]Side effects[/]: {rows.rows if rows else None} rows by v1.1.0, never in production;",
        f"  {rows.backfilled if rows else None} backfilled with v1.0.0 (audit in backfill_audit)",
        f"[bold]Runbook[/]: {result.runbook.get('verdict')} -> {result.runbook.get('notebook')}",
        f"[bold]Done[/] in {total:.0f} s. Project: {result.directory}",
        "Explore the project in the console (or open notebooks/explore.ipynb in Jupyter):",
    ]
    for fact in facts:
        console.print(fact, highlight=False)
    console.print(
        f"  ROLLBACKKIT_REPO={result.directory} .venv/bin/voila notebooks/console.ipynb",
        highlight=False,
        markup=False,
    )
