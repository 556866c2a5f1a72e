"""One width-adaptive table for every screen: the fields a reader needs are never cut.

Each :class:`Column` says how much it matters (``priority``: 0 is always shown, larger
numbers are dropped first) and whether it may wrap (a reason, a message) or must stay whole
(a time, a version, an action). :func:`fit` decides, for the terminal's width, which columns
are shown; :func:`table` builds the rich table (borderless, like ``kubectl get``) from what fits::

    columns = [Column("time"), Column("reason", wrap=True, min_width=20), Column("tag", priority=2)]
    shown = table(columns, rows, width=console.width)
    console.print(shown.table)
    if shown.dropped: console.print(f"(not shown: {', '.join(shown.dropped)}; --wide shows every field)")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len

GAP = 2
"""Cells between two columns."""


@dataclass(frozen=True)
class Column:
    """One column of a width-adaptive table.

    Attributes:
        header: The heading (also how a dropped column is named).
        priority: 0: always shown; otherwise dropped when the table does not fit, highest first.
        wrap: True: the cell may wrap onto more lines (down to ``min_width``); False: it is
            never cut nor wrapped (its width is its widest cell).
        min_width: The narrowest a wrapping column may become (ignored when ``wrap`` is False).
        justify: Cell alignment.
    """

    header: str
    priority: int = 0
    wrap: bool = False
    min_width: int = 16
    justify: Literal["left", "right", "center"] = "left"


@dataclass(frozen=True)
class Fitted:
    """A table laid out for one width.

    Attributes:
        table: The rich table to print.
        columns: The columns shown, in order.
        dropped: Headers of the columns left out for want of width.
        natural: The width the shown columns take with no cell wrapped (for a ``--wide``
            screen, which may be wider than the terminal: ``console.width = max(..., natural)``).
    """

    table: Any
    columns: tuple[Column, ...]
    dropped: tuple[str, ...]
    natural: int = 0


def _natural(column: Column, cells: Sequence[str]) -> int:
    """The width a column needs to show every cell on one line."""
    widest = max((max((cell_len(line) for line in cell.split("\n")), default=0) for cell in cells), default=0)
    return max(cell_len(column.header), widest)


def _need(column: Column, natural: int) -> int:
    """The least width a column can live with: its natural width, or ``min_width`` when it wraps."""
    return min(natural, max(column.min_width, cell_len(column.header))) if column.wrap else natural


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indexes of the columns shown at ``width``: low-priority ones dropped until the rest fit.

    Never-cut columns count with their widest cell, wrapping ones with their ``min_width``;
    a priority-0 column is never dropped (the table may then wrap its wrapping columns harder).
    """
    needs = [_need(c, _natural(c, [str(r[i]) for r in rows])) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))

    def total() -> int:
        return sum(needs[i] for i in shown) + GAP * max(len(shown) - 1, 0)

    while total() > width:
        droppable = [i for i in shown if columns[i].priority > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].priority, i)))
    return shown


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *, title: str | None = None) -> Fitted:
    """A borderless rich table of the columns that fit ``width`` (see :func:`fit`).

    Args:
        columns: Every column, in display order.
        rows: One sequence of cell strings per row, aligned with ``columns``.
        width: The terminal's width in cells (``Console.width``).
        title: An optional title above the table.

    Returns:
        :class:`Fitted`: the table, the columns shown and the headers dropped.
    """
    from rich.table import Table

    shown = fit(columns, rows, width)
    grid = Table(box=None, pad_edge=False, padding=(0, GAP // 2), show_edge=False, title=title, title_justify="left")
    total = GAP * max(len(shown) - 1, 0)
    for i in shown:
        c = columns[i]
        natural = _natural(c, [str(r[i]) for r in rows])
        total += natural
        if c.wrap:
            grid.add_column(c.header, justify=c.justify, overflow="fold", min_width=_need(c, natural))
        else:
            grid.add_column(c.header, justify=c.justify, no_wrap=True, min_width=natural)
    for row in rows:
        grid.add_row(*(str(row[i]) for i in shown))
    dropped = tuple(c.header for j, c in enumerate(columns) if j not in shown)
    return Fitted(grid, tuple(columns[i] for i in shown), dropped, total)
