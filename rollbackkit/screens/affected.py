"""The ``affected`` screen: the rows a version wrote, counted and sampled, whole at 80 columns."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rollbackkit.screens import times
from rollbackkit.screens.tables import Column, show, table

if TYPE_CHECKING:
    from rollbackkit.ops.log_results import AffectedRows

SAMPLE_ROWS = 5
"""Sample rows shown (``--json`` has every row the server returned)."""


def outputs(values: Any) -> str:
    """A row's outputs as ``prediction=yes proba_yes=0.830`` (numbers to three decimals).

    Of the class probabilities only the predicted class's is shown when there is one
    (``--json`` has them all).
    """
    if not isinstance(values, dict):
        return "" if values is None else str(values)
    chosen = f"proba_{values.get('prediction')}"
    if chosen in values:
        values = {k: v for k, v in values.items() if not k.startswith("proba_") or k == chosen}
    parts = []
    for key, value in values.items():
        if isinstance(value, float):
            text = f"{value:.3f}"
        elif isinstance(value, str | int | bool) or value is None:
            text = str(value)
        else:
            text = json.dumps(value, default=str)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def render(console: Any, result: AffectedRows, *, sample_rows: int = SAMPLE_ROWS) -> None:
    """Print the counts, the time range (local), rows per table, and the first sample rows."""
    n = result.shadow_rows
    shadowed = f" ({n} shadow row{'' if n == 1 else 's'}, never in production)" if n else ""
    console.print(
        f"{result.rows} rows by {result.name}@{result.version} in {result.env}: {result.quarantined} quarantined, "
        f"{result.backfilled} backfilled{shadowed}",
        highlight=False,
    )
    if result.first and result.last:
        console.print(
            f"  logged {times.local(result.first, seconds=True)} to {times.local(result.last, seconds=True)} "
            f"({times.zone()})",
            highlight=False,
        )
    for part in result.tables:
        console.print(f"  {part.table}: {part.rows} rows", highlight=False)
    sample = result.sample or []
    if not sample:
        return
    columns = [
        Column("request id"),
        Column("row", justify="right"),
        Column("status"),
        Column("outputs", wrap=True, min_width=26),
        Column("time", priority=1),
        Column("deployment", priority=2),
    ]
    rows = [
        [
            str(r.get("request_id", "")),
            str(r.get("row", "")),
            str(r.get("status", "") or ""),
            outputs(r.get("outputs")),
            times.local(str(r.get("time", "")), seconds=True)[11:] if r.get("time") else "",
            str(r.get("deployment", "") or ""),
        ]
        for r in sample[:sample_rows]
    ]
    shown = min(len(sample), sample_rows)
    console.print(f"\nFirst {shown} of {result.rows} rows (--json for the sample):", highlight=False)
    show(console, table(columns, rows, console.width))
