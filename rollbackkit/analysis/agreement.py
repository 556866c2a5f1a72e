"""The ``agreement`` gate: a shadow's answers against live's for the same requests.

Rows pair by ``request_id`` and ``row`` (a shadow scores a mirror of live's requests); beside a
canary or a stepped rollout no request is scored by both, and the gate is ``skipped`` (not a
shadow), so the same gates.yaml serves a version's shadow and its canary. A
classifier's pair agrees when both predicted the same class; a regressor's when the primary
outputs differ by at most ``tolerance``. Failed requests on either side are left out (evidence
``excluded_failed``; error-rate gates judge them). The evidence has the agreement, the pairs, the mean
absolute difference of the primary output (per slice with ``by``) and latency p50/p99 of
each side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.gatecontext import NO_LIVE, Context, column, enough, result, threshold
from rollbackkit.analysis.gateresult import GateResult, Insufficient
from rollbackkit.analysis.gatespec import AgreementGate
from rollbackkit.analysis.series import as_labels
from rollbackkit.analysis.slices import slice_columns, slices

PAIR = ["request_id", "row"]
NOT_SHADOW = "not a shadow: no request was scored by both versions"


def _pairs(ctx: Context, primary: str, by: list[str]) -> pd.DataFrame:
    assert ctx.live is not None
    window, live = ctx.window, ctx.live
    for frame, side in ((window, "window"), (live, "live window")):
        for name in [*PAIR, primary, "prediction"]:
            if name not in frame.columns:
                raise Insufficient(f"the {side} has no column {name!r} to pair rows by")
    keep = list(dict.fromkeys([*PAIR, primary, "prediction", *by]))
    ours = ctx.ok(window)[[c for c in keep if c in window.columns]]
    theirs = ctx.ok(live)[list(dict.fromkeys([*PAIR, primary, "prediction"]))]
    theirs = theirs.drop_duplicates(PAIR, keep="last")
    return ours.merge(theirs, on=PAIR, how="inner", suffixes=("", "_live"))


def _latency(frame: pd.DataFrame) -> dict[str, float] | None:
    if "latency_ms" not in frame.columns:
        return None
    values = pd.to_numeric(frame["latency_ms"], errors="coerce").dropna().to_numpy(dtype="float64")
    if not values.size:
        return None
    return {"p50": float(np.quantile(values, 0.5)), "p99": float(np.quantile(values, 0.99))}


def agreement(gate: AgreementGate, need: int, ctx: Context) -> GateResult:
    """The share of paired rows on which the candidate agrees with live, at least ``min``."""
    if ctx.live is None:
        raise Insufficient(NO_LIVE)
    by = slice_columns(gate.by) if gate.by is not None else []
    for name in by:
        column(ctx.window, name)
    output = ctx.bundle.schema.output
    primary = output.primary
    paired = _pairs(ctx, primary, by)
    if paired.empty and not ctx.window["request_id"].isin(ctx.live["request_id"]).any():
        return GateResult(gate.name, gate.kind, gate.severity, "skipped", None, threshold(gate), {"reason": NOT_SHADOW})
    enough(len(paired), need, "paired rows")
    delta = _delta(paired, primary)
    if output.kind == "classification":
        same = as_labels(paired["prediction"]).to_numpy() == as_labels(paired["prediction_live"]).to_numpy()
    else:
        same = np.abs(delta) <= gate.tolerance
    share = float(np.mean(same))
    evidence: dict[str, Any] = {
        "metric": "agreement",
        "agreement": share,
        "n_paired": len(paired),
        "excluded_failed": _failed(ctx.window, ctx) + _failed(ctx.live, ctx),
        "column": primary,
        "mean_abs_delta": float(np.nanmean(np.abs(delta))) if np.isfinite(delta).any() else None,
        "latency_ms": {"candidate": _latency(ctx.window), "live": _latency(ctx.live)},
    }
    if by:
        frame = paired.assign(_same=same, _delta=np.abs(delta))
        evidence["slices"] = [
            {
                "slice": s.label,
                "n": len(s.rows),
                "agreement": float(s.rows["_same"].mean()),
                "mean_abs_delta": float(s.rows["_delta"].mean()),
            }
            for s in slices(frame, by)
        ]
    return result(gate, share, evidence, share >= gate.min)


def _failed(frame: pd.DataFrame, ctx: Context) -> int:
    """Rows of ``frame`` left out of the pairs because their request failed (error-rate gates judge those)."""
    return len(frame) - len(ctx.ok(frame))


def _delta(paired: pd.DataFrame, primary: str) -> np.ndarray:
    """Candidate minus live on the primary output (NaN where it is not a number)."""
    ours = pd.to_numeric(paired[primary], errors="coerce").to_numpy(dtype="float64")
    theirs = pd.to_numeric(paired[f"{primary}_live"], errors="coerce").to_numpy(dtype="float64")
    return np.asarray(ours - theirs, dtype="float64")
