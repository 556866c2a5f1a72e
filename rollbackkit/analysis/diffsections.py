"""A version diff grouped for reading: model, features, output contract, gates (one part per
gate), serving config, preprocessing code, then training data and runtime when they differ.

:func:`diff_sections` turns a :class:`~rollbackkit.analysis.diffreport.BundleDiff` (typed
``Any`` here: the diff module imports this one) into :class:`DiffSection` objects with a count
each; the schema diff panel and the diff's card render them. Serving values whose key names a
credential are hidden. Gate summaries and class names have their home here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rollbackkit.cards import number, redacted

ChangeKind = Literal["added", "removed", "changed"]
MOVED_IQR = 0.1
"""A median shift (in IQR units) that makes a feature's training distribution worth showing."""


@dataclass(frozen=True)
class DiffLine:
    """One difference: ``item`` (a feature, parameter, key or gate field) went ``before`` -> ``after``."""

    change: ChangeKind
    item: str
    field: str = ""
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class DiffSection:
    """One group of differences; ``parts`` are its sub-groups (one per gate), ``code`` a unified diff."""

    key: str
    title: str
    lines: list[DiffLine] = field(default_factory=list)
    parts: list[DiffSection] = field(default_factory=list)
    code: str = ""

    @property
    def count(self) -> int:
        """How many differences: lines, the parts' counts and the code's changed lines."""
        return len(self.lines) + sum(p.count for p in self.parts) + code_changes(self.code)

    @property
    def empty(self) -> bool:
        """True when nothing in this group differs."""
        return self.count == 0


def code_changes(diff: str) -> int:
    """Lines added or removed in a unified diff (headers not counted)."""
    return sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))


def diff_sections(d: Any) -> list[DiffSection]:
    """The diff's groups in reading order; the six main groups always, the others when not empty."""
    sections = [
        DiffSection("model", "Model", _model_lines(d), code=d.model_code_diff),
        DiffSection("features", "Features", feature_lines(d)),
        DiffSection("output", "Output contract", [_changed(c, c.field) for c in d.output]),
        DiffSection("gates", "Gates", parts=[_gate_section(g) for g in d.gates]),
        DiffSection("serving", "Serving config", [_changed(c, "", redact=True) for c in d.serving]),
        DiffSection("preprocess", "Preprocessing code", code=d.preprocess_diff),
    ]
    data = [DiffLine("changed", "training rows", "", d.rows[0], d.rows[1])] if d.rows[0] != d.rows[1] else []
    data += [
        DiffLine("changed", p.name, "median", round(p.median_from, 6), round(p.median_to, 6))
        for p in d.profile
        if abs(p.shift_iqr) >= MOVED_IQR
    ]
    extra = [
        DiffSection("data", "Training data", data),
        DiffSection("runtime", "Runtime", [_changed(c, "version") for c in d.runtime]),
    ]
    return sections + [s for s in extra if not s.empty]


def feature_lines(d: Any) -> list[DiffLine]:
    """Features added, removed, changed field by field, and a changed order."""
    f = d.features
    lines = [DiffLine("added", n) for n in f.added] + [DiffLine("removed", n) for n in f.removed]
    lines += [_changed(c, c.field) for c in f.changed]
    if f.reordered:
        lines.append(DiffLine("changed", "(order)", "order"))
    return lines


def distribution_features(d: Any) -> list[str]:
    """Features present in both versions whose schema changed or whose training median moved."""
    gone = set(d.features.added) | set(d.features.removed)
    names = [p.name for p in d.profile if abs(p.shift_iqr) >= MOVED_IQR] + [c.name for c in d.features.changed]
    return [n for n in dict.fromkeys(names) if n not in gone]


def _changed(c: Any, field_name: str, *, redact: bool = False) -> DiffLine:
    """A :class:`~rollbackkit.analysis.diffreport.Change` as a line."""
    return _line(c.name, field_name, c.before, c.after, redact=redact)


def _line(name: str, field_name: str, before: Any, after: Any, *, redact: bool = False) -> DiffLine:
    if redact:
        before, after = redacted(name, before), redacted(name, after)
    kind: ChangeKind = "added" if before is None else "removed" if after is None else "changed"
    return DiffLine(kind, name, field_name, before, after)


def _model_lines(d: Any) -> list[DiffLine]:
    m = d.model
    lines = [DiffLine("changed", "flavor", "", m.flavor.before, m.flavor.after)] if m.flavor else []
    if m.type is not None:
        lines.append(DiffLine("changed", "class", "", class_name(m.type.before), class_name(m.type.after)))
    lines += [_changed(c, "size") for c in m.size]
    for c in m.steps:
        if c.name or m.type is None:
            lines.append(_line(c.name or "(model)", "step", c.before, c.after))
    lines += [_changed(c, "param") for c in m.params]
    return lines


def _gate_section(g: Any) -> DiffSection:
    title = "file settings" if g.name == "*" else g.name
    if g.change == "changed":
        lines = [_line(c.field, "", c.before, c.after) for c in g.fields]
    else:
        spec = g.after if g.change == "added" else g.before
        said = gate_summary(spec or {})
        lines = [DiffLine(g.change, g.name, "", *((None, said) if g.change == "added" else (said, None)))]
    return DiffSection(f"gate:{g.name}", title, lines)


BOUNDS = {
    "share_above_p99_max": "share above p99 <=",
    "share_below_p1_max": "share below p1 <=",
}
"""Tail bounds in words (``min``/``max`` and their ``_ms`` forms are spoken by :func:`bound_words`)."""


def bound_words(threshold: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A gate's bounds in words (``<= 0.05``, ``>= 0.7``, ``0.7 .. 0.9``, ``<= 250 ms``, ``share
    above p99 <= 0.05``) and the threshold's other entries; the one home of bounds in words."""
    unit = " ms" if "max_ms" in threshold or "min_ms" in threshold else ""
    low, high = threshold.get("min", threshold.get("min_ms")), threshold.get("max", threshold.get("max_ms"))
    said = []
    if low is not None and high is not None:
        said.append(f"{number(low)} .. {number(high)}{unit}")
    elif high is not None:
        said.append(f"<= {number(high)}{unit}")
    elif low is not None:
        said.append(f">= {number(low)}{unit}")
    said += [f"{op} {number(threshold[k])}" for k, op in BOUNDS.items() if threshold.get(k) is not None]
    rest = {k: v for k, v in threshold.items() if k not in ("min", "max", "min_ms", "max_ms", *BOUNDS)}
    return " ".join(said), rest


def gate_summary(gate: dict[str, Any]) -> str:
    """``label_metric accuracy >= 0.9, warn``: kind, metric, bounds, severity."""
    parts = [str(gate.get("kind", "?"))]
    for key in ("metric", "quantile"):
        if gate.get(key) is not None:
            parts.append(str(gate[key]))
    said, _ = bound_words(gate)
    if said:
        parts.append(said)
    if gate.get("by") is not None:
        parts.append(f"by {gate['by']}")
    return " ".join(parts) + f", {gate.get('severity', 'rollback')}"


def class_name(qualified: Any) -> str:
    """A class's name without its module (a Python model's ``model.py`` as it is)."""
    text = str(qualified)
    return text if text.endswith(".py") else text.rsplit(".", 1)[-1]  # a Python model's type is model.py
