"""Quality gates evaluated over a window of logged predictions (the gates themselves:
:mod:`rollbackkit.analysis.gatespec`).

A window is a frame (or Parquet/CSV file) with the output columns (``prediction``,
``proba_<class>``), the input features, ``latency_ms``, ``error`` (null or false when a
request succeeded) and, when known, ``label``. Each gate yields ``pass``, ``fail`` or
``insufficient`` (fewer rows than its ``min_samples``: never a pass); a failed
``rollback`` gate makes the decision ``rollback``, any other failure or shortfall ``warn``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd

from rollbackkit.analysis.drift import drift, label_drift, numeric_drift
from rollbackkit.analysis.gatespec import (
    ErrorRateGate,
    FeatureDriftGate,
    GateSpec,
    LabelMetric,
    LabelMetricGate,
    LatencyGate,
    PredictionDriftGate,
    SliceGate,
    TailGate,
    parse_gates_dict,
)
from rollbackkit.analysis.series import as_labels, json_safe
from rollbackkit.analysis.slices import slice_columns, slices
from rollbackkit.bundle.frames import parts, prefixed, read_frame
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

Status = Literal["pass", "fail", "insufficient"]
Decision = Literal["rollback", "warn", "pass"]
_LABEL_METRICS = frozenset(get_args(LabelMetric))


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
        return json_safe(asdict(self))  # type: ignore[no-any-return]

    def words(self) -> str:
        """The outcome in plain words: gate, metric, observed value and the bound it met or broke.

        ``score-drift psi 0.912 > 0.25`` (failed: the bound it broke), ``p99-latency p99 41.2 ms
        <= 250 ms`` (passed), ``errors: insufficient (80 samples in the window, 200 needed)``.
        """
        if self.observed is None:
            why = self.evidence.get("reason")
            return f"{self.name}: {self.status}" + (f" ({why})" if why else "")
        measure = _measure(self)
        unit = " ms" if "max_ms" in self.threshold else ""
        head = " ".join(p for p in (self.name, measure, f"{_number(self.observed)}{unit}") if p)
        return f"{head} {_bound(self, unit)}".rstrip()


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
        """One line in plain words: the decision and each failing gate with the bound it broke.

        ``rollback: score-drift psi 0.912 > 0.25; errors error rate 0.12 > 0.05`` (see
        :meth:`GateResult.words`); the watchdog stores it as the reason of an automatic rollback.
        """
        bad = "; ".join(g.words() for g in self.failed if g.observed is not None)
        return f"{self.decision}: {bad}" if bad else self.decision


def _number(value: float) -> str:
    """A measurement for people: three significant digits (``0.912``, ``41.2``), whole numbers
    from 1,000 up (``2000``, not ``2e+03``), exponents only past ten million."""
    if np.isfinite(value) and 1000 <= abs(value) < 1e7:
        return f"{value:.0f}"
    return f"{value:.3g}"


_MEASURES = {"error_rate": "error rate", "latency": ""}


def _measure(g: GateResult) -> str:
    """What a gate measured, in words: the drift/label metric, the quantile or the tail share."""
    violated = g.evidence.get("violated")
    if g.kind == "tail" and violated:
        measure = str(violated)
    elif g.kind == "latency":
        measure = str(g.evidence.get("quantile", ""))
    else:
        measure = str(g.evidence.get("metric", _MEASURES.get(g.kind, "")))
    said = g.name.lower().replace("-", " ").replace("_", " ")
    measure = measure.replace("_", " ")
    return "" if measure in said else measure  # "p99-latency" needs no "p99"


def _bound(g: GateResult, unit: str) -> str:
    """The bound a failed gate broke (``> 0.25``, ``< 0.8``), or the one a passing gate met."""
    observed = g.observed if g.observed is not None else 0.0
    violated = g.evidence.get("violated")
    if violated and f"{violated}_max" in g.threshold:
        limit = g.threshold[f"{violated}_max"]
        return f"{'>' if observed > limit else '<='} {_number(limit)}"
    high = g.threshold.get("max_ms", g.threshold.get("max"))
    low = g.threshold.get("min")
    if high is not None and observed > high:
        return f"> {_number(high)}{unit}"
    if low is not None and observed < low:
        return f"< {_number(low)}{unit}"
    if g.status == "fail":  # a tail share or a slice other than the one reported broke its bound
        return "out of " + ", ".join(f"{k} {_number(v)}" for k, v in g.threshold.items())
    parts = ([f">= {_number(low)}"] if low is not None else []) + (
        [f"<= {_number(high)}{unit}"] if high is not None else []
    )
    if not parts and g.threshold:  # a passing tail or slice gate: the bounds it stayed within
        return "within " + ", ".join(f"{k.replace('_', ' ')} {_number(v)}" for k, v in g.threshold.items())
    return " and ".join(parts)


_OLD_SUMMARY = re.compile(r"\(([-+0-9.e]+|nan|inf) vs (\{[^{}]*\})\)(, (?=\S+ \())?")


def plain_words(text: str) -> str:
    """A stored reason or gate summary in plain words, whatever release wrote it.

    Summaries written before :meth:`GateReport.summary` spoke plainly held Python dict reprs
    (``score-drift (0.9123 vs {'max': 0.25}), errors (...)``); those read
    ``score-drift 0.912 > 0.25; errors ...``.
    Any other text is returned unchanged.
    """

    def one(match: re.Match[str]) -> str:
        observed = float(match.group(1))
        try:
            bounds = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            return match.group(0)
        if not isinstance(bounds, dict):
            return match.group(0)
        high = bounds.get("max_ms", bounds.get("max"))
        low = bounds.get("min")
        unit = " ms" if "max_ms" in bounds else ""
        if isinstance(high, (int, float)) and observed > high:
            bound = f"> {_number(high)}{unit}"
        elif isinstance(low, (int, float)) and observed < low:
            bound = f"< {_number(low)}"
        else:
            bound = "out of " + ", ".join(f"{k} {v}" for k, v in bounds.items())
        return f"{_number(observed)}{unit} {bound}" + ("; " if match.group(3) else "")

    return _OLD_SUMMARY.sub(one, text)


def evaluate(bundle: BundleDescription, window: pd.DataFrame | str | Path) -> GateReport:
    """Evaluate a bundle's gates over a window of logged predictions.

    Args:
        bundle: The version under evaluation (its gates, schema and reference profile).
        window: The window as a frame, or a Parquet/CSV path.
    """
    spec = parse_gates_dict(bundle.gates, f"{bundle.info.tag} gates.yaml")
    frame = _without_client_errors(window if isinstance(window, pd.DataFrame) else read_frame(window, "window"))
    results = [_evaluate_one(gate, spec, bundle, frame) for gate in spec.gates]
    decision: Decision = "pass"
    if any(r.status == "fail" and r.severity == "rollback" for r in results):
        decision = "rollback"
    elif any(r.status in ("fail", "insufficient") for r in results):
        decision = "warn"
    return GateReport(bundle.info.tag, len(frame), decision, results)


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
    key = prefixed(prefix, column)
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
    column = gate.column or bundle.schema.output.primary
    current = _column(_successful(window), column, gate)
    if is_class_label(bundle, column):
        raise _Insufficient(f"a tail gate needs a numeric column; {column!r} holds class labels")
    _enough(int(current.notna().sum()), need)
    result = numeric_drift(
        _reference(bundle, "output" if prefixed("output", column) in bundle.reference.columns else "input", column),
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
    keys = slice_columns(gate.by)
    frame = window if gate.metric == "error_rate" else _successful(window)
    for key in keys:
        _column(frame, key, gate)
    _enough(len(frame), need)
    if gate.metric in _LABEL_METRICS:
        frame = frame[_column(frame, gate.label, gate).notna()]
    reference = parts(bundle.reference)
    column = gate.column or bundle.schema.output.primary
    values: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for group in slices(frame, keys):
        label, part = group.label, group.rows
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
