"""Quality gates as declared in ``gates.yaml`` inside the bundle: the models, parsing, errors.

A gate is a rollback trigger decided *before* deployment and registered with the bundle
(so it is versioned and diffable). Each kind is one model below (:class:`LatencyGate` for
``latency`` and so on) whose docstring says what it bounds; the union :data:`Gate` is the one
list of kinds, and :data:`GATE_KINDS` is read from it. Evaluation over a window is
:mod:`rollbackkit.analysis.gates`.

Gates reference (every key)
---------------------------
Top level: ``min_samples`` (default 200, the rows a gate needs unless it says otherwise) and
``gates`` (a list). Every gate: ``name``, ``kind``, ``severity`` (``rollback`` or ``warn``),
``min_samples`` (rows needed; labelled rows for label gates; below it the gate is
``insufficient``, never a pass), ``initial_delay`` (a duration: until the deployment has
served that long the gate is ``insufficient``, ``waiting: 40s of 2m initial delay``) and
``failure_limit`` (consecutive failing evaluations before a failure counts; default 1).
Durations are seconds or ``30s``, ``10m``, ``2h``, ``1d`` (:func:`parse_duration`).

Kinds: ``latency`` (``quantile``, ``max_ms``), ``error_rate`` (``max``), ``prediction_drift``
(``metric``, ``max``, ``column``), ``feature_drift`` (``metric``, ``max``, ``features``),
``tail`` (``column``, ``share_above_p99_max``, ``share_below_p1_max``, ``quantile`` with
``min``/``max``), ``label_metric`` (``metric``, ``min``/``max``, ``label``, ``label_delay``),
``slice`` (``by``, ``metric``, ``min``/``max``, ``column``, ``label``, ``label_delay``,
``min_slice_samples``) and ``agreement`` (a shadow against live: ``min``, ``tolerance``,
``by``).

Label metrics: classifiers ``accuracy``, ``balanced_accuracy``, ``f1`` (two classes: the
last class is positive; more: macro), ``roc_auc`` (``auc`` is the same), ``log_loss`` (from
``proba_<class>``); regressors ``mae``, ``rmse``, ``mape`` (rows labelled 0 are left out).
``label_delay`` (a duration): only rows at least that old are eligible (their labels had time
to arrive); the result says how many eligible rows are labelled.

Candidate against live (``latency``, ``error_rate``, ``label_metric``, ``slice`` with a label
metric or ``error_rate``): ``compare: live`` with exactly one of ``max_ratio`` (candidate/live
at most r; latency and lower-is-better label metrics), ``max_increase`` (candidate - live at
most d; lower is better: latency in ms, error rate, log_loss, mae, rmse, mape) or
``max_decrease`` (live - candidate at most d; higher is better: accuracy, balanced_accuracy,
f1, roc_auc), and ``confidence`` (default 0.95). A ratio must be above 1 and a margin above
0 (an equal candidate would otherwise fail on noise). A difference fails only when it is
material (the estimate is beyond the threshold) and supported (the lower end of the two-sided
interval at ``confidence``, one-sided at ``(1 + c) / 2``, lies beyond it); material but not
supported is ``inconclusive``. With ``compare`` the absolute bound (``max_ms``, ``max``,
``min``) is optional; it is judged first, so live too thin to compare drops only the
comparison (evidence ``compare_skipped``) and a broken bound still fails.

Drift gates default to effect sizes (PSI, JS, normalised Wasserstein); p-values are not
offered as gate metrics because on millions of rows they flag every shift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from rollbackkit.analysis.durations import format_duration as format_duration  # re-exported: one home
from rollbackkit.analysis.durations import parse_duration as parse_duration
from rollbackkit.analysis.gatebase import (
    CLASS_METRICS as CLASS_METRICS,
)
from rollbackkit.analysis.gatebase import (
    COMPARE_KEYS as COMPARE_KEYS,
)
from rollbackkit.analysis.gatebase import (
    HIGHER_IS_BETTER as HIGHER_IS_BETTER,
)
from rollbackkit.analysis.gatebase import (
    LABEL_METRICS,
    MAX_MIN_SAMPLES,
    REGRESSION_METRICS,
    BaseGate,
    Compared,
    DriftMetric,
    Duration,
    LabelMetric,
    Quantile,
    SliceMetric,
    rule,
    within_unit,
)
from rollbackkit.analysis.gatebase import (
    WINDOW_ROWS as WINDOW_ROWS,
)
from rollbackkit.analysis.specerrors import error_location, gate_hint, gate_named
from rollbackkit.analysis.specerrors import explain as explain
from rollbackkit.analysis.specerrors import line_of as line_of
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.schema import Schema


class LatencyGate(Compared):
    """A latency quantile (p50/p95/p99 of ``latency_ms``) at most ``max_ms`` and/or against live."""

    kind: Literal["latency"]
    quantile: Literal["p50", "p95", "p99"] = "p99"
    max_ms: float | None = Field(default=None, gt=0)

    BOUNDS = (("max_ms",), "a latency gate needs max_ms or compare: live")

    def _compared_metric(self) -> str | None:
        return "latency"


class ErrorRateGate(Compared):
    """Share of failed requests at most ``max`` and/or at most live's plus ``max_increase``."""

    kind: Literal["error_rate"]
    max: float | None = Field(default=None, ge=0, le=1)

    BOUNDS = (("max",), "an error_rate gate needs max or compare: live")

    def _compared_metric(self) -> str | None:
        return "error_rate"


