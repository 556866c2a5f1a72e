"""A version diff as data (:class:`BundleDiff` and its parts) and its text and HTML renderings.

:mod:`rollbackkit.analysis.diff` computes it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

from rollbackkit.analysis.diffsections import class_name as _class_name
from rollbackkit.analysis.diffsections import gate_summary as _gate_summary
from rollbackkit.cards import FAIL, PASS, WARN, Card, HasCard


@dataclass(frozen=True)
class Change:
    """One field that differs: ``name`` (a feature, config key or gate), ``field``, values."""

    name: str
    field: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``from``/``to`` keys."""
        return {"name": self.name, "field": self.field, "from": self.before, "to": self.after}

    def flipped(self) -> Change:
        """The same change seen from the other side."""
        return Change(self.name, self.field, self.after, self.before)


@dataclass(frozen=True)
class FeatureDiff:
    """Differences between two lists of input features."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    reordered: bool = False

    @property
    def empty(self) -> bool:
        """True when both feature lists are the same."""
        return not (self.added or self.removed or self.changed or self.reordered)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": [c.to_dict() for c in self.changed],
            "reordered": self.reordered,
        }


@dataclass(frozen=True)
class ModelDiff:
    """How the estimators differ: class, steps (``path: Class``) and hyper-parameters.

    Attributes:
        type: The model's class, when it changed.
        steps: Steps added (``before`` None), removed (``after`` None) or of another class;
            ``name`` is the step's path (``""`` for the model itself).
        params: Hyper-parameters that differ, by ``get_params`` path; parameters of a step
            that was added, removed or replaced are summed up by that step's line.
        recorded: False when a version predates recorded steps and parameters (only the
            class is compared then).
        flavor: The model's flavor (``sklearn``, ``xgboost``, ...), when it changed.
        size: Counts that differ (``trees``, ``nodes``), by name.
    """

    type: Change | None = None
    steps: list[Change] = field(default_factory=list)
    params: list[Change] = field(default_factory=list)
    recorded: bool = True
    flavor: Change | None = None
    size: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when both versions have the same flavor, estimator, steps, parameters and size."""
        return self.type is None and self.flavor is None and not (self.steps or self.params or self.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "flavor": self.flavor.to_dict() if self.flavor else None,
            "type": self.type.to_dict() if self.type else None,
            "steps": [c.to_dict() for c in self.steps],
            "params": [c.to_dict() for c in self.params],
            "size": [c.to_dict() for c in self.size],
            "recorded": self.recorded,
        }

    def lines(self) -> list[str]:
        """Terminal lines: the flavor and class, the size, then steps, then parameters."""
        out = []
        if self.flavor is not None:
            out.append(f"~ model flavor: {self.flavor.before} -> {self.flavor.after}")
        out += [f"~ model {c.name}: {_short(c.before)} -> {_short(c.after)}" for c in self.size]
        if self.type is not None:
            out.append(f"~ model: {_class_name(self.type.before)} -> {_class_name(self.type.after)}")
        for c in self.steps:
            if not c.name and self.type is not None:
                continue  # the class line above says it
            where = c.name or "(model)"
            if c.before is None:
                out.append(f"+ model step added: {where} ({c.after})")
            elif c.after is None:
                out.append(f"- model step removed: {where} ({c.before})")
            else:
                out.append(f"~ model step {where}: {c.before} -> {c.after}")
        out += [f"~ model param {c.name}: {_short(c.before)} -> {_short(c.after)}" for c in self.params]
        if not self.recorded and self.type is None:
            out.append("  (model steps and parameters were not recorded for one of the versions)")
        return out


GateChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class GateChange:
    """One gate added, removed or changed (``name`` ``*`` is the file's own settings)."""

    name: str
    change: GateChangeKind
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    fields: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``name``, ``change``, ``from``/``to`` and the changed ``fields``."""
        return {
            "name": self.name,
            "change": self.change,
            "from": self.before,
            "to": self.after,
            "fields": [c.to_dict() for c in self.fields],
        }

    def flipped(self) -> GateChange:
        """The same change seen from the other side."""
        swap: dict[str, GateChangeKind] = {"added": "removed", "removed": "added", "changed": "changed"}
        return GateChange(self.name, swap[self.change], self.after, self.before, [c.flipped() for c in self.fields])

    def line(self) -> str:
        """``gate added: accuracy (label_metric accuracy >= 0.9, warn)`` and the like."""
        if self.change == "added":
            return f"+ gate added: {self.name} ({_gate_summary(self.after or {})})"
        if self.change == "removed":
            return f"- gate removed: {self.name} ({_gate_summary(self.before or {})})"
        what = ", ".join(f"{c.field} {_short(c.before, 30)} -> {_short(c.after, 30)}" for c in self.fields)
        return f"~ gates: {what}" if self.name == "*" else f"~ gate changed: {self.name} {what}"


@dataclass(frozen=True)
class ProfileShift:
    """How one numeric feature's training distribution moved (median shift in IQR units)."""

    name: str
    median_from: float
    median_to: float
    shift_iqr: float


