"""Diff two versions: model, features, output contract, serving config, gates, code, data profile.

The diff is a pure function of two bundle descriptions (nothing is loaded but schemas and
small configs): the model section reads the estimator's class, steps and hyper-parameters
recorded in ``schema.json`` at register time, so no model is unpickled. ``diff_bundles(a, a)``
is empty, and ``diff_bundles(b, a)`` mirrors ``diff_bundles(a, b)``: added and removed swap, every change
swaps ``from`` and ``to``. Gates are compared gate by gate (keyed by name). The result and
its text and HTML renderings are :mod:`rollbackkit.analysis.diffreport`. Resolving
``NAME@VERSION`` references in a project is :func:`rollbackkit.ops.compare.diff`.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from rollbackkit.analysis.diffreport import BundleDiff, Change, FeatureDiff, GateChange, ModelDiff, ProfileShift
from rollbackkit.bundle.flavors.python_model import ENTRY, PYTHON_FORMAT
from rollbackkit.bundle.schema import EstimatorView, Feature, OutputContract

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

FEATURE_FIELDS = ("dtype", "nullable", "min", "max", "categories")
OUTPUT_FIELDS = ("kind", "columns", "dtypes", "classes", "primary")


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
    """Flavor, class, size, steps and hyper-parameters that differ between two recorded models."""
    kind = Change("model", "type", a.type, b.type) if a.type != b.type else None
    flavor = Change("model", "flavor", a.flavor, b.flavor) if a.flavor != b.flavor else None
    size = [
        Change(key, "size", a.size.get(key, 0), b.size.get(key, 0))  # a Ridge has 0 trees
        for key in sorted(set(a.size) | set(b.size))
        if a.size.get(key, 0) != b.size.get(key, 0)
    ]
    if a.steps is None or b.steps is None or a.params is None or b.params is None:
        return ModelDiff(type=kind, recorded=False, flavor=flavor, size=size)
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
    return ModelDiff(type=kind, steps=steps, params=params, flavor=flavor, size=size)


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
        model_code_diff=diff_model_code(a, b),
        runtime=diff_runtimes(a, b),
    )


def diff_model_code(a: BundleDescription, b: BundleDescription) -> str:
    """A unified diff of two Python models' ``model.py`` (read from the verified archives, never run).

    ``""`` when neither version is a Python model, or both record the same ``model.py`` hash
    (then no archive is read).
    """
    digests = [
        d.schema.estimator.params.get(ENTRY) if _runs_code(d) and d.schema.estimator.params else None for d in (a, b)
    ]
    if not (_runs_code(a) or _runs_code(b)) or (digests[0] is not None and digests[0] == digests[1]):
        return ""
    return diff_code(a.model_code, b.model_code, f"{a.info.tag}/{ENTRY}", f"{b.info.tag}/{ENTRY}")


def diff_runtimes(a: BundleDescription, b: BundleDescription) -> list[Change]:
    """Python and library versions recorded at register that differ (a side without a record: none)."""
    ra, rb = a.manifest.registration.runtime, b.manifest.registration.runtime
    if ra is None or rb is None:
        return []
    before, after = {"python": ra.python, **ra.libraries}, {"python": rb.python, **rb.libraries}
    return [
        Change(name, "version", before.get(name), after.get(name))
        for name in [*before, *(n for n in after if n not in before)]
        if before.get(name) != after.get(name)
    ]


def _runs_code(description: BundleDescription) -> bool:
    return description.manifest.components["model"].format == PYTHON_FORMAT


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


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
