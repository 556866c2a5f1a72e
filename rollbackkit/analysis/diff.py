"""Diff two versions: model, features, output contract, serving config, gates, code, data profile.

The diff is a pure function of two bundle descriptions (nothing is loaded but schemas and
small configs): the model section reads the estimator's class, steps and hyper-parameters
recorded in ``schema.json`` at register time, so no model is unpickled. ``diff_bundles(a, a)``
is empty, and ``diff_bundles(b, a)`` mirrors ``diff_bundles(a, b)``: added and removed swap, every change
swaps ``from`` and ``to``. Gates are compared gate by gate (keyed by name). Resolving
``NAME@VERSION`` references in a project is :func:`rollbackkit.ops.compare.diff`.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rollbackkit.bundle.schema import EstimatorView, Feature, OutputContract

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

FEATURE_FIELDS = ("dtype", "nullable", "min", "max", "categories")
OUTPUT_FIELDS = ("kind", "columns", "dtypes", "classes", "primary")


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
    """

    type: Change | None = None
    steps: list[Change] = field(default_factory=list)
    params: list[Change] = field(default_factory=list)
    recorded: bool = True

    @property
    def empty(self) -> bool:
        """True when both versions have the same estimator, steps and parameters."""
        return self.type is None and not (self.steps or self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "type": self.type.to_dict() if self.type else None,
            "steps": [c.to_dict() for c in self.steps],
            "params": [c.to_dict() for c in self.params],
            "recorded": self.recorded,
        }

    def lines(self) -> list[str]:
        """Terminal lines: the class, then steps, then parameters."""
        out = []
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
class BundleDiff:
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
            and not (self.output or self.serving or self.gates or self.preprocess_diff)
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
        if self.preprocess_diff:
            lines += ["~ preprocessing code changed:", self.preprocess_diff.rstrip()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML rendering for notebooks: added green, removed red, changed amber."""
        colours = {"+": "#1a7f37", "-": "#cf222e", "~": "#9a6700"}
        rows = []
        for line in self.to_text().splitlines():
            colour = colours.get(line[:1], "inherit")
            rows.append(f'<div style="color:{colour};white-space:pre;font-family:monospace">{html.escape(line)}</div>')
        return '<div class="rollbackkit-diff">' + "".join(rows) + "</div>"

    def _repr_html_(self) -> str:
        return self.to_html()


def diff_features(a: list[Feature], b: list[Feature]) -> FeatureDiff:
    """Added, removed, changed and reordered features between two feature lists."""
    names_a, names_b = [f.name for f in a], [f.name for f in b]
    by_a, by_b = {f.name: f for f in a}, {f.name: f for f in b}
    common = [n for n in names_a if n in by_b]
    changed = [
        Change(name, fld, _jsonable(getattr(by_a[name], fld)), _jsonable(getattr(by_b[name], fld)))
        for name in common
        for fld in FEATURE_FIELDS
        if getattr(by_a[name], fld) != getattr(by_b[name], fld)
    ]
    return FeatureDiff(
        added=[n for n in names_b if n not in by_a],
        removed=[n for n in names_a if n not in by_b],
        changed=changed,
        reordered=common != [n for n in names_b if n in by_a],
    )


def diff_outputs(a: OutputContract, b: OutputContract) -> list[Change]:
    """Output-contract fields that differ."""
    return [
        Change("output", fld, getattr(a, fld), getattr(b, fld))
        for fld in OUTPUT_FIELDS
        if getattr(a, fld) != getattr(b, fld)
    ]


def diff_configs(a: Any, b: Any) -> list[Change]:
    """Key-by-key differences of two configs (lists of named dicts are keyed by name)."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return [
        Change(key, "value", flat_a.get(key), flat_b.get(key))
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]


def diff_models(a: EstimatorView, b: EstimatorView) -> ModelDiff:
    """Class, steps and hyper-parameters that differ between two recorded estimators."""
    kind = Change("model", "type", a.type, b.type) if a.type != b.type else None
    if a.steps is None or b.steps is None or a.params is None or b.params is None:
        return ModelDiff(type=kind, recorded=False)
    steps_a, steps_b = _steps(a.steps), _steps(b.steps)
    steps = [
        Change(path, "class", steps_a.get(path), steps_b.get(path))
        for path in [*steps_a, *(p for p in steps_b if p not in steps_a)]
        if steps_a.get(path) != steps_b.get(path)
    ]
    replaced = [c.name for c in steps if c.name]
    kept = [path for path in steps_a if path and steps_b.get(path) == steps_a[path]]
    root_replaced = any(not c.name for c in steps)

    def under(key: str, paths: list[str]) -> bool:
        return any(key.startswith(f"{path}__") or key.startswith(f"{path}.") for path in paths)

    def summed_up(key: str) -> bool:
        """A replaced, added or removed step's parameters are told by its step line."""
        return under(key, replaced) or (root_replaced and not under(key, kept))

    params = [
        Change(key, "value", a.params.get(key), b.params.get(key))
        for key in sorted(set(a.params) | set(b.params))
        if a.params.get(key) != b.params.get(key) and not summed_up(key)
    ]
    return ModelDiff(type=kind, steps=steps, params=params)


