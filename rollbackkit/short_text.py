"""A value (or a change) in a short line: values cut at a character limit, floats to
:data:`DIFF_DIGITS` digits, a changed list as what was removed and added, two long texts from where
they differ (numbers and times in a cell: :mod:`rollbackkit.cards`)."""

from __future__ import annotations

import ast
from typing import Any

from rollbackkit.cards import number

DIFF_DIGITS = 6
"""Digits of a diff's before/after values: a trained range reads 10.892, not 10.89 on both sides."""


def short(value: Any, limit: int = 80) -> str:
    """A value in at most ``limit`` characters (floats to :data:`DIFF_DIGITS` digits; None as "")."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else number(value, DIFF_DIGITS) if isinstance(value, float) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def list_change(before: Any, after: Any, limit: int = 80) -> tuple[str, str] | None:
    """A changed list as ``("5 items, -[...]", "6 items, +[...]")`` (what was removed, what was
    added; ``same items, new order`` when only the order changed). Lists stored as their repr
    (a model's parameters) are read back; two long texts lose their shared start instead
    (``…, 'proline']``). None for other values."""
    a, b = _as_list(before), _as_list(after)
    if a is None or b is None:
        return _past_shared_start(before, after, limit)
    seen_a, seen_b = {repr(v) for v in a}, {repr(v) for v in b}
    removed = [v for v in a if repr(v) not in seen_b]
    added = [v for v in b if repr(v) not in seen_a]
    if not removed and not added:
        return f"{len(a)} items", f"{len(b)} items, same items, new order"
    minus = f", -{short(removed, limit)}" if removed else ""
    plus = f", +{short(added, limit)}" if added else ""
    return f"{len(a)} items{minus}", f"{len(b)} items{plus}"


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and value[:1] in "[(" and value[-1:] in "])":
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        return list(parsed) if isinstance(parsed, list | tuple) else None
    return None


def _past_shared_start(before: Any, after: Any, limit: int) -> tuple[str, str] | None:
    """Two long texts that start alike, each from a little before where they differ."""
    if not (isinstance(before, str) and isinstance(after, str)) or max(len(before), len(after)) <= limit:
        return None
    same = next(
        (i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y), min(len(before), len(after))
    )
    if same < limit // 2:
        return None
    start = max(0, same - 20)
    return short("…" + before[start:], limit), short("…" + after[start:], limit)
