"""The ``journal verify`` screen: each broken line in red, then OK or FAILED."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollbackkit.ops.journal_check import JournalCheck


def render(console: Any, check: JournalCheck) -> None:
    """Print ``line N: problem`` for each problem, then ``OK`` or ``FAILED``."""
    for p in check.problems:
        console.print(f"[red]line {p.line}[/]: {p.problem}")
    console.print("[green]OK[/]" if check.ok else "[red]FAILED[/]")
