"""Quality gates as declared in ``gates.yaml`` inside the bundle: the models, parsing, errors.

A gate is a rollback trigger decided *before* deployment and registered with the bundle
(so it is versioned and diffable). Each kind is one model below (:class:`LatencyGate` for
``latency`` and so on) whose docstring says what it bounds; the union :data:`Gate` is the one
list of kinds, and :data:`GATE_KINDS` is read from it.

Every gate has a ``severity`` (``rollback`` or ``warn``) and an optional ``min_samples``;
a window below it is ``insufficient`` (never a pass). Drift gates default to effect sizes
(PSI, JS, normalised Wasserstein); p-values are not offered as gate metrics because on
millions of rows they flag every shift.

Evaluation over a window is :mod:`rollbackkit.analysis.gates`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.schema import Schema

Severity = Literal["rollback", "warn"]
DriftMetric = Literal["psi", "js", "wasserstein_norm", "ks", "mean_shift"]
LabelMetric = Literal["accuracy", "auc", "rmse", "mae"]
SliceMetric = Literal[
    "accuracy", "auc", "rmse", "mae", "error_rate", "psi", "js", "wasserstein_norm", "ks", "mean_shift"
]
Quantile = Literal["p1", "p5", "p50", "p95", "p99"]
WINDOW_ROWS = 20_000
"""The rows a gate window holds: a server's latest rows of the version under evaluation
(kept in memory or read from the prediction log)."""
MAX_MIN_SAMPLES = WINDOW_ROWS
"""The largest ``min_samples``: a gate that needs more rows than a window holds could never
be decided, so it would warn "insufficient" forever."""


class _Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    severity: Severity = "rollback"
    min_samples: int | None = Field(default=None, ge=1, le=MAX_MIN_SAMPLES, strict=True)


class LatencyGate(_Gate):
    """A latency quantile (p50/p95/p99 of ``latency_ms``) at most ``max_ms``."""

    kind: Literal["latency"]
    quantile: Literal["p50", "p95", "p99"] = "p99"
    max_ms: float = Field(gt=0)


class ErrorRateGate(_Gate):
    """Share of failed requests at most ``max``."""

    kind: Literal["error_rate"]
    max: float = Field(ge=0, le=1)


class PredictionDriftGate(_Gate):
    """Drift of an output column against the reference predictions at most ``max``.

    The column defaults to the contract's primary column. A classifier's ``prediction`` (its
    class labels: strings, booleans or integers) is compared by class shares (PSI or JS);
    numeric columns by any drift metric.
    """

    kind: Literal["prediction_drift"]
    metric: DriftMetric = "psi"
    max: float = Field(ge=0)
    column: str | None = None


class FeatureDriftGate(_Gate):
    """The worst drift over the chosen ``features`` (``all`` or a list) at most ``max``."""

    kind: Literal["feature_drift"]
    metric: DriftMetric = "psi"
    max: float = Field(ge=0)
    features: Literal["all"] | list[str] = "all"


class TailGate(_Gate):
    """Bounds on tail shares beyond the reference's p1/p99, or on a current quantile."""

    kind: Literal["tail"]
    column: str | None = None
    share_above_p99_max: float | None = Field(default=None, ge=0, le=1)
    share_below_p1_max: float | None = Field(default=None, ge=0, le=1)
    quantile: Quantile | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> TailGate:
        if self.share_above_p99_max is None and self.share_below_p1_max is None and self.quantile is None:
            raise ValueError("a tail gate needs share_above_p99_max, share_below_p1_max or quantile with min/max")
        if self.quantile is not None and self.min is None and self.max is None:
            raise ValueError("a quantile tail gate needs min or max")
        return self


class SliceGate(_Gate):
    """A metric per segment (``by``); fails when any segment with enough rows violates a bound.

    So one bad segment fails even when the average is fine: label metrics (accuracy, auc,
    rmse, mae, error_rate) or drift metrics against the same segment of the reference.
    """

    kind: Literal["slice"]
    by: str | list[str]
    metric: SliceMetric
    min: float | None = None
    max: float | None = None
    column: str | None = None
    label: str = "label"
    min_slice_samples: int = Field(default=30, ge=1, le=MAX_MIN_SAMPLES, strict=True)

    @model_validator(mode="after")
    def _has_a_bound(self) -> SliceGate:
        if self.min is None and self.max is None:
            raise ValueError("a slice gate needs min or max")
        return self