class PredictionDriftGate(BaseGate):
    """Drift of an output column against the reference predictions at most ``max``.

    The column defaults to the contract's primary column. A classifier's ``prediction`` (its
    class labels: strings, booleans or integers) is compared by class shares (PSI or JS);
    numeric columns by any drift metric.
    """

    kind: Literal["prediction_drift"]
    metric: DriftMetric = "psi"
    max: float = Field(ge=0)
    column: str | None = None


class FeatureDriftGate(BaseGate):
    """The worst drift over the chosen ``features`` (``all`` or a list) at most ``max``."""

    kind: Literal["feature_drift"]
    metric: DriftMetric = "psi"
    max: float = Field(ge=0)
    features: Literal["all"] | list[str] = "all"


class TailGate(BaseGate):
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


class SliceGate(Compared):
    """A metric per segment (``by``); fails when any segment with enough rows violates a bound.

    So one bad segment fails even when the average is fine: label metrics or error_rate, or
    drift metrics against the same segment of the reference. With ``compare: live`` each
    segment is compared with the same segment of live.
    """

    kind: Literal["slice"]
    by: str | list[str]
    metric: SliceMetric
    min: float | None = None
    max: float | None = None
    column: str | None = None
    label: str = "label"
    label_delay: Duration | None = None
    min_slice_samples: int = Field(default=30, ge=1, le=MAX_MIN_SAMPLES, strict=True)

    BOUNDS = (("min", "max"), "a slice gate needs min or max (or compare: live)")

    def _compared_metric(self) -> str | None:
        return self.metric if self.metric in LABEL_METRICS or self.metric == "error_rate" else None

    @model_validator(mode="after")
    def _label_delay_reads_labels(self) -> SliceGate:
        if self.label_delay is not None and self.metric not in LABEL_METRICS:
            raise rule(f"label_delay needs a label metric; {self.metric} reads no labels", "label_delay")
        within_unit(self.metric, {"min": self.min, "max": self.max})
        return self


