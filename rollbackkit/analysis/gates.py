"""Quality gates evaluated over a window of logged predictions (the gates themselves:
:mod:`rollbackkit.analysis.gatespec`; results and decisions: :mod:`rollbackkit.analysis.gateresult`).

A window is a frame (or Parquet/CSV file) with the output columns (``prediction``,
``proba_<class>``), the input features, ``latency_ms``, ``error`` (null or false when a
request succeeded), ``time``, ``request_id`` and ``row`` and, when read from the log,
``label``. :func:`evaluate` gives each gate ``pass``, ``fail``, ``insufficient`` (no traffic,
too few rows or labelled rows, or still within ``initial_delay``: never a pass),
``inconclusive`` (a material difference with live the data does not yet support) or
``skipped`` (a gate that needs live rows while no live version serves beside the candidate).
The decision is rollback > warn > inconclusive > pass. :func:`tolerate`
(:mod:`rollbackkit.analysis.tolerance`) applies each gate's ``failure_limit`` across
evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from rollbackkit.analysis.agreement import agreement
from rollbackkit.analysis.comparison import proportions as _proportions
from rollbackkit.analysis.comparison import quantiles
from rollbackkit.analysis.drift import drift, numeric_drift
from rollbackkit.analysis.durations import format_duration
from rollbackkit.analysis.gatecontext import CLIENT_ERRORS as CLIENT_ERRORS
from rollbackkit.analysis.gatecontext import (
    NO_LIVE,
    Context,
    column,
    drift_metric,
    enough,
    errors,
    judged,
    output_drift,
    reference,
    result,
    threshold,
    without_client_errors,
)
from rollbackkit.analysis.gatecontext import is_class_label as is_class_label
from rollbackkit.analysis.gateresult import Decision as Decision
from rollbackkit.analysis.gateresult import GateReport as GateReport
from rollbackkit.analysis.gateresult import GateResult as GateResult
from rollbackkit.analysis.gateresult import Insufficient, decide
from rollbackkit.analysis.gateresult import Status as Status
from rollbackkit.analysis.gateresult import plain_words as plain_words
from rollbackkit.analysis.gatespec import (
    ErrorRateGate,
    FeatureDriftGate,
    GateSpec,
    LatencyGate,
    PredictionDriftGate,
    TailGate,
    parse_gates_dict,
    uses_live,
)
from rollbackkit.analysis.label_gates import dropped, has_absolute_bound, label_metric, slice_gate, too_thin
from rollbackkit.analysis.tolerance import tolerate as tolerate
from rollbackkit.bundle.frames import prefixed, read_frame

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

_Frame: TypeAlias = pd.DataFrame | str | Path


def evaluate(
    bundle: BundleDescription,
    window: _Frame,
    *,
    live: _Frame | None = None,
    now: datetime | None = None,
    serving_for: float | None = None,
) -> GateReport:
    """Evaluate a bundle's gates over a window of logged predictions.

    Args:
        bundle: The version under evaluation (its gates, schema and reference profile).
        window: Its rows, as a frame or a Parquet/CSV path (an empty window is ``no traffic``:
            every gate insufficient, decision ``inconclusive``).
        live: The live version's rows over the same minutes, for ``compare: live`` and
            ``agreement`` gates (None: those are ``skipped``, or judged on their absolute
            bounds alone).
        now: The time label delays count back from (default: now, UTC).
        serving_for: Seconds the deployment has served (for ``initial_delay``; None: no wait).
    """
    spec = parse_gates_dict(bundle.gates, f"{bundle.info.tag} gates.yaml")
    frame = without_client_errors(_frame(window, "window"))
    ctx = Context(
        bundle,
        frame,
        None if live is None else without_client_errors(_frame(live, "live window")),
        now or datetime.now(UTC),
    )
    results = [
        replace(_evaluate_one(gate, spec, ctx, serving_for), failure_limit=gate.failure_limit) for gate in spec.gates
    ]
    decision = "inconclusive" if frame.empty else decide(results)  # no traffic is never a pass
    return GateReport(bundle.info.tag, len(frame), decision, results)


def _frame(data: _Frame, what: str) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else read_frame(data, what)


def _evaluate_one(gate: Any, spec: GateSpec, ctx: Context, serving_for: float | None) -> GateResult:
    need = gate.min_samples or spec.min_samples
    try:
        if ctx.window.empty:
            raise Insufficient("no traffic")
        if serving_for is not None and serving_for < gate.initial_delay:
            done, delay = format_duration(max(serving_for, 0.0)), format_duration(gate.initial_delay)
            raise Insufficient(f"waiting: {done} of {delay} initial delay")
        if uses_live(gate) and ctx.live is None and _only_live(gate):
            return GateResult(
                gate.name, gate.kind, gate.severity, "skipped", None, threshold(gate), {"reason": NO_LIVE}
            )
        return _EVALUATORS[gate.kind](gate, need, ctx)
    except Insufficient as short:
        evidence = {"reason": str(short), **short.evidence}
        return GateResult(gate.name, gate.kind, gate.severity, "insufficient", None, threshold(gate), evidence)
    except Exception as exc:  # one gate's failure must not blind the others: it is undecided, and says why
        said = " ".join(str(exc).split())
        evidence = {"reason": f"error: {type(exc).__name__}: {said}", "error": True}
        return GateResult(gate.name, gate.kind, gate.severity, "insufficient", None, threshold(gate), evidence)


def _only_live(gate: Any) -> bool:
    """Whether a gate has nothing to judge without live (no absolute bound)."""
    return not has_absolute_bound(gate) or gate.kind == "agreement"


def _latency(gate: LatencyGate, need: int, ctx: Context) -> GateResult:
    values = column(ctx.window, "latency_ms").dropna().to_numpy(dtype="float64")
    enough(values.size, need)
    q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[gate.quantile]
    comparison, thin = None, None
    if gate.compared and ctx.live is not None:
        live = column(ctx.live, "latency_ms").dropna().to_numpy(dtype="float64")
        thin = too_thin(live.size, need)
    if gate.compared and ctx.live is not None and thin is None:
        key, limit = gate.comparison
        comparison = quantiles(values, live, q, key, limit, gate.confidence)
        observed = comparison.candidate
    else:
        observed = float(np.quantile(values, q))
    ok = gate.max_ms is None or observed <= gate.max_ms
    evidence = {"quantile": gate.quantile, "n": int(values.size)}
    return dropped(gate, thin, judged(gate, observed, evidence, ok, comparison))


def _error_rate(gate: ErrorRateGate, need: int, ctx: Context) -> GateResult:
    enough(len(ctx.window), need)
    failed = errors(ctx.window)
    observed = float(failed.mean())
    comparison, thin = None, None
    if gate.compared and ctx.live is not None:
        thin = too_thin(len(ctx.live), need)
    if gate.compared and ctx.live is not None and thin is None:
        key, limit = gate.comparison
        bad_live = int(errors(ctx.live).sum())
        comparison = _proportions(int(failed.sum()), failed.size, bad_live, len(ctx.live), key, limit, gate.confidence)
    ok = gate.max is None or observed <= gate.max
    evidence = {"errors": int(failed.sum()), "n": len(ctx.window)}
    return dropped(gate, thin, judged(gate, observed, evidence, ok, comparison))


def _prediction_drift(gate: PredictionDriftGate, need: int, ctx: Context) -> GateResult:
    bundle = ctx.bundle
    name = gate.column or bundle.schema.output.primary
    current = column(ctx.ok(ctx.window), name)
    enough(int(current.notna().sum()), need)
    outcome = output_drift(bundle, reference(bundle, "output", name), current, name)
    observed = drift_metric(outcome, gate.metric)
    evidence = {"column": name, "metric": gate.metric, **_drift_evidence(outcome)}
    return result(gate, observed, evidence, observed <= gate.max)


def _drift_evidence(outcome: Any) -> dict[str, Any]:
    data = outcome.to_dict()
    keep = ("n_ref", "n_cur", "psi", "js", "ks", "wasserstein_norm", "tail_share", "new_category_share", "slice")
    return {k: data[k] for k in keep if k in data}


def _feature_drift(gate: FeatureDriftGate, need: int, ctx: Context) -> GateResult:
    names = ctx.bundle.schema.feature_names if gate.features == "all" else gate.features
    current = ctx.ok(ctx.window)
    enough(len(current), need)
    scores = {
        name: drift_metric(drift(reference(ctx.bundle, "input", name), current[name], name), gate.metric)
        for name in names
        if name in current.columns
    }
    if not scores:
        raise Insufficient("none of the gate's features are in the window")
    worst = max(scores, key=lambda k: scores[k])
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:5]
    evidence = {"worst_feature": worst, "metric": gate.metric, "top": dict(top)}
    return result(gate, scores[worst], evidence, scores[worst] <= gate.max)


def _tail(gate: TailGate, need: int, ctx: Context) -> GateResult:
    bundle = ctx.bundle
    name = gate.column or bundle.schema.output.primary
    current = column(ctx.ok(ctx.window), name)
    if is_class_label(bundle, name):
        raise Insufficient(f"a tail gate needs a numeric column; {name!r} holds class labels")
    enough(int(current.notna().sum()), need)
    side = "output" if prefixed("output", name) in bundle.reference.columns else "input"
    outcome = numeric_drift(reference(bundle, side, name), current, name)
    checks: list[tuple[str, float, bool]] = []
    if gate.share_above_p99_max is not None:
        share = outcome.tail_share["above_p99"]
        checks.append(("share_above_p99", share, share <= gate.share_above_p99_max))
    if gate.share_below_p1_max is not None:
        share = outcome.tail_share["below_p1"]
        checks.append(("share_below_p1", share, share <= gate.share_below_p1_max))
    if gate.quantile is not None:
        value = outcome.quantiles[gate.quantile][1]
        ok = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        checks.append((gate.quantile, value, ok))
    worst = next((c for c in checks if not c[2]), checks[0])
    evidence = {
        "column": name,
        "checks": {label: value for label, value, _ in checks},
        "reference_quantiles": {k: v[0] for k, v in outcome.quantiles.items()},
        "violated": worst[0] if not worst[2] else None,
    }
    return result(gate, worst[1], evidence, all(ok for _, _, ok in checks))


_EVALUATORS: dict[str, Callable[..., GateResult]] = {
    "latency": _latency,
    "error_rate": _error_rate,
    "prediction_drift": _prediction_drift,
    "feature_drift": _feature_drift,
    "tail": _tail,
    "slice": slice_gate,
    "label_metric": label_metric,
    "agreement": agreement,
}
