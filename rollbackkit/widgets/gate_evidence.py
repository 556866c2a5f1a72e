"""One gate's evidence as readable HTML: observed vs threshold, n, the rest, and its slices.

Nothing is cut off: every evidence entry is shown (nested values as ``key=value`` lists), and
a slice gate's slices get a table of their own with the worst slice highlighted.
"""

from __future__ import annotations

import html
from typing import Any

from rollbackkit import cards
from rollbackkit.analysis.diffsections import bound_words
from rollbackkit.analysis.gates import GateResult
from rollbackkit.widgets._common import Safe, badge, table

WORST_SLICE_ROW = cards.tint("bad") + ";font-weight:bold"
"""A failing gate's worst slice: a translucent red, readable in light and dark themes."""
SHOWN_APART = ("worst_slice", "slices", "n", "metric", "reason")


def number(value: Any) -> str:
    """A value for a table cell (:func:`rollbackkit.cards.number`), None as ``-``."""
    return cards.number(value, missing="-")


def readable(value: Any) -> str:
    """Any evidence value in words: dicts as ``k=v, ...``, lists joined, nothing truncated."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(readable(v) for v in value) or "(none)"
    return number(value)


def bound(threshold: dict[str, Any]) -> str:
    """The threshold in words (:func:`rollbackkit.analysis.diffsections.bound_words`), then its other entries."""
    said, rest = bound_words(threshold)
    return ", ".join(p for p in (said, readable(rest) if rest else "") if p) or "-"


def rows_of(evidence: dict[str, Any]) -> int | None:
    """The rows the gate judged (``n``, else the labelled rows of a label gate)."""
    n = evidence.get("n", evidence.get("labelled"))
    return n if isinstance(n, int) else None


def slice_label(value: Any) -> str:
    """``contract=month-to-month`` for a slice's key."""
    return readable(value) if isinstance(value, dict) else str(value)


def evidence_html(gate: GateResult) -> str:
    """A gate's evidence: a summary line, observed vs threshold, other entries, slices."""
    evidence = dict(gate.evidence)
    failing = gate.status == "fail"
    measure = evidence.get("metric") or evidence.get("column") or gate.kind
    head = table(
        ["measure", "observed", "threshold", "n"],
        [(measure, number(gate.observed), bound(gate.threshold), number(rows_of(evidence)))],
        "rollbackkit-gate-observed",
    )
    reason = evidence.get("reason")
    why = f"<div><i>{html.escape(str(reason))}</i></div>" if reason else ""
    others = [(k, readable(v)) for k, v in evidence.items() if k not in SHOWN_APART]
    more = table(["evidence", "value"], others, "rollbackkit-gate-more") if others else ""
    words = html.escape(gate.words()) if hasattr(gate, "words") else ""
    return (
        f"<details class='rollbackkit-gate-evidence' {'open' if failing else ''} "
        f"style='margin:4px 0'><summary><b>{html.escape(gate.name)}</b> {badge(gate.status)} "
        f"<span style='word-break:break-word'>{words}</span></summary>"
        f"<div style='margin-left:16px'>{head}{why}{more}{_slices(evidence, failing)}</div></details>"
    )


def _slices(evidence: dict[str, Any], failing: bool) -> str:
    values = evidence.get("slices") or []
    worst = evidence.get("worst_slice")
    if not values:
        return ""
    rows, styles = [], []
    for item in values:
        key = item.get("slice") if isinstance(item, dict) else item
        is_worst = worst is not None and key == worst
        label = slice_label(key)
        marked = Safe(f"<span class='rollbackkit-failing-slice'>{html.escape(label)}</span>")
        cell = marked if is_worst and failing else label
        detail = item if isinstance(item, dict) else {}
        extra = {k: v for k, v in detail.items() if k not in ("slice", "n", "value", "verdict")}
        rows.append(
            (
                cell,
                number(detail.get("n")),
                number(detail.get("value")),
                detail.get("verdict", ""),
                readable(extra) if extra else "",
            )
        )
        styles.append(WORST_SLICE_ROW if is_worst and failing else "font-weight:bold" if is_worst else "")
    return "<div style='margin-top:4px'>Slices (the worst in bold, red when the gate failed):</div>" + table(
        ["slice", "n", "value", "verdict", "more"], rows, "rollbackkit-gate-slices", styles
    )