@dataclass(frozen=True)
class BundleDiff(HasCard):
    """Everything that differs between version ``a`` (from) and ``b`` (to)."""

    a: str
    b: str
    features: FeatureDiff
    output: list[Change]
    serving: list[Change]
    gates: list[GateChange]
    preprocess_diff: str
    rows: tuple[int, int]
    profile: list[ProfileShift]
    model: ModelDiff = field(default_factory=ModelDiff)
    model_code_diff: str = ""
    runtime: list[Change] = field(default_factory=list)

    @property
    def preprocess_changed(self) -> bool:
        """True when the preprocessing code differs (reformatting included)."""
        return bool(self.preprocess_diff)

    @property
    def empty(self) -> bool:
        """True when the two versions are the same in every compared respect."""
        return (
            self.features.empty
            and self.model.empty
            and not (self.output or self.serving or self.gates or self.preprocess_diff or self.model_code_diff)
            and not self.runtime
            and self.rows[0] == self.rows[1]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit diff --json``)."""
        return {
            "from": self.a,
            "to": self.b,
            "model": self.model.to_dict(),
            "features": self.features.to_dict(),
            "output": [c.to_dict() for c in self.output],
            "serving": [c.to_dict() for c in self.serving],
            "preprocess_changed": self.preprocess_changed,
            "preprocess_diff": self.preprocess_diff,
            "model_code_changed": bool(self.model_code_diff),
            "model_code_diff": self.model_code_diff,
            "runtime": [c.to_dict() for c in self.runtime],
            "gates": [c.to_dict() for c in self.gates],
            "profile": {
                "rows": {"from": self.rows[0], "to": self.rows[1]},
                "features": [vars(p) for p in self.profile],
            },
        }

    def to_text(self) -> str:
        """A terminal rendering, most important changes first."""
        lines = [f"{self.a} -> {self.b}"]
        if self.empty:
            return lines[0] + ": no differences"
        lines += self.model.lines()
        f = self.features
        if f.added:
            lines.append(f"+ {len(f.added)} feature(s) added: {', '.join(f.added)}")
        if f.removed:
            lines.append(f"- {len(f.removed)} feature(s) removed: {', '.join(f.removed)}")
        if f.reordered:
            lines.append("~ feature order changed")
        lines += [f"~ feature {c.name}: {c.field} {_short(c.before)} -> {_short(c.after)}" for c in f.changed]
        lines += [f"~ output {c.field}: {_short(c.before)} -> {_short(c.after)}" for c in self.output]
        lines += [f"~ serving {c.name}: {_short(c.before)} -> {_short(c.after)}" for c in self.serving]
        lines += [g.line() for g in self.gates]
        if self.rows[0] != self.rows[1]:
            lines.append(f"~ training rows: {self.rows[0]} -> {self.rows[1]}")
        moved = [p for p in self.profile if abs(p.shift_iqr) >= 0.1]
        lines += [
            f"~ profile {p.name}: median {p.median_from:.4g} -> {p.median_to:.4g} ({p.shift_iqr:+.2f} IQR)"
            for p in moved[:10]
        ]
        lines += [f"~ runtime {c.name}: {c.before or '(none)'} -> {c.after or '(none)'}" for c in self.runtime]
        if self.model_code_diff:
            lines += ["~ model code (model.py) changed:", self.model_code_diff.rstrip()]
        if self.preprocess_diff:
            lines += ["~ preprocessing code changed:", self.preprocess_diff.rstrip()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML rendering for notebooks: added green, removed red, changed amber."""
        colours = {"+": PASS, "-": FAIL, "~": WARN}
        rows = []
        for line in self.to_text().splitlines():
            colour = colours.get(line[:1], "inherit")
            rows.append(f'<div style="color:{colour};white-space:pre;font-family:monospace">{html.escape(line)}</div>')
        return '<div class="rollbackkit-diff">' + "".join(rows) + "</div>"

    def card(self) -> Card:
        """Its card: model, features, output contract, gates (one block each), serving, code; counts."""
        from rollbackkit.analysis.card_views import diff_card

        return diff_card(self)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
