"""Gates decided on labelled rows (``label_metric``) or per segment (``slice``), alone or against live.

A label gate reads only eligible rows (old enough for labels: ``label_delay``) that have a
label, counts them (``labelled`` of ``eligible`` in the evidence) and needs ``min_samples``
labelled rows. With ``compare: live`` the same is read from live's rows over the same
minutes; a ``slice`` gate compares each segment with the same segment of live.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pandas as pd

from rollbackkit.analysis.comparison import Comparison, bootstrap, proportions
from rollbackkit.analysis.gatebase import LABEL_METRICS
from rollbackkit.analysis.gatecontext import (
    Context,
    column,
    drift_metric,
    enough,
    errors,
    judged,
    output_drift,
    within,
)
from rollbackkit.analysis.gateresult import GateResult, Insufficient
from rollbackkit.analysis.gatespec import LabelMetricGate, SliceGate
from rollbackkit.analysis.label_metrics import Labelled, eligible, labelled, value
from rollbackkit.analysis.slices import same_segment, slice_columns, slices
from rollbackkit.bundle.frames import parts


def has_absolute_bound(gate: Any) -> bool:
    """Whether a gate has a bound of its own (``max_ms``, ``max`` or ``min``) besides any comparison."""
    return any(getattr(gate, k, None) is not None for k in ("max_ms", "max", "min"))


def too_thin(n_live: int, need: int) -> str | None:
    """Why live's rows are too few to compare with (``50 live rows, 200 needed``), or None."""
    return f"{n_live} live rows, {need} needed" if n_live < need else None


def dropped(gate: Any, thin: str | None, judged_alone: GateResult) -> GateResult:
    """A gate whose comparison with live was dropped because live is ``thin`` (None: kept).

    The gate's own bound still decides (a broken bound fails at once, whatever live holds); a
    gate with nothing but the comparison is insufficient. The evidence says ``compare_skipped``.
    """
    if thin is None:
        return judged_alone
    if not has_absolute_bound(gate):
        raise Insufficient(thin, {"compare_skipped": thin})
    return replace(judged_alone, evidence={**judged_alone.evidence, "compare_skipped": thin})


def label_rows(frame: pd.DataFrame, gate: Any, ctx: Context, need: int, side: str = "") -> pd.DataFrame:
    """The eligible, labelled, successful rows of ``frame`` for a label gate (Insufficient below ``need``)."""
    rows = ctx.ok(frame)
    if gate.label not in rows.columns:
        raise Insufficient(f"no labels yet: the {side or 'window'} has no {gate.label!r} column")
    pool, notes = eligible(rows, gate.label_delay, ctx.now)
    done = pool[pool[gate.label].notna()]
    counts = {"labelled": len(done), "eligible": len(pool), **notes}
    if len(done) < need:
        raise Insufficient(f"{len(done)} labelled {side + ' ' if side else ''}rows, {need} needed", counts)
    return done


def _counts(frame: pd.DataFrame, gate: Any, ctx: Context) -> dict[str, Any]:
    pool, notes = eligible(ctx.ok(frame), gate.label_delay, ctx.now)
    return {"labelled": int(pool[gate.label].notna().sum()), "eligible": len(pool), **notes}


def compare_labels(metric: str, data: Labelled, live: Labelled, gate: Any, level: float | None = None) -> Comparison:
    """Candidate against live on a label metric: accuracy as proportions, others by bootstrap
    (at ``level``, default the gate's ``confidence``)."""
    key, limit = gate.comparison
    confidence = gate.confidence if level is None else level
    if metric == "accuracy":
        right, right_live = int((data.truth == data.prediction).sum()), int((live.truth == live.prediction).sum())
        return proportions(right, len(data), right_live, len(live), key, limit, confidence)
    return bootstrap(
        data,
        live,
        lambda d: value(metric, d),
        Labelled.take,
        (len(data), len(live)),
        key,
        limit,
        confidence,
    )


def label_metric(gate: LabelMetricGate, need: int, ctx: Context) -> GateResult:
    """A label metric over the labelled rows, with its bounds and/or against live."""
    rows = label_rows(ctx.window, gate, ctx, need)
    data, notes = labelled(rows, ctx.bundle, gate.label, gate.metric)
    observed = value(gate.metric, data)
    evidence = {"metric": gate.metric, "n": len(data), **_counts(ctx.window, gate, ctx), **notes}
    comparison, thin = None, None
    if gate.compared and ctx.live is not None:
        try:
            live_rows = label_rows(ctx.live, gate, ctx, need, side="live")
        except Insufficient as short:
            thin = str(short)
        else:
            live, _ = labelled(live_rows, ctx.bundle, gate.label, gate.metric)
            comparison = compare_labels(gate.metric, data, live, gate)
    return dropped(gate, thin, judged(gate, observed, evidence, within(observed, gate.min, gate.max), comparison))


def _slice_key(label: dict[str, Any]) -> str:
    return json.dumps(label, sort_keys=True, default=str)


