"""The ``list`` screen: registered versions, whole at 80 columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rollbackkit.screens import times
from rollbackkit.screens.tables import Column, show, table

if TYPE_CHECKING:
    from rollbackkit.bundle.version import VersionInfo


def render(console: Any, infos: Sequence[VersionInfo]) -> None:
    """Print one row per version: name, version, creation time (local), commit, message, bundle id.

    Name, version and time are never cut; the message wraps; the bundle id and the author are
    dropped first when the terminal is narrow.
    """
    if not infos:
        console.print("No versions registered yet (rollbackkit register).", highlight=False)
        return
    columns = [
        Column("name"),
        Column("version"),
        Column(f"created ({times.zone()})"),
        Column("commit", priority=1),
        Column("message", wrap=True, min_width=16, priority=2),
        Column("author", priority=4),
        Column("bundle id", priority=3),
    ]
    rows = [[i.name, i.version, times.local(i.created), i.commit[:10], i.message, i.author, i.bundle_id] for i in infos]
    fitted = table(columns, rows, console.width)  # a column with every cell empty is not shown
    show(console, fitted)
    if fitted.dropped:
        console.print(
            f"not shown at this width: {', '.join(fitted.dropped)} (show NAME@VERSION has all)",
        )


def components(console: Any, data: dict[str, Any]) -> None:
    """Print ``show``'s components: role and md5 never cut (the hash is what one compares), the
    path wraps, size and storage dropped first when the terminal is narrow."""
    columns = [
        Column("role"),
        Column("path", wrap=True, min_width=16),
        Column("md5", priority=1),
        Column("size", justify="right", priority=2),
        Column("storage", priority=3),
    ]
    rows = [[role, c["path"], c["md5"], str(c["size"]), c["storage"]] for role, c in data["components"].items()]
    fitted = table(columns, rows, console.width)
    show(console, fitted)
    if fitted.dropped:
        console.print(f"not shown at this width: {', '.join(fitted.dropped)} (--json has all)", highlight=False)
