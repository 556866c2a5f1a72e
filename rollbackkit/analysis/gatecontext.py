"""What every gate evaluator shares: the window and live rows, thresholds, results, column access.

Evaluators (:mod:`rollbackkit.analysis.gates`, :mod:`rollbackkit.analysis.label_gates`,
:mod:`rollbackkit.analysis.agreement`) take a gate, the rows it needs and a :class:`Context`,
and return a :class:`~rollbackkit.analysis.gateresult.GateResult`, or raise
:class:`~rollbackkit.analysis.gateresult.Insufficient` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.comparison import Comparison
from rollbackkit.analysis.drift import drift, label_drift
from rollbackkit.analysis.gateresult import GateResult, Insufficient
from rollbackkit.bundle.frames import prefixed
from rollbackkit.errors import InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

NO_LIVE = "no live version serves beside it"


@dataclass(frozen=True)
class Context:
    """One evaluation: the version, its window, live's rows over the same minutes (or None), now."""

    bundle: BundleDescription
    window: pd.DataFrame
    live: pd.DataFrame | None
    now: datetime
    _ok: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def ok(self, frame: pd.DataFrame) -> pd.DataFrame:
        """:func:`successful` rows of ``frame`` (the window or live), worked out once per evaluation."""
        if id(frame) not in self._ok:
            self._ok[id(frame)] = successful(frame)
        return self._ok[id(frame)]


THRESHOLD_KEYS = (
    "max_ms",
    "max",
    "min",
    "share_above_p99_max",
    "share_below_p1_max",
    "max_ratio",
    "max_increase",
    "max_decrease",
)


def threshold(gate: Any) -> dict[str, float]:
    """The bounds a gate declares (absolute and against live)."""
    return {k: getattr(gate, k) for k in THRESHOLD_KEYS if getattr(gate, k, None) is not None}


def result(gate: Any, observed: float, evidence: dict[str, Any], ok: bool) -> GateResult:
    """A decided gate: ``pass`` when ``ok``, else ``fail``."""
    return GateResult(
        gate.name, gate.kind, gate.severity, "pass" if ok else "fail", float(observed), threshold(gate), evidence
    )


def judged(
    gate: Any, observed: float, evidence: dict[str, Any], absolute_ok: bool, comparison: Comparison | None
) -> GateResult:
    """A gate with an absolute bound and/or a comparison with live: a broken absolute bound fails;
    else the comparison's verdict (fail, inconclusive or pass) decides."""
    if comparison is not None:
        evidence = {**evidence, **comparison.evidence()}
    elif getattr(gate, "compare", None):
        evidence = {**evidence, "compare_skipped": NO_LIVE}
    status = "pass" if comparison is None else comparison.verdict
    if not absolute_ok:
        status = "fail"
        if comparison is not None:
            evidence["violated"] = "absolute"
    return GateResult(gate.name, gate.kind, gate.severity, status, float(observed), threshold(gate), evidence)


def within(value: float, low: float | None, high: float | None) -> bool:
    """``value`` is within the optional bounds."""
    return (low is None or value >= low) and (high is None or value <= high)


def column(window: pd.DataFrame, name: str) -> pd.Series:
    """A window column, or Insufficient naming it."""
    if name not in window.columns:
        raise Insufficient(f"the window has no column {name!r}")
    return window[name]


def enough(n: int, need: int, what: str = "samples in the window") -> None:
    """Insufficient unless ``n >= need`` (``80 samples in the window, 200 needed``)."""
    if n < need:
        raise Insufficient(f"{n} {what}, {need} needed")


CLIENT_ERRORS = frozenset({"IncompatibleInput"})
"""``error`` values that name a request the version refused (the client's error, a 422),
not a model failure. Servers no longer log them; rows older servers logged so are left
out of every gate window, so they can neither fail the error-rate gate nor fill a sample."""


def without_client_errors(window: pd.DataFrame) -> pd.DataFrame:
    """``window`` without the rows of refused requests (see :data:`CLIENT_ERRORS`)."""
    if "error" not in window.columns or pd.api.types.is_bool_dtype(window["error"]):
        return window
    refused = window["error"].isin(CLIENT_ERRORS).to_numpy()
    return window[~refused].reset_index(drop=True) if refused.any() else window


def errors(window: pd.DataFrame) -> np.ndarray:
    """Whether each row is a failed request."""
    values = window["error"] if "error" in window.columns else pd.Series(False, index=window.index)
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    present = values.notna().to_numpy()
    if not present.any():  # the healthy case: no error at all, no text to read
        return present
    return present & (values.astype(str) != "").to_numpy() & (values.astype(str) != "False").to_numpy()


def successful(window: pd.DataFrame) -> pd.DataFrame:
    """The rows of requests that succeeded (``window`` itself when none failed: no copy)."""
    if "error" not in window.columns:
        return window
    failed = errors(window)
    return window[~failed] if failed.any() else window


def reference(bundle: BundleDescription, prefix: str, name: str) -> pd.Series:
    """A column of the bundle's reference profile (``prefix`` ``input`` or ``output``)."""
    key = prefixed(prefix, name)
    if key not in bundle.reference.columns:
        raise InvalidInput(
            f"{bundle.info.tag}'s reference profile has no column {name!r}.",
            "Use a column of the output contract or the input schema.",
        )
    return bundle.reference[key]


def is_class_label(bundle: BundleDescription, name: str) -> bool:
    """Whether an output column holds a classifier's class labels (compared as categories)."""
    return bundle.schema.output.kind == "classification" and name == "prediction"


def output_drift(bundle: BundleDescription, ref: pd.Series, current: pd.Series, name: str) -> Any:
    """Drift of an output column: class shares for class labels, else by the reference's dtype."""
    if is_class_label(bundle, name):
        return label_drift(ref, current, name)
    return drift(ref, current, name)


def drift_metric(outcome: Any, name: str) -> float:
    """A drift result's metric (categorical columns have no KS/Wasserstein: PSI stands in)."""
    if outcome.kind == "categorical" and name not in ("psi", "js"):
        name = "psi"
    return float(outcome.metric(name))
