"""The parts every gate model shares: metric names, durations, the base gate and comparison with live.

The keys themselves are documented once, in :mod:`rollbackkit.analysis.gatespec`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from rollbackkit.analysis.durations import duration_seconds

Severity = Literal["rollback", "warn"]
DriftMetric = Literal["psi", "js", "wasserstein_norm", "ks", "mean_shift"]
LabelMetric = Literal["accuracy", "balanced_accuracy", "f1", "roc_auc", "auc", "log_loss", "mae", "rmse", "mape"]
SliceMetric = Literal[
    "accuracy",
    "balanced_accuracy",
    "f1",
    "roc_auc",
    "auc",
    "log_loss",
    "mae",
    "rmse",
    "mape",
    "error_rate",
    "psi",
    "js",
    "wasserstein_norm",
    "ks",
    "mean_shift",
]
LABEL_METRICS: frozenset[str] = frozenset(get_args(LabelMetric))
CLASS_METRICS: frozenset[str] = frozenset({"accuracy", "balanced_accuracy", "f1", "roc_auc", "auc", "log_loss"})
"""Label metrics only a classifier has."""
HIGHER_IS_BETTER: frozenset[str] = frozenset({"accuracy", "balanced_accuracy", "f1", "roc_auc", "auc"})
"""Label metrics where a drop is the harm (compared with ``max_decrease``)."""
REGRESSION_METRICS: frozenset[str] = frozenset({"mae", "rmse", "mape"})
"""Label metrics only a regressor has."""
BOUNDED_METRICS: frozenset[str] = HIGHER_IS_BETTER
"""Label metrics that lie in [0, 1]: a ``min`` or ``max`` outside could never be met (or always is)."""
COMPARE_KEYS = ("max_ratio", "max_increase", "max_decrease")
Quantile = Literal["p1", "p5", "p50", "p95", "p99"]
WINDOW_ROWS = 20_000
"""The rows a gate window holds: a server's latest rows of the version under evaluation
(kept in memory or read from the prediction log)."""
MAX_MIN_SAMPLES = WINDOW_ROWS
"""The largest ``min_samples``: a gate that needs more rows than a window holds could never
be decided, so it would warn "insufficient" forever."""


def _duration(value: object, info: ValidationInfo) -> object:
    if value is None:
        return None
    try:
        return duration_seconds(value)
    except ValueError as exc:
        raise PydanticCustomError("gate_rule", f"{info.field_name}: {exc}") from exc


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds, written as a number or ``30s``/``10m``/``2h``/``1d``."""


def rule(message: str, key: str | None = None) -> PydanticCustomError:
    """A gate rule broken: ``message`` (the line reported is ``key``'s when given)."""
    return PydanticCustomError("gate_rule", message, {"key": key} if key else {})


class BaseGate(BaseModel):
    """What every gate has: name, severity, min_samples, initial_delay, failure_limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    severity: Severity = "rollback"
    min_samples: int | None = Field(default=None, ge=1, le=MAX_MIN_SAMPLES, strict=True)
    initial_delay: Duration = 0.0
    failure_limit: int = Field(default=1, ge=1, le=1000, strict=True)


class Compared(BaseGate):
    """A gate that may compare the version under evaluation with live (see the module doc)."""

    compare: Literal["live"] | None = None
    max_ratio: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_increase: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_decrease: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)

    BOUNDS: ClassVar[tuple[tuple[str, ...], str]] = ((), "")
    """The gate's own bounds, one of which (or ``compare: live``) it needs, and the words when none is given."""

    @property
    def compared(self) -> bool:
        """Whether the gate compares with live."""
        return self.compare is not None

    @property
    def comparison(self) -> tuple[str, float]:
        """The comparison's key (``max_ratio`` ...) and threshold."""
        key = next(k for k in COMPARE_KEYS if getattr(self, k) is not None)
        return key, float(getattr(self, key))

    def _compared_metric(self) -> str | None:
        """The metric compared (None: this gate's metric cannot compare)."""
        return None

    @model_validator(mode="after")
    def _one_comparison(self) -> Compared:
        given = [k for k in COMPARE_KEYS if getattr(self, k) is not None]
        if self.compare is None:
            if given:
                raise rule(f"{given[0]} without compare: live (add compare: live, or remove {given[0]})", given[0])
            if "confidence" in self.model_fields_set:
                raise rule("confidence without compare: live", "confidence")
            return self
        if not given:
            raise rule("compare: live needs one of max_ratio, max_increase, max_decrease", "compare")
        if len(given) > 1:
            raise rule(f"compare: live takes one of max_ratio, max_increase, max_decrease, not {given}", given[1])
        _material_threshold(given[0], float(getattr(self, given[0])))
        metric = self._compared_metric()
        if metric is None:
            raise rule(
                "compare: live needs a label metric or error_rate (drift is already measured against training)",
                "compare",
            )
        allowed = _allowed_comparisons(metric)
        if given[0] not in allowed:
            better = "higher" if metric in HIGHER_IS_BETTER else "lower"
            raise rule(f"{metric} ({better} is better) compares by {' or '.join(allowed)}, not {given[0]}", given[0])
        return self

    @model_validator(mode="after")
    def _has_a_bound(self) -> Compared:
        fields, words = self.BOUNDS
        if fields and self.compare is None and all(getattr(self, f) is None for f in fields):
            raise rule(words)
        return self


def _material_threshold(key: str, limit: float) -> None:
    """Refuse a threshold an equal candidate would break on noise alone (half of all evaluations)."""
    if key == "max_ratio" and limit <= 1:
        raise rule(f"max_ratio {limit:g} would fail a candidate equal to live; use a ratio above 1 such as 1.2", key)
    if key != "max_ratio" and limit == 0:
        raise rule(f"{key} 0 would fail a candidate equal to live on noise; use a positive margin such as 0.01", key)


def _allowed_comparisons(metric: str) -> tuple[str, ...]:
    if metric in HIGHER_IS_BETTER:
        return ("max_decrease",)
    if metric == "error_rate":
        return ("max_increase",)
    return ("max_ratio", "max_increase")


def within_unit(metric: str, bounds: dict[str, float | None]) -> None:
    """Refuse a ``min``/``max`` outside [0, 1] on a metric that lies in [0, 1] (``accuracy`` ...)."""
    if metric not in BOUNDED_METRICS:
        return
    for key, value in bounds.items():
        if value is not None and not 0 <= value <= 1:
            never = (key == "min") == (value > 1)
            effect = "could never be met" if never else "always holds (it checks nothing)"
            raise rule(f"{metric} lies in [0, 1]; {key} {value:g} {effect}: give a value in [0, 1]", key)