class LabelMetricGate(_Gate):
    """Accuracy, auc, rmse or mae over the rows that have labels.

    Accuracy compares labels as classes (``"yes"``, ``True``, ``1``); AUC reads the class
    probabilities (``proba_<class>``; one-vs-rest for several classes); rmse and mae need
    numeric labels.
    """

    kind: Literal["label_metric"]
    metric: LabelMetric
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)
    label: str = "label"

    @model_validator(mode="after")
    def _has_a_bound(self) -> LabelMetricGate:
        if self.min is None and self.max is None:
            raise ValueError("a label_metric gate needs min or max")
        return self


Gate = Annotated[
    LatencyGate | ErrorRateGate | PredictionDriftGate | FeatureDriftGate | TailGate | SliceGate | LabelMetricGate,
    Field(discriminator="kind"),
]
GATE_KINDS: tuple[str, ...] = tuple(
    get_args(model.model_fields["kind"].annotation)[0] for model in get_args(get_args(Gate)[0])
)
"""The gate kinds, in the order of :data:`Gate` (each model's ``kind`` literal)."""


class GateSpec(BaseModel):
    """The content of ``gates.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_samples: int = Field(default=200, ge=1, le=MAX_MIN_SAMPLES, strict=True)
    gates: list[Gate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> GateSpec:
        names = [g.name for g in self.gates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gate names must be unique; repeated: {duplicates}")
        return self


def parse_gates(text: str | bytes, where: str = "gates.yaml", schema: Schema | None = None) -> GateSpec:
    """Parse and validate gates YAML; errors name the file, the line and the fix.

    Args:
        text: The YAML (read within :mod:`rollbackkit.yamlsafe`'s bounds).
        where: The file's name in messages.
        schema: The version's schema (at register): every column a gate names must be one
            of its input features or outputs, or the gate could never be decided.
    """
    from rollbackkit.yamlsafe import compose, load

    root = compose(text, where)
    data = load(text, where)
    if data is not None and not isinstance(data, dict):
        raise InvalidInput(f"{where} line 1: must hold a mapping (min_samples, gates).", "Fix the gates file.")
    try:
        spec = GateSpec.model_validate(data or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"]) + (("kind",) if error["type"] == "union_tag_invalid" else ())
        lineno = line_of(root, loc)
        raise InvalidInput(
            f"{where} line {lineno}: {explain(error)}.",
            f"Valid gate kinds: {', '.join(GATE_KINDS)}; see rollbackkit.analysis.gatespec for their keys.",
        ) from exc
    if schema is not None:
        _check_columns(spec, schema, root, where)
    return spec


def _check_columns(spec: GateSpec, schema: Schema, root: Any, where: str) -> None:
    """Refuse a gate naming a column the version's windows never hold (with the gate's line)."""
    inputs, outputs = set(schema.feature_names), set(schema.output.columns)
    for i, gate in enumerate(spec.gates):
        named: list[tuple[str, str, set[str], str]] = []  # key, column, allowed, what it must be
        if isinstance(gate, SliceGate):
            by = [gate.by] if isinstance(gate.by, str) else gate.by
            named += [("by", c, inputs | outputs, "an input feature or output") for c in by]
            if gate.column is not None:
                named.append(("column", gate.column, inputs | outputs, "an input feature or output"))
        elif isinstance(gate, TailGate) and gate.column is not None:
            named.append(("column", gate.column, inputs | outputs, "an input feature or output"))
        elif isinstance(gate, PredictionDriftGate) and gate.column is not None:
            named.append(("column", gate.column, outputs, "an output"))
        elif isinstance(gate, FeatureDriftGate) and isinstance(gate.features, list):
            named += [("features", c, inputs, "an input feature") for c in gate.features]
        for key, column, allowed, what in named:
            if column not in allowed:
                known = sorted(allowed)
                listed = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
                raise InvalidInput(
                    f"{where} line {line_of(root, ('gates', i, key))}: gate {gate.name!r}: "
                    f"{key} {column!r} is not {what} of this version.",
                    f"Name one of: {listed}.",
                )


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
    if kind == "extra_forbidden":
        return f"unknown key {key!r}"
    if kind == "literal_error":
        return f"{key} {error['input']!r} is not one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal"):
        return f"{key} must be {error['msg'].removeprefix('Input should be ')}, got {error['input']!r}"
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{key} must be a whole number, got {error['input']!r}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc) or 'gates'}: {error['msg']}"


def parse_gates_dict(data: dict[str, Any], where: str) -> GateSpec:
    """Validate an already parsed gates mapping."""
    try:
        return GateSpec.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {explain(exc.errors()[0])}.", "Fix the gates file and re-register.") from exc
