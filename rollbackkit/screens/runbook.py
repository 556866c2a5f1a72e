"""Runbook screens: the progress of a running runbook, its outcome, a saved record, the list.

- :func:`cell_progress`: ``cell 3/9: Preflight: can the target score today's features?`` on
  stderr, a live bar on a terminal, one plain line per cell otherwise (no escape codes in a
  pipe, a log or CI).
- :func:`outcome`: what ``runbook run`` prints when the notebook is saved.
- :func:`record`: ``runbook show``: every field of the record, nested values indented,
  long values wrapped at the console's width (never cut); a failed run leads with the
  failing cell and its error line.
- :func:`executed`: ``runbook list`` as a width-adaptive table.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rollbackkit.screens import tables, times

if TYPE_CHECKING:
    from rollbackkit.ops.runbooks import Progress, RunbookResult

INDENT = "  "


# --------------------------------------------------------------------------- runbook run
@contextmanager
def cell_progress(console: Console, template: str) -> Iterator[Progress]:
    """A progress callback for :func:`rollbackkit.ops.runbooks.run` that shows ``cell i/n: title``.

    On a terminal it is one live line with a bar (gone when the run ends); elsewhere (a pipe,
    a log file, ``TERM=dumb``) one plain line per cell, without escape codes.

    Args:
        console: Where progress goes (the CLI passes a stderr console).
        template: The template's name, shown while the kernel starts.

    Yields:
        The callback ``(i, n, title)``; ``i`` is 0 while the kernel starts.
    """
    if not console.is_terminal or console.is_dumb_terminal:

        def line(i: int, n: int, title: str) -> None:
            text = f"runbook {template}: {n} cells, starting the kernel" if i == 0 else f"cell {i}/{n}: {title}"
            console.print(text, markup=False, highlight=False, soft_wrap=True)

        yield line
        return

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(  # the count is in the description: no "0/?" before the cells are known
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(f"runbook {template}: starting", total=None)

    def live(i: int, n: int, title: str) -> None:
        room = max(console.width - 32, 10)
        text = f"runbook {template}: starting the kernel" if i == 0 else f"cell {i}/{n}: {title}"
        described = text if len(text) <= room else text[: room - 1] + "…"
        bar.update(task, completed=max(i - 1, 0), total=n, description=described)

    with bar:
        yield live


def outcome(console: Console, result: RunbookResult, saved: Mapping[str, Any] | None = None) -> None:
    """What ``runbook run`` prints: the verdict (or the failure, from the saved record), the
    notebook path whole (it wraps, never folds, so it can be copied) and its sha256."""
    if result.status == "failed":
        for line, style in failure_lines(saved or {"error": result.error, "verdict": result.verdict}, console.width):
            console.print(Text(line, style=style), soft_wrap=True, highlight=False)
    else:
        colour = "green" if result.verdict != "refused" else "red"
        console.print(Text.assemble((result.status, colour), ": verdict ", (result.verdict, "bold")), highlight=False)
        for line in plan_lines(((saved or {}).get("results") or {}).get("plan")):
            console.print(line, soft_wrap=False, highlight=False, markup=False)
    console.print(f"notebook: {result.notebook}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"sha256: {result.sha256}", soft_wrap=True, highlight=False, markup=False)


def plan_lines(plan: Any) -> list[str]:
    """A dry run's recorded plan (a ``RollbackPlan.to_dict()``) as lines: what would shift,
    the preflight verdict, and the rows each version would have quarantined and backfilled."""
    if not isinstance(plan, Mapping):
        return []
    lines = [
        f"  would shift {plan.get('name')} in {plan.get('env')}: {plan.get('previous') or 'nothing'} -> "
        f"{plan.get('target')}, via {plan.get('via')}",
        f"  preflight of {plan.get('target')}: {(plan.get('preflight') or {}).get('verdict', 'not run')}",
    ]
    for rows in plan.get("rows") or []:
        if not rows.get("logged"):
            lines.append(f"  {rows.get('version')}: no prediction log, no rows to quarantine or backfill")
        else:
            lines.append(
                f"  {rows.get('version')}: {rows.get('rows')} rows logged, {rows.get('quarantine')} would be "
                f"quarantined, {rows.get('backfill')} backfilled"
            )
    return lines


# --------------------------------------------------------------------------- runbook show
def failure_lines(record: Mapping[str, Any], width: int) -> list[tuple[str, str]]:
    """A failed runbook, first: where it stopped, the error line, and a verdict that says so,
    each wrapped at ``width`` with a hanging indent. Returns ``(line, style)`` pairs."""
    cell = record.get("failed_cell") or {}
    where = f" in cell [{cell.get('execution_count')}] {cell.get('source', '')}".rstrip() if cell else ""
    error = cell.get("error") or record.get("error") or "unknown"
    last = record.get("verdict")
    verdict = f"failed (the run stopped; its last recorded step was {last!r})"
    lines = [(f"FAILED{where}", "bold red")]
    lines += [(text, "red") for text in _hanging(f"{INDENT}error: ", str(error), width)]
    lines += [(text, "") for text in _hanging(f"{INDENT}verdict: ", verdict, width)]
    return lines


def record(console: Console, shown: Mapping[str, Any]) -> None:
    """``runbook show``: a saved runbook's whole record at the console's width.

    The first line is ``TEMPLATE: STATUS, verdict VERDICT`` (a failed run: ``TEMPLATE: FAILED in
    cell [n] <its first line>``, then its error line); then the notebook, when and by whom it
    ran, every parameter and every recorded result. Nested values are indented below their key;
    long values wrap (a word longer than the line folds), nothing is cut.
    """
    template = shown.get("template") or "runbook"
    if shown.get("status") == "failed":
        lines = failure_lines(shown, console.width)
        lines[0] = (f"{template}: {lines[0][0]}", lines[0][1])
        for line, style in lines:
            console.print(Text(line, style=style), soft_wrap=True, highlight=False)
    else:
        colour = "green" if shown.get("status") == "ok" and shown.get("verdict") != "refused" else "yellow"
        console.print(
            Text.assemble(f"{template}: ", (str(shown.get("status")), colour), f", verdict {shown.get('verdict')}"),
            highlight=False,
        )
    # the path wraps at the terminal's edge but is never folded by the layout: it can be copied
    console.print(f"{INDENT}notebook  {shown.get('notebook')}", soft_wrap=True, highlight=False, markup=False)
    about: list[tuple[str, Any]] = []
    if shown.get("executed"):
        ran = times.local(str(shown["executed"]), seconds=True) + f" ({times.zone()})"
        if shown.get("actor"):
            ran += f" by {shown['actor']}"
        if isinstance(shown.get("seconds"), int | float):
            ran += f", {shown['seconds']:g} s"
        about.append(("executed", ran))
    if about:
        _fields(console, [(INDENT + key, _scalar(value), "dim") for key, value in about])
    parameters = shown.get("parameters")
    if isinstance(parameters, Mapping) and parameters:
        console.print(Text("parameters", style="bold"), highlight=False)
        _fields(console, _rows(parameters, 1))
    results = dict(shown.get("results") or {})
    if shown.get("status") == "failed":
        results.pop("verdict", None)  # superseded: the run failed after recording it
    if results:
        console.print(Text("results", style="bold"), highlight=False)
        _fields(console, _rows(results, 1))


def _hanging(label: str, text: str, width: int) -> list[str]:
    """``label`` + ``text`` wrapped at ``width``, continuation lines under the text's start."""
    lines = textwrap.wrap(
        text,
        width=max(width, len(label) + 20),
        initial_indent=label,
        subsequent_indent=" " * len(label),
        break_on_hyphens=False,
    )
    return lines or [label.rstrip()]