def _slice_frame(frame: pd.DataFrame, gate: SliceGate, ctx: Context, need: int, side: str = "") -> pd.DataFrame:
    for key in slice_columns(gate.by):
        column(frame, key)
    if gate.metric in LABEL_METRICS:
        return label_rows(frame, gate, ctx, need, side)
    rows = frame if gate.metric == "error_rate" else ctx.ok(frame)
    enough(len(rows), need, f"samples in the {side or 'window'}")
    return rows


def _slice_value(gate: SliceGate, part: pd.DataFrame, ctx: Context, reference: pd.DataFrame, label: dict) -> float:
    if gate.metric == "error_rate":
        return float(errors(part).mean())
    if gate.metric in LABEL_METRICS:
        return value(gate.metric, labelled(part, ctx.bundle, gate.label, gate.metric)[0])
    name = gate.column or ctx.bundle.schema.output.primary
    ref_part = same_segment(reference, label)
    ref_values = (ref_part if len(ref_part) else reference)[name]
    return drift_metric(output_drift(ctx.bundle, ref_values, part[name], name), gate.metric)


def _slice_comparison(
    gate: SliceGate, part: pd.DataFrame, live_part: pd.DataFrame, ctx: Context, level: float
) -> Comparison:
    key, limit = gate.comparison
    if gate.metric == "error_rate":
        bad, bad_live = int(errors(part).sum()), int(errors(live_part).sum())
        return proportions(bad, len(part), bad_live, len(live_part), key, limit, level)
    data = labelled(part, ctx.bundle, gate.label, gate.metric)[0]
    live = labelled(live_part, ctx.bundle, gate.label, gate.metric)[0]
    return compare_labels(gate.metric, data, live, gate, level)


_ORDER = {"fail": 2, "inconclusive": 1, "pass": 0}


def slice_gate(gate: SliceGate, need: int, ctx: Context) -> GateResult:
    """A metric per segment: any segment beyond a bound (or worse than live's segment) fails.

    Segments compared with live are tested at ``1 - (1 - confidence) / k`` each (Bonferroni over
    the ``k`` segments compared: evidence ``slice_confidence``), so more segments do not mean more
    false failures. Live too thin (or lacking a segment) drops only the comparison.
    """
    keys = slice_columns(gate.by)
    frame = _slice_frame(ctx.window, gate, ctx, need)
    comparing = gate.compared and ctx.live is not None
    live_parts: dict[str, pd.DataFrame] = {}
    thin: str | None = None
    if comparing:
        assert ctx.live is not None
        try:
            live_frame = _slice_frame(ctx.live, gate, ctx, need, side="live")
        except Insufficient as short:
            thin = str(short)
        else:
            live_parts = {_slice_key(g.label): g.rows for g in slices(live_frame, keys)}
    reference = parts(ctx.bundle.reference)
    values: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]] = []
    for group in slices(frame, keys):
        label, part = group.label, group.rows
        if len(part) < gate.min_slice_samples:
            skipped.append({"slice": label, "n": len(part)})
            continue
        try:
            item: dict[str, Any] = {"slice": label, "value": _slice_value(gate, part, ctx, reference, label)}
        except Insufficient as short:
            skipped.append({"slice": label, "n": len(part), "reason": str(short)})
            continue
        item["n"] = len(part)
        live_part = live_parts.get(_slice_key(label))
        if comparing and (live_part is None or len(live_part) < gate.min_slice_samples):
            item["not_compared"] = f"{0 if live_part is None else len(live_part)} live rows, too few"
        elif comparing:
            assert live_part is not None
            pending.append((item, part, live_part))
        values.append(item)
    if not values:
        raise Insufficient(f"no slice has {gate.min_slice_samples} rows")
    level = 1 - (1 - gate.confidence) / max(len(pending), 1)
    compared: list[tuple[Comparison, dict[str, Any]]] = []
    for item, part, live_part in pending:
        try:
            judged_slice = _slice_comparison(gate, part, live_part, ctx, level)
        except Insufficient as short:
            item["not_compared"] = str(short)
            continue
        item.update(judged_slice.evidence(), verdict=judged_slice.verdict)
        compared.append((judged_slice, item))
    if comparing and not compared:
        thin = thin or f"no slice has {gate.min_slice_samples} rows on both sides"

    def badness(item: dict[str, Any]) -> float:
        v = float(item["value"])
        return -v if gate.min is not None and gate.max is None else v

    absolute_ok = all(within(v["value"], gate.min, gate.max) for v in values)
    worst = max(values, key=badness)
    comparison: Comparison | None = None
    if compared:
        comparison, worst_compared = max(compared, key=lambda c: (_ORDER[c[0].verdict], c[0].estimate))
        if absolute_ok or comparison.verdict == "fail":
            worst = worst_compared
    evidence: dict[str, Any] = {"metric": gate.metric, "worst_slice": worst["slice"], "slices": values}
    evidence["skipped"] = skipped
    if pending:
        evidence.update(slice_confidence=level, compared_slices=len(pending))
    if gate.metric in LABEL_METRICS:
        evidence.update(_counts(ctx.window, gate, ctx))
    return dropped(gate, thin, judged(gate, float(worst["value"]), evidence, absolute_ok, comparison))