def diff_gates(a: dict[str, Any], b: dict[str, Any]) -> list[GateChange]:
    """Gates added, removed or changed (by name), and changed file-wide settings."""
    spec_a, spec_b = _gate_dicts(a), _gate_dicts(b)
    gates_a, gates_b = spec_a.pop("gates"), spec_b.pop("gates")
    out = []
    settings = [
        Change(key, key, spec_a.get(key), spec_b.get(key))
        for key in sorted(set(spec_a) | set(spec_b))
        if spec_a.get(key) != spec_b.get(key)
    ]
    if settings:
        out.append(GateChange("*", "changed", fields=settings))
    for name in [*gates_a, *(n for n in gates_b if n not in gates_a)]:
        before, after = gates_a.get(name), gates_b.get(name)
        if before is None:
            out.append(GateChange(name, "added", after=after))
        elif after is None:
            out.append(GateChange(name, "removed", before=before))
        elif before != after:
            fields = [
                Change(name, key, before.get(key), after.get(key))
                for key in [*before, *(k for k in after if k not in before)]
                if before.get(key) != after.get(key)
            ]
            out.append(GateChange(name, "changed", before, after, fields))
    return out


def diff_code(a: str | None, b: str | None, a_label: str, b_label: str) -> str:
    """A unified diff of two source texts ("" when identical)."""
    if (a or "") == (b or ""):
        return ""
    return "".join(
        difflib.unified_diff(
            (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True), fromfile=a_label, tofile=b_label
        )
    )


def profile_shifts(a: list[Feature], b: list[Feature]) -> list[ProfileShift]:
    """Median shift of common numeric features, in units of ``a``'s interquartile range."""
    by_b = {f.name: f for f in b}
    shifts = []
    for fa in a:
        fb = by_b.get(fa.name)
        if fb is None or not fa.quantiles or not fb.quantiles:
            continue
        iqr = fa.quantiles["p75"] - fa.quantiles["p25"] or (fa.max or 0) - (fa.min or 0) or 1.0
        shifts.append(
            ProfileShift(
                fa.name, fa.quantiles["p50"], fb.quantiles["p50"], (fb.quantiles["p50"] - fa.quantiles["p50"]) / iqr
            )
        )
    return sorted(shifts, key=lambda s: -abs(s.shift_iqr))


def diff_bundles(a: BundleDescription, b: BundleDescription) -> BundleDiff:
    """Compare two described versions in every respect."""
    return BundleDiff(
        a=a.info.tag,
        b=b.info.tag,
        features=diff_features(a.schema.features, b.schema.features),
        output=diff_outputs(a.schema.output, b.schema.output),
        serving=diff_configs(a.serving, b.serving),
        gates=diff_gates(a.gates, b.gates),
        preprocess_diff=diff_code(
            a.preprocess_source, b.preprocess_source, f"{a.info.tag}/preprocess.py", f"{b.info.tag}/preprocess.py"
        ),
        rows=(a.schema.n_rows, b.schema.n_rows),
        profile=profile_shifts(a.schema.features, b.schema.features),
        model=diff_models(a.schema.estimator, b.schema.estimator),
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        out = {}
        for item in value:
            rest = {k: v for k, v in item.items() if k != "name"}
            out.update(_flatten(rest, f"{prefix}[{item['name']}]"))
        return out
    return {prefix: value}


def _steps(steps: list[str]) -> dict[str, str]:
    """``["Pipeline", "model: Ridge"]`` -> ``{"": "Pipeline", "model": "Ridge"}``."""
    out = {"": steps[0]} if steps else {}
    for step in steps[1:]:
        path, _, cls = step.partition(": ")
        out[path] = cls
    return out


def _gate_dicts(config: dict[str, Any]) -> dict[str, Any]:
    """A gates file with every default filled in, gates keyed by name (raw when invalid)."""
    from rollbackkit.analysis.gatespec import parse_gates_dict
    from rollbackkit.errors import RollbackkitError

    try:
        data = parse_gates_dict(config, "gates.yaml").model_dump(mode="json")
    except RollbackkitError:
        data = dict(config or {})
    gates = data.get("gates") or []
    named = {
        str(g.get("name", f"#{i}")): {k: v for k, v in g.items() if k != "name"}
        for i, g in enumerate(gates)
        if isinstance(g, dict)
    }
    return {**{k: v for k, v in data.items() if k != "gates"}, "gates": named}


def _gate_summary(gate: dict[str, Any]) -> str:
    """``label_metric accuracy >= 0.9, warn``: kind, metric, bounds, severity."""
    parts = [str(gate.get("kind", "?"))]
    for key in ("metric", "quantile"):
        if gate.get(key) is not None:
            parts.append(str(gate[key]))
    bounds = {
        "min": ">=",
        "max": "<=",
        "max_ms": "<=",
        "share_above_p99_max": "share above p99 <=",
        "share_below_p1_max": "share below p1 <=",
    }
    for key, op in bounds.items():
        if gate.get(key) is not None:
            parts.append(f"{op} {gate[key]}{' ms' if key == 'max_ms' else ''}")
    if gate.get("by") is not None:
        parts.append(f"by {gate['by']}")
    return " ".join(parts) + f", {gate.get('severity', 'rollback')}"


def _class_name(qualified: Any) -> str:
    return str(qualified).rsplit(".", 1)[-1]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
