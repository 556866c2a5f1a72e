"""A server's JSON answer read into a typed result, or an :class:`~rollbackkit.errors.UnknownAnswer`
that says it came in a shape this client does not know (and whether what it did stands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rollbackkit.errors import UnknownAnswer

_R = TypeVar("_R")


def from_server(
    parse: Callable[[dict[str, Any]], _R], data: dict[str, Any], url: str | None, what: str, *, done: bool = False
) -> _R:
    """``parse(data)``; :class:`UnknownAnswer` when the server at ``url`` answered ``what`` in
    another shape (``url`` None: ``data`` was built here).

    ``done``: the server has already acted (a traffic move, a backfill), so the error says
    that it stands and how to see it, instead of reading as a failure to act.
    """
    if url is None:
        return parse(data)
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        shape = f"in a shape this client does not know ({type(exc).__name__}: {exc})"
        if done:
            raise UnknownAnswer(
                f"The server at {url} did the {what}, but answered {shape}.",
                "It stands: see it with rollbackkit status (or history); "
                "run the same rollbackkit version in the server and the client.",
            ) from exc
        raise UnknownAnswer(
            f"The server at {url} answered {what} {shape}.",
            "Run the same rollbackkit version in the server and the client.",
        ) from exc