class LabelMetricGate(Compared):
    """A label metric over the eligible rows that have labels (see the module doc for metrics).

    Classes compare as classes (``"yes"``, ``True``, ``1``); ``roc_auc`` and ``log_loss`` read
    the class probabilities (``proba_<class>``; one-vs-rest for several classes); ``mae``,
    ``rmse`` and ``mape`` need numeric labels.
    """

    kind: Literal["label_metric"]
    metric: LabelMetric
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)
    label: str = "label"
    label_delay: Duration | None = None

    BOUNDS = (("min", "max"), "a label_metric gate needs min or max (or compare: live)")

    def _compared_metric(self) -> str | None:
        return self.metric

    @model_validator(mode="after")
    def _bounded(self) -> LabelMetricGate:
        within_unit(self.metric, {"min": self.min, "max": self.max})
        return self


class AgreementGate(BaseGate):
    """A shadow against live: the share of paired rows (same ``request_id`` and ``row``) whose
    ``prediction`` equals live's at least ``min`` (regressors: primary output within
    ``tolerance``); ``by`` adds per-slice agreement and score deltas to the evidence."""

    kind: Literal["agreement"]
    min: float = Field(ge=0, le=1)
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    by: str | list[str] | None = None


Gate = Annotated[
    LatencyGate
    | ErrorRateGate
    | PredictionDriftGate
    | FeatureDriftGate
    | TailGate
    | SliceGate
    | LabelMetricGate
    | AgreementGate,
    Field(discriminator="kind"),
]
GATE_KINDS: tuple[str, ...] = tuple(
    get_args(model.model_fields["kind"].annotation)[0] for model in get_args(get_args(Gate)[0])
)
"""The gate kinds, in the order of :data:`Gate` (each model's ``kind`` literal)."""
COMPARE_KINDS = ("latency", "error_rate", "label_metric", "slice")
"""The kinds that may ``compare: live``."""


def uses_live(gate: Any) -> bool:
    """Whether a gate needs live's rows (an agreement gate, or one with ``compare: live``)."""
    return isinstance(gate, AgreementGate) or bool(getattr(gate, "compare", None))


def reads_labels(gate: Any) -> bool:
    """Whether a gate is decided on labelled rows."""
    return isinstance(gate, LabelMetricGate) or (isinstance(gate, SliceGate) and gate.metric in LABEL_METRICS)


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
        loc = error_location(error)
        raise InvalidInput(
            f"{where} line {line_of(root, loc)}: {gate_named(data, loc)}{explain(error)}.",
            gate_hint(error, GATE_KINDS),
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
        elif isinstance(gate, AgreementGate) and gate.by is not None:
            by = [gate.by] if isinstance(gate.by, str) else gate.by
            named += [("by", c, inputs | outputs, "an input feature or output") for c in by]
        _check_metric_kind(gate, schema, f"{where} line {line_of(root, ('gates', i, 'metric'))}")
        for key, column, allowed, what in named:
            if column not in allowed:
                known = sorted(allowed)
                listed = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
                raise InvalidInput(
                    f"{where} line {line_of(root, ('gates', i, key))}: gate {gate.name!r}: "
                    f"{key} {column!r} is not {what} of this version.",
                    f"Name one of: {listed}.",
                )


def _check_metric_kind(gate: Any, schema: Schema, at: str) -> None:
    """Refuse a classifier's metric on a regressor and a regressor's on a classifier (naming the version's kind)."""
    metric = getattr(gate, "metric", None)
    classifier = schema.output.kind == "classification"
    if metric in CLASS_METRICS and not classifier:
        raise InvalidInput(
            f"{at}: gate {gate.name!r}: metric {metric!r} needs a classifier; this version is a regressor.",
            "Use mae, rmse or mape.",
        )
    if metric in REGRESSION_METRICS and classifier:
        raise InvalidInput(
            f"{at}: gate {gate.name!r}: metric {metric!r} needs a regressor; this version is a classifier.",
            "Use accuracy, balanced_accuracy, f1, roc_auc or log_loss.",
        )


def parse_gates_dict(data: dict[str, Any], where: str) -> GateSpec:
    """Validate an already parsed gates mapping."""
    try:
        return GateSpec.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {explain(exc.errors()[0])}.", "Fix the gates file and re-register.") from exc
