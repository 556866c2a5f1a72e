"""The ``labels ingest`` screen: what was stored, replaced and refused, in a few lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from rollbackkit.ops.label_results import LabelIngest


def counted(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``1,200 lines``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def lines(result: LabelIngest) -> list[Text]:
    """The screen's lines: the counts, then the unknown ids (a sample) and what was skipped."""
    where = "the log file" if result.via == "log" else result.via
    head = Text(f"{result.name} in {result.env}: ", style="bold")
    head.append(f"received {result.received:,}, stored {result.stored:,}", style="green" if result.stored else "yellow")
    head.append(f", replaced {result.replaced:,}, unknown {result.unknown:,}")
    chunks = f" in {result.chunks} chunks" if result.chunks > 1 else ""
    head.append(f" (by {result.on}, via {where}{chunks})", style="dim")
    out = [head]
    if result.unknown:
        sample = ", ".join(result.unknown_sample)
        more = result.unknown - len(result.unknown_sample)
        text = Text(f"  unknown ({result.unknown:,}, not stored): ", style="yellow")
        text.append(sample + (f" and {more:,} more" if more > 0 else ""))
        out.append(text)
        if not result.stored:
            out.append(Text(f"  no {result.on} matched a logged row of {result.name} in {result.env}", style="yellow"))
    if result.duplicates:
        out.append(
            Text(f"  {counted(result.duplicates, 'line')} overridden by a later line for the same row (the last wins)")
        )
    if result.missing:
        out.append(Text(f"  {counted(result.missing, 'line')} without a label skipped"))
    if result.replaced:
        out.append(
            Text(f"  {counted(result.replaced, 'row')} had a label: the new one wins, the older is kept as history")
        )
    if result.on == "key" and result.max_rows_per_key:
        out.append(Text(f"  one key labelled at most {counted(result.max_rows_per_key, 'logged row')}", style="dim"))
    are = "is" if result.rows_labelled == 1 else "are"
    out.append(Text(f"  {counted(result.rows_labelled, 'logged row')} {are} labelled now", style="dim"))
    return out


def render(console: Any, result: LabelIngest) -> None:
    """Print the screen."""
    for line in lines(result):
        console.print(line, soft_wrap=True)
