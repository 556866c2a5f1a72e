"""One width-adaptive table for every screen: the fields a reader needs are never cut.

Each :class:`Column` says how much it matters (``priority``: 0 is always shown, larger
numbers are dropped first) and whether it may wrap (a reason, a message) or must stay whole
(a time, a version, an action). :func:`fit` decides, for the terminal's width, which columns
are shown; :func:`table` builds the rich table (borderless, like ``kubectl get``) from what fits::

    columns = [Column("time"), Column("reason", wrap=True, min_width=20), Column("tag", priority=2)]
    shown = table(columns, rows, width=console.width)
    show(console, shown)
    if shown.dropped: console.print(f"(not shown: {', '.join(shown.dropped)}; --wide shows every field)")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len

GAP = 2
"""Cells between two columns."""
NARROWEST = 8
"""The least a wrapping column shrinks to when the never-dropped columns do not fit otherwise."""
INDENT = "  "
"""The indent of a line printed under its row (:func:`table`'s ``under``)."""


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
        width: The width the table takes as laid out (more than the terminal's only when its
            never-cut columns need it; :func:`show` prints it whole then).
    """

    table: Any
    columns: tuple[Column, ...]
    dropped: tuple[str, ...]
    natural: int = 0
    width: int = 0


def _natural(column: Column, cells: Sequence[str]) -> int:
    """The width a column needs to show every cell on one line."""
    widest = max((max((cell_len(line) for line in cell.split("\n")), default=0) for cell in cells), default=0)
    return max(cell_len(column.header), widest)


def _need(column: Column, natural: int) -> int:
    """The least width a column can live with: its natural width, or ``min_width`` when it wraps."""
    return min(natural, max(column.min_width, cell_len(column.header))) if column.wrap else natural


def _empty(rows: Sequence[Sequence[str]], i: int) -> bool:
    """Every cell of column ``i`` is empty (such a column is not shown at all)."""
    return bool(rows) and all(not str(r[i]).strip() for r in rows)


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indexes of the columns shown at ``width``: low-priority ones dropped until the rest fit.

    Never-cut columns count with their widest cell, wrapping ones with their ``min_width``;
    a priority-0 column is never dropped (its wrapping columns then shrink, see :func:`widths`).
    A column whose cells are all empty is never shown (nor named as dropped).
    """
    needs = [_need(c, _natural(c, [str(r[i]) for r in rows])) for i, c in enumerate(columns)]
    shown = [i for i in range(len(columns)) if not _empty(rows, i)]

    def total() -> int:
        return sum(needs[i] for i in shown) + GAP * max(len(shown) - 1, 0)

    while total() > width:
        droppable = [i for i in shown if columns[i].priority > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].priority, i)))
    return shown


def _fill(naturals: Sequence[int], floors: Sequence[int], room: int) -> list[int]:
    """Widths between ``floors`` and ``naturals`` summing to at most ``room``: the widest shrink first."""
    if sum(naturals) <= room:
        return list(naturals)
    if sum(floors) >= room:
        return list(floors)
    cap = max(naturals)
    while cap > 0 and sum(min(n, max(f, cap)) for n, f in zip(naturals, floors, strict=True)) > room:
        cap -= 1
    return [min(n, max(f, cap)) for n, f in zip(naturals, floors, strict=True)]


def widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], shown: Sequence[int], width: int) -> list[int]:
    """The width of each shown column at ``width`` (aligned with ``shown``).

    A never-cut column gets its widest cell, always. Wrapping columns share what is left, none
    below its ``min_width`` while that fits; when it does not, they shrink to what is left, none
    below :data:`NARROWEST`. The sum may then exceed ``width``: better wider than cut.
    """
    naturals = [_natural(columns[i], [str(r[i]) for r in rows]) for i in shown]
    wrapping = [k for k, i in enumerate(shown) if columns[i].wrap]
    room = width - GAP * max(len(shown) - 1, 0) - sum(n for k, n in enumerate(naturals) if k not in wrapping)
    wanted = [naturals[k] for k in wrapping]
    preferred = [_need(columns[shown[k]], naturals[k]) for k in wrapping]
    if sum(preferred) <= room:
        filled = _fill(wanted, preferred, room)
    else:
        filled = _fill(wanted, [min(n, NARROWEST) for n in wanted], room)
    result = list(naturals)
    for k, w in zip(wrapping, filled, strict=True):
        result[k] = w
    return result


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    title: str | None = None,
    under: Sequence[str] | None = None,
) -> Fitted:
    """A borderless rich table of the columns that fit ``width`` (see :func:`fit`, :func:`widths`).

    Args:
        columns: Every column, in display order.
        rows: One sequence of cell strings per row, aligned with ``columns``.
        width: The terminal's width in cells (``Console.width``).
        title: An optional title above the table.
        under: One line per row, printed whole (never wrapped nor cut) on its own line under
            the row, indented (a path to copy).

    Returns:
        :class:`Fitted`: the table, the columns shown and the headers dropped; print it with
        :func:`show` (a table wider than the terminal is then printed whole, not cropped).
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shown = fit(columns, rows, width)
    sizes = widths(columns, rows, shown, width)

    def grid(header: bool, body: Sequence[Sequence[str]]) -> Table:
        made = Table(
            box=None,
            pad_edge=False,
            padding=(0, GAP // 2),
            show_edge=False,
            show_header=header,
            title=title if header else None,
            title_justify="left",
        )
        for i, size in zip(shown, sizes, strict=True):
            c = columns[i]
            if c.wrap:
                made.add_column(c.header, justify=c.justify, overflow="fold", width=size)
            else:
                made.add_column(c.header, justify=c.justify, no_wrap=True, width=size)
        for row in body:
            made.add_row(*(str(row[i]) for i in shown))
        return made

    total = sum(sizes) + GAP * max(len(shown) - 1, 0)
    natural = sum(_natural(columns[i], [str(r[i]) for r in rows]) for i in shown) + GAP * max(len(shown) - 1, 0)
    rendered: Any
    if under is None:
        rendered = grid(True, rows)
    else:
        parts: list[Any] = []
        for n, (row, line) in enumerate(zip(rows, under, strict=True)):
            parts.append(grid(n == 0, [row]))
            parts.append(Text(INDENT + line, no_wrap=True, overflow="ignore"))
        rendered = Group(*parts)
        total = max([total, *(cell_len(INDENT + line) for line in under)])
        natural = max(natural, total)
    dropped = tuple(c.header for j, c in enumerate(columns) if j not in shown and not _empty(rows, j))
    return Fitted(rendered, tuple(columns[i] for i in shown), dropped, natural, total)


def show(console: Any, fitted: Fitted) -> None:
    """Print ``fitted`` whole: a table wider than the console (never-cut columns that need it)
    widens the console for it rather than being cropped (the terminal wraps its long lines)."""
    before = console.width
    if fitted.width > before:
        console.width = fitted.width
    try:
        console.print(fitted.table, crop=False, highlight=False)
    finally:
        console.width = before
