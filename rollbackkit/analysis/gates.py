"""Quality gates: declared in ``gates.yaml`` inside the bundle, evaluated over a window.

A gate is a rollback trigger decided *before* deployment and registered with the bundle
(so it is versioned and diffable). Kinds:

- ``latency``: a latency quantile (p50/p95/p99 of ``latency_ms``) at most ``max_ms``.
- ``error_rate``: the share of requests with an error at most ``max``.
- ``prediction_drift``: a drift metric of an output column (default: the contract's
  primary column) against the bundle's reference predictions, at most ``max``. A
  classifier's ``prediction`` (its class labels: strings, booleans or integers) is
  compared by class shares (PSI or JS); numeric columns by any drift metric.
- ``feature_drift``: the worst drift metric over ``features`` (``all`` or a list).
- ``tail``: bounds on the share of current values beyond the reference's p1/p99, or on a
  current quantile's value.
- ``slice``: a metric per segment (``by``), so one bad segment fails even when the
  average is fine; label metrics (accuracy, auc, rmse, mae, error_rate) or drift metrics
  against the same segment of the reference.
- ``label_metric``: accuracy, auc, rmse or mae over the rows that have labels. Accuracy
  compares labels as classes (``"yes"``, ``True``, ``1``); AUC reads the class
  probabilities (``proba_<class>``; one-vs-rest for several classes); rmse and mae need
  numeric labels.

Every gate has a ``severity`` (``rollback`` or ``warn``) and an optional ``min_samples``;
a window below it is ``insufficient`` (never a pass). Drift gates default to effect sizes
(PSI, JS, normalised Wasserstein); p-values are not offered as gate metrics because on
millions of rows they flag every shift.

A window is a frame (or Parquet/CSV file) with the output columns (``prediction``,
``proba_<class>``), the input features, ``latency_ms``, ``error`` (null or false when a
request succeeded) and, when known, ``label``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription
    from rollbackkit.bundle.schema import Schema
    from rollbackkit.registry.store import Registry

Severity = Literal["rollback", "warn"]
DriftMetric = Literal["psi", "js", "wasserstein_norm", "ks", "mean_shift"]
LabelMetric = Literal["accuracy", "auc", "rmse", "mae"]
SliceMetric = Literal[
    "accuracy", "auc", "rmse", "mae", "error_rate", "psi", "js", "wasserstein_norm", "ks", "mean_shift"
]
Quantile = Literal["p1", "p5", "p50", "p95", "p99"]
Status = Literal["pass", "fail", "insufficient"]
Decision = Literal["rollback", "warn", "pass"]
_LABEL_METRICS = {"accuracy", "auc", "rmse", "mae"}
MAX_MIN_SAMPLES = 20_000
"""The largest ``min_samples``: the rows a served window holds (``WINDOW_ROWS``); a gate
that needs more could never be decided, so it would warn "insufficient" forever."""


class _Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    severity: Severity = "rollback"
    min_samples: int | None = Field(default=None, ge=1, le=MAX_MIN_SAMPLES, strict=True)


class LatencyGate(_Gate):
    """Latency quantile at most ``max_ms``."""

    kind: Literal["latency"]
    quantile: Literal["p50", "p95", "p99"] = "p99"
    max_ms: float = Field(gt=0)


class ErrorRateGate(_Gate):
    """Share of failed requests at most ``max``."""

    kind: Literal["error_rate"]
    max: float = Field(ge=0, le=1)


class PredictionDriftGate(_Gate):
    """Drift of an output column against the reference predictions at most ``max``."""

    kind: Literal["prediction_drift"]
    metric: DriftMetric = "psi"
    max: float = Field(ge=0)
    column: str | None = None


class FeatureDriftGate(_Gate):
    """The worst drift over the chosen features at most ``max``."""

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
    """A metric per segment; fails when any segment with enough rows violates a bound."""

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
    """A label-based metric over rows with labels."""

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
GATE_KINDS = ("latency", "error_rate", "prediction_drift", "feature_drift", "tail", "slice", "label_metric")


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


# ----------------------------------------------------------------------------- parsing
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
        lineno = _line_of(root, loc)
        raise InvalidInput(
            f"{where} line {lineno}: {_explain(error)}.",
            f"Valid gate kinds: {', '.join(GATE_KINDS)}; see rollbackkit.analysis.gates for their keys.",
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
                    f"{where} line {_line_of(root, ('gates', i, key))}: gate {gate.name!r}: "
                    f"{key} {column!r} is not {what} of this version.",
                    f"Name one of: {listed}.",
                )


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
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


def _explain(error: Any) -> str:
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


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class GateResult:
    """One gate's outcome over a window."""

    name: str
    kind: str
    severity: str
    status: Status
    observed: float | None
    threshold: dict[str, float]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        from rollbackkit.analysis.drift import json_safe

        return json_safe(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class GateReport:
    """Every gate's result and the overall decision ``rollback``, ``warn`` or ``pass``."""

    version: str
    n: int
    decision: Decision
    gates: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        """Gates that failed (any severity)."""
        return [g for g in self.gates if g.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit gates check --json``)."""
        return {
            "version": self.version,
            "n": self.n,
            "decision": self.decision,
            "gates": [g.to_dict() for g in self.gates],
        }

    def summary(self) -> str:
        """One line: the decision and the failing gates."""
        bad = ", ".join(f"{g.name} ({g.observed:.4g} vs {g.threshold})" for g in self.failed if g.observed is not None)
        return f"{self.decision}: {bad}" if bad else self.decision


def evaluate(bundle: BundleDescription, window: pd.DataFrame | str | Path) -> GateReport:
    """Evaluate a bundle's gates over a window of logged predictions.

    Args:
        bundle: The version under evaluation (its gates, schema and reference profile).
        window: The window as a frame, or a Parquet/CSV path.
    """
    from rollbackkit.bundle.frames import read_frame

    spec = parse_gates_dict(bundle.gates, f"{bundle.info.tag} gates.yaml")
    frame = _without_client_errors(window if isinstance(window, pd.DataFrame) else read_frame(window, "window"))
    results = [_evaluate_one(gate, spec, bundle, frame) for gate in spec.gates]
    decision: Decision = "pass"
    if any(r.status == "fail" and r.severity == "rollback" for r in results):
        decision = "rollback"
    elif any(r.status in ("fail", "insufficient") for r in results):
        decision = "warn"
    return GateReport(bundle.info.tag, len(frame), decision, results)


def evaluate_logged(
    registry: Registry, ref: str, *, window: str | Path | None = None, env: str | None = None
) -> GateReport:
    """Evaluate ``ref``'s gates over a window file, or over its latest rows in ``env``'s log.

    Args:
        registry: The project's registry.
        ref: ``NAME@VERSION``.
        window: A Parquet/CSV window (exclusive with ``env``).
        env: Read the window from the prediction log (the version's latest 20,000 rows).
    """
    from rollbackkit.refs import validate_name

    if (window is None) == (env is None):
        raise InvalidInput("Give exactly one of --window PATH or --env ENV.", "See rollbackkit gates check --help.")
    bundle = registry.describe(ref)
    if env is None:
        return evaluate(bundle, window)  # type: ignore[arg-type]
    from rollbackkit.serving.predlog.log import PredictionLog

    path = registry.paths.prediction_log
    if not path.exists():
        raise InvalidInput(f"There is no prediction log at {path}.", "Serve with rollbackkit serve to create one.")
    log = PredictionLog(path)
    try:
        frame = log.window(bundle.name, validate_name(env, "environment name"), version=bundle.version)
    finally:
        log.close()
    return evaluate(bundle, frame)


def parse_gates_dict(data: dict[str, Any], where: str) -> GateSpec:
    """Validate an already parsed gates mapping."""
    try:
        return GateSpec.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {_explain(exc.errors()[0])}.", "Fix the gates file and re-register.") from exc


def _evaluate_one(gate: Any, spec: GateSpec, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    need = gate.min_samples or spec.min_samples
    evaluator = _EVALUATORS[gate.kind]
    try:
        return evaluator(gate, need, bundle, window)
    except _Insufficient as short:
        return GateResult(
            gate.name, gate.kind, gate.severity, "insufficient", None, _threshold(gate), {"reason": str(short)}
        )


class _Insufficient(Exception):
    pass


def _threshold(gate: Any) -> dict[str, float]:
    keys = ("max_ms", "max", "min", "share_above_p99_max", "share_below_p1_max")
    return {k: getattr(gate, k) for k in keys if getattr(gate, k, None) is not None}


def _result(gate: Any, observed: float, evidence: dict[str, Any], ok: bool) -> GateResult:
    return GateResult(
        gate.name, gate.kind, gate.severity, "pass" if ok else "fail", float(observed), _threshold(gate), evidence
    )


def _column(window: pd.DataFrame, name: str, gate: Any) -> pd.Series:
    if name not in window.columns:
        raise _Insufficient(f"the window has no column {name!r}")
    return window[name]


def _enough(n: int, need: int) -> None:
    if n < need:
        raise _Insufficient(f"{n} samples in the window, {need} needed")


def _latency(gate: LatencyGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    values = _column(window, "latency_ms", gate).dropna().to_numpy(dtype="float64")
    _enough(values.size, need)
    q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[gate.quantile]
    observed = float(np.quantile(values, q))
    return _result(gate, observed, {"quantile": gate.quantile, "n": int(values.size)}, observed <= gate.max_ms)


CLIENT_ERRORS = frozenset({"IncompatibleInput"})
"""``error`` values that name a request the version refused (the client's error, a 422),
not a model failure. Servers no longer log them; rows older servers logged so are left
out of every gate window, so they can neither fail the error-rate gate nor fill a sample."""


def _without_client_errors(window: pd.DataFrame) -> pd.DataFrame:
    """``window`` without the rows of refused requests (see :data:`CLIENT_ERRORS`)."""
    if "error" not in window.columns or pd.api.types.is_bool_dtype(window["error"]):
        return window
    refused = window["error"].isin(CLIENT_ERRORS).to_numpy()
    return window[~refused].reset_index(drop=True) if refused.any() else window


def _errors(window: pd.DataFrame) -> np.ndarray:
    column = window["error"] if "error" in window.columns else pd.Series(False, index=window.index)
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool)
    return (column.notna() & (column.astype(str) != "") & (column.astype(str) != "False")).to_numpy()


def _error_rate(gate: ErrorRateGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    _enough(len(window), need)
    errors = _errors(window)
    observed = float(errors.mean())
    return _result(gate, observed, {"errors": int(errors.sum()), "n": len(window)}, observed <= gate.max)


def _reference(bundle: BundleDescription, prefix: str, column: str) -> pd.Series:
    key = f"{prefix}:{column}"
    if key not in bundle.reference.columns:
        raise InvalidInput(
            f"{bundle.info.tag}'s reference profile has no column {column!r}.",
            "Use a column of the output contract or the input schema.",
        )
    return bundle.reference[key]


def _successful(window: pd.DataFrame) -> pd.DataFrame:
    return window[~_errors(window)] if "error" in window.columns else window


def is_class_label(bundle: BundleDescription, column: str) -> bool:
    """Whether an output column holds a classifier's class labels (compared as categories)."""
    return bundle.schema.output.kind == "classification" and column == "prediction"


def _output_drift(bundle: BundleDescription, reference: pd.Series, current: pd.Series, column: str) -> Any:
    """Drift of an output column: class shares for class labels, else by the reference's dtype."""
    from rollbackkit.analysis.drift import drift, label_drift

    if is_class_label(bundle, column):
        return label_drift(reference, current, column)
    return drift(reference, current, column)


def _prediction_drift(
    gate: PredictionDriftGate, need: int, bundle: BundleDescription, window: pd.DataFrame
) -> GateResult:
    column = gate.column or bundle.schema.output.primary
    current = _column(_successful(window), column, gate)
    _enough(int(current.notna().sum()), need)
    result = _output_drift(bundle, _reference(bundle, "output", column), current, column)
    observed = _metric(result, gate.metric)
    return _result(
        gate, observed, {"column": column, "metric": gate.metric, **_drift_evidence(result)}, observed <= gate.max
    )


def _metric(result: Any, name: str) -> float:
    if result.kind == "categorical" and name not in ("psi", "js"):
        name = "psi"  # categorical columns have no KS/Wasserstein; PSI stands in
    return result.metric(name)


def _drift_evidence(result: Any) -> dict[str, Any]:
    data = result.to_dict()
    keep = ("n_ref", "n_cur", "psi", "js", "ks", "wasserstein_norm", "tail_share", "new_category_share", "slice")
    return {k: data[k] for k in keep if k in data}


def _feature_drift(gate: FeatureDriftGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    from rollbackkit.analysis.drift import drift

    names = bundle.schema.feature_names if gate.features == "all" else gate.features
    current = _successful(window)
    _enough(len(current), need)
    scores = {}
    for name in names:
        if name in current.columns:
            scores[name] = _metric(drift(_reference(bundle, "input", name), current[name], name), gate.metric)
    if not scores:
        raise _Insufficient("none of the gate's features are in the window")
    worst = max(scores, key=lambda k: scores[k])
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:5]
    return _result(
        gate,
        scores[worst],
        {"worst_feature": worst, "metric": gate.metric, "top": dict(top)},
        scores[worst] <= gate.max,
    )


def _tail(gate: TailGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    from rollbackkit.analysis.drift import numeric_drift

    column = gate.column or bundle.schema.output.primary
    current = _column(_successful(window), column, gate)
    if is_class_label(bundle, column):
        raise _Insufficient(f"a tail gate needs a numeric column; {column!r} holds class labels")
    _enough(int(current.notna().sum()), need)
    result = numeric_drift(
        _reference(bundle, "output" if f"output:{column}" in bundle.reference.columns else "input", column),
        current,
        column,
    )
    checks: list[tuple[str, float, bool]] = []
    if gate.share_above_p99_max is not None:
        share = result.tail_share["above_p99"]
        checks.append(("share_above_p99", share, share <= gate.share_above_p99_max))
    if gate.share_below_p1_max is not None:
        share = result.tail_share["below_p1"]
        checks.append(("share_below_p1", share, share <= gate.share_below_p1_max))
    if gate.quantile is not None:
        value = result.quantiles[gate.quantile][1]
        ok = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        checks.append((gate.quantile, value, ok))
    worst = next((c for c in checks if not c[2]), checks[0])
    evidence = {
        "column": column,
        "checks": {name: value for name, value, _ in checks},
        "reference_quantiles": {k: v[0] for k, v in result.quantiles.items()},
    }
    return _result(
        gate, worst[1], {**evidence, "violated": worst[0] if not worst[2] else None}, all(ok for _, _, ok in checks)
    )


def _label_value(metric: str, frame: pd.DataFrame, bundle: BundleDescription, label: str) -> float:
    from rollbackkit.analysis.drift import as_labels

    labels = frame[label]
    if metric == "accuracy":
        return float((as_labels(frame["prediction"]).to_numpy() == as_labels(labels).to_numpy()).mean())
    if metric == "auc":
        return _auc(frame, bundle, as_labels(labels).to_numpy())
    try:
        error = frame["prediction"].to_numpy(dtype="float64") - labels.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise _Insufficient(f"{metric} needs numeric predictions and labels ({exc}); use accuracy or auc") from exc
    return float(np.sqrt(np.mean(error**2))) if metric == "rmse" else float(np.mean(np.abs(error)))


def _auc(frame: pd.DataFrame, bundle: BundleDescription, truth: np.ndarray) -> float:
    """ROC AUC from the class probabilities: of the last class for two, one-vs-rest (macro) for more."""
    from sklearn.metrics import roc_auc_score

    classes = bundle.schema.output.classes or []
    proba = [f"proba_{c}" for c in classes]
    if len(classes) > 2 and all(p in frame.columns for p in proba):
        if len(set(truth)) < 2:
            raise _Insufficient("AUC needs at least two classes among the labels")
        try:
            scores = frame[proba].to_numpy(dtype="float64")
            return float(roc_auc_score(truth, scores, multi_class="ovr", labels=classes))
        except ValueError as exc:  # a class absent from the labels
            raise _Insufficient(f"AUC over {len(classes)} classes: {exc}") from exc
    positive = classes[-1] if classes else "1"
    column = f"proba_{positive}" if f"proba_{positive}" in frame.columns else bundle.schema.output.primary
    is_positive = truth == positive
    if is_positive.all() or not is_positive.any():
        raise _Insufficient("AUC needs both classes among the labels")
    try:
        scores = frame[column].to_numpy(dtype="float64")
    except (KeyError, TypeError, ValueError) as exc:
        raise _Insufficient(f"AUC needs the probability of {positive!r} (proba_{positive}) in the window") from exc
    return float(roc_auc_score(is_positive, scores))


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _label_metric(gate: LabelMetricGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    frame = _successful(window)
    labelled = frame[_column(frame, gate.label, gate).notna()]
    _enough(len(labelled), need)
    value = _label_value(gate.metric, labelled, bundle, gate.label)
    return _result(gate, value, {"metric": gate.metric, "n": len(labelled)}, _within(value, gate.min, gate.max))


def _slice(gate: SliceGate, need: int, bundle: BundleDescription, window: pd.DataFrame) -> GateResult:
    keys = [gate.by] if isinstance(gate.by, str) else list(gate.by)
    frame = window if gate.metric == "error_rate" else _successful(window)
    for key in keys:
        _column(frame, key, gate)
    _enough(len(frame), need)
    if gate.metric in _LABEL_METRICS:
        frame = frame[_column(frame, gate.label, gate).notna()]
    reference = bundle.reference.rename(columns=lambda c: str(c).split(":", 1)[-1])
    column = gate.column or bundle.schema.output.primary
    values: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for key, part in frame.groupby(keys, dropna=False, sort=True):
        label = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        label = {k: v.item() if hasattr(v, "item") else v for k, v in label.items()}
        if len(part) < gate.min_slice_samples:
            skipped.append({"slice": label, "n": len(part)})
            continue
        try:
            if gate.metric == "error_rate":
                value = float(_errors(part).mean())
            elif gate.metric in _LABEL_METRICS:
                value = _label_value(gate.metric, part, bundle, gate.label)
            else:
                ref_part = reference
                for k, v in label.items():
                    if k in ref_part.columns:
                        ref_part = ref_part[ref_part[k] == v]
                ref_values = (ref_part if len(ref_part) else reference)[column]
                value = _metric(_output_drift(bundle, ref_values, part[column], column), gate.metric)
        except _Insufficient as short:
            skipped.append({"slice": label, "n": len(part), "reason": str(short)})
            continue
        values.append({"slice": label, "value": value, "n": len(part)})
    if not values:
        raise _Insufficient(f"no slice has {gate.min_slice_samples} rows")

    def badness(item: dict[str, Any]) -> float:
        v = item["value"]
        return -v if gate.min is not None and gate.max is None else v

    worst = max(values, key=badness)
    ok = all(_within(v["value"], gate.min, gate.max) for v in values)
    return _result(
        gate,
        worst["value"],
        {"metric": gate.metric, "worst_slice": worst["slice"], "slices": values, "skipped": skipped},
        ok,
    )


_EVALUATORS: dict[str, Callable[..., GateResult]] = {
    "latency": _latency,
    "error_rate": _error_rate,
    "prediction_drift": _prediction_drift,
    "feature_drift": _feature_drift,
    "tail": _tail,
    "slice": _slice,
    "label_metric": _label_metric,
}
