"""Validation errors of a YAML config file as one line: the line number and the fix.

Shared by ``gates.yaml`` (:mod:`rollbackkit.analysis.gatespec`) and ``serving.yaml``: a
pydantic error's location is walked down the YAML node tree (:func:`line_of`) and the error
said as a short sentence (:func:`explain`), with its fix (:func:`gate_hint`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COMPARE_KEYS = ("compare", "max_ratio", "max_increase", "max_decrease", "confidence")


def error_location(error: Any) -> tuple[Any, ...]:
    """Where an error points in the YAML: its location, plus the key a gate rule names."""
    loc = tuple(error["loc"]) + (("kind",) if error["type"] == "union_tag_invalid" else ())
    key = (error.get("ctx") or {}).get("key")
    return loc + ((key,) if key else ())


def gate_named(data: Any, loc: tuple[Any, ...]) -> str:
    """``gate 'p99-vs-live': `` when the error is inside a named gate, else ``""``."""
    if len(loc) >= 2 and loc[0] == "gates" and isinstance(loc[1], int) and isinstance(data, dict):
        gates = data.get("gates")
        if isinstance(gates, list) and loc[1] < len(gates) and isinstance(gates[loc[1]], dict):
            name = gates[loc[1]].get("name")
            if isinstance(name, str) and name:
                return f"gate {name!r}: "
    return ""


def line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest YAML node along a pydantic error location."""
    from yaml import MappingNode, SequenceNode

    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None and any(getattr(k, "value", None) == part for k, _ in node.value):
                child = node
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            if isinstance(node, MappingNode) and isinstance(part, str):
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                if key is not None:
                    line = key.start_mark.line + 1
            continue  # e.g. the discriminator tag pydantic adds to the location
        node, line = child, child.start_mark.line + 1
    return line


def gate_hint(error: Any, kinds: Sequence[str]) -> str:
    """The fix of a gates.yaml error: the valid kinds only when the kind is what is wrong."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"Valid gate kinds: {', '.join(kinds)}; see rollbackkit.analysis.gatespec for their keys."
    return "Fix that line; rollbackkit.analysis.gatespec lists each gate kind's keys and bounds."


def explain(error: Any) -> str:
    """One pydantic validation error as a short sentence naming the key and the fix."""
    kind, loc = error["type"], [str(p) for p in error["loc"] if not isinstance(p, int)]
    key = loc[-1] if loc else "value"
    if kind == "union_tag_invalid":
        return (
            f"unknown gate kind {error['input'].get('kind')!r}"
            if isinstance(error.get("input"), dict)
            else ("unknown gate kind")
        )
    if kind == "union_tag_not_found":
        return "a gate without a 'kind'"
    if kind == "extra_forbidden" and key in COMPARE_KEYS and len(loc) >= 2:
        return (
            f"{key} on a {loc[-2]} gate: compare: live works only on latency, error_rate, label_metric "
            "and slice (label metric or error_rate) gates"
        )
    if kind == "gate_rule":
        return str(error["msg"])
    if kind == "extra_forbidden":
        return f"unknown key {key!r}"
    if kind == "literal_error":
        return f"{key} {error['input']!r} is not one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal"):
        return f"{key} must be {error['msg'].removeprefix('Input should be ')}, got {error['input']!r}"
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "finite_number":
        return f"{key} must be a finite number, got {error['input']!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{key} must be a whole number, got {error['input']!r}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc) or 'gates'}: {error['msg']}"
