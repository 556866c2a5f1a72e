"""The demo: the whole story in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rollbackkit.cli.common import rich_console

commands = typer.Typer()
"""The demo command."""


@commands.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] = Path("demo-project"),
    notify: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Send each event to this webhook, signed with $ROLLBACKKIT_NOTIFY_SECRET."),
    ] = None,
) -> None:
    """The whole story: pipeline, canary, silent degradation, auto-rollback, runbook, backfill."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rollbackkit.demo.story import run_demo

    console = rich_console()
    console.rule("[bold]rollbackkit demo")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, Any] = {}

        def start(name: str) -> None:
            tasks[name] = bar.add_task(name, total=1)

        def report(name: str, outcome: str, seconds: float) -> None:
            bar.update(tasks[name], completed=1, description=f"[green]✓[/] {name}: {outcome}")

        result = run_demo(directory, report=report, start=start, notify=notify)
    _demo_summary(console, result)


def _demo_summary(console: Any, result: Any) -> None:
    """The demo's summary tables and numbers, fitted to the terminal (:mod:`rollbackkit.screens.demo`)."""
    from rollbackkit.screens.demo import render

    render(console, result)