def _fields(console: Console, rows: Sequence[tuple[str, str, str]]) -> None:
    """``key  value`` rows: keys never cut (they fold past a third of the width), values wrap."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(overflow="fold", max_width=max(console.width // 3, 12))
    grid.add_column(overflow="fold")
    for key, value, style in rows:
        grid.add_row(Text(key, style=style), Text(value))
    console.print(grid)


def _rows(values: Mapping[str, Any], depth: int, bullet: bool = False) -> list[tuple[str, str, str]]:
    """Rows for a mapping: scalars beside their key; mappings and lists of mappings below it."""
    rows: list[tuple[str, str, str]] = []
    for n, (key, value) in enumerate(values.items()):
        pad = INDENT * depth
        if bullet:
            pad = pad[:-2] + ("- " if n == 0 else "  ")
        if isinstance(value, Mapping) and value:
            rows.append((pad + str(key), "", "dim"))
            rows += _rows(value, depth + 1)
        elif isinstance(value, list) and any(isinstance(item, Mapping) and item for item in value):
            rows.append((pad + str(key), f"{len(value)} item{'' if len(value) == 1 else 's'}", "dim"))
            for item in value:
                if isinstance(item, Mapping) and item:
                    rows += _rows(item, depth + 2, bullet=True)
                else:
                    rows.append((INDENT * (depth + 1) + "- ", _scalar(item), "dim"))
        else:
            rows.append((pad + str(key), _scalar(value), "dim"))
    return rows


def _scalar(value: Any) -> str:
    """A value in plain words: yes/no, none, lists joined by commas."""
    if value is None or value == {} or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value)
    return str(value)


# --------------------------------------------------------------------------- runbook list
def executed(console: Console, runs: Sequence[Mapping[str, Any]]) -> None:
    """``runbook list``: when (local time), template, status, verdict, incident, seconds and
    the notebook, fitted to the console's width (the incident and the seconds go first when
    there is no room). The notebook's path is never wrapped (it is copied): a column when the
    table has room for it whole, else on its own line under each row."""
    if not runs:
        console.print("No runbook has run in this project (rollbackkit runbook run TEMPLATE).", highlight=False)
        return
    columns = [
        tables.Column(f"executed ({times.zone()})"),
        tables.Column("template"),
        tables.Column("status"),
        tables.Column("verdict"),
        tables.Column("incident", priority=2, wrap=True, min_width=10),
        tables.Column("took", priority=3, justify="right"),
        tables.Column("notebook"),
    ]
    rows = [
        [
            times.local(str(r.get("time") or "")),
            str(r.get("template") or ""),
            str(r.get("status") or ""),
            str(r.get("verdict") or ""),
            str(r.get("incident") or "-"),
            f"{r['seconds']:g} s" if isinstance(r.get("seconds"), int | float) else "",
            str(r.get("notebook") or ""),
        ]
        for r in runs
    ]
    fitted = tables.table(columns, rows, console.width)
    if fitted.width > console.width or "notebook" in fitted.dropped:  # the path on its own line instead
        fitted = tables.table(columns[:-1], [row[:-1] for row in rows], console.width, under=[row[-1] for row in rows])
    tables.show(console, fitted)
    if fitted.dropped:
        console.print(f"(not shown for want of width: {', '.join(fitted.dropped)}; --json shows every field)")
