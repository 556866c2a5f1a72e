"""Feature and output schema: inferred from a training frame and an estimator at register time.

``schema.json`` describes what a version was trained on: each input feature's logical dtype,
nullability and domain (numeric range and quantiles, or the category set), the estimator's
own view of its inputs (its recorded feature names), and the output contract
that downstream consumers receive.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from rollbackkit.bundle.flavors.base import Scorer

LogicalType = Literal["float", "int", "bool", "category", "string", "datetime", "other"]
OutputKind = Literal["classification", "regression"]
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_CATEGORIES = 1000
QUANTILE_SAMPLE = 200_000


class Feature(BaseModel):
    """One input column as seen in the training data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    position: int
    dtype: LogicalType
    pandas_dtype: str
    nullable: bool
    null_fraction: float
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] | None = None
    categories: list[str] | None = None
    accepts_null: bool | None = None  # can the version score a missing value here? None: not recorded


class EstimatorView(BaseModel):
    """What the fitted estimator itself says about its inputs, and how it is built.

    ``steps`` and ``params`` are recorded at register time so versions can be diffed
    without unpickling a model: ``steps`` lists every estimator inside the model as
    ``path: Class`` (``""`` is the model itself, ``model__final`` a nested one), ``params``
    the other hyper-parameters (``get_params(deep=True)``, or the library's own) as JSON
    scalars or short text; ``flavor`` names the model library's flavor and ``size`` counts
    what tells two models apart at a glance (``trees``, ``nodes``, ``ops``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    flavor: str = "sklearn"
    feature_names_in: list[str] | None = None
    n_features_in: int | None = None
    steps: list[str] | None = None
    params: dict[str, str | int | float | bool | None] | None = None
    size: dict[str, int] = Field(default_factory=dict)


class OutputContract(BaseModel):
    """What a version returns to its consumers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OutputKind
    columns: list[str]
    dtypes: dict[str, str]
    classes: list[str] | None = None
    primary: str  # the column drift and gates watch by default


class Schema(BaseModel):
    """The content of ``schema.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: list[Feature]
    estimator: EstimatorView
    output: OutputContract
    target: str | None = None
    n_rows: int

    @property
    def feature_names(self) -> list[str]:
        """Input column names in training order."""
        return [f.name for f in self.features]

    def to_json(self) -> str:
        """Serialise to the canonical ``schema.json`` text."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "schema.json") -> Schema:
        """Parse ``schema.json``, a content part: a field this release does not know refuses it in one line.

        Raises:
            IntegrityError: Unknown fields (named; a newer rollbackkit wrote it?) or anything malformed.
        """
        from pydantic import ValidationError

        from rollbackkit.bundle.forward import refusal

        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise refusal(exc, where) from exc


def logical_type(series: pd.Series) -> LogicalType:
    """Map a pandas dtype to rollbackkit's logical type."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "string"
    return "other"


def infer_feature(series: pd.Series, position: int) -> Feature:
    """Profile one column: dtype, nulls, numeric domain or category set.

    Min, max and null counts are exact; quantiles come from a deterministic sample of at
    most ``QUANTILE_SAMPLE`` rows, so profiling 1M x 1,000 frames stays in seconds.
    """
    kind = logical_type(series)
    n = len(series)
    nulls = int(series.isna().sum())
    fields: dict[str, Any] = {}
    if kind in ("float", "int"):
        values = series.to_numpy() if series.dtype == np.float64 else series.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
        if values.size:
            sample = values[:: max(1, values.size // QUANTILE_SAMPLE)]
            qs = np.quantile(sample, QUANTILES)
            fields = {
                "min": float(values.min()),
                "max": float(values.max()),
                "quantiles": {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
            }
    elif kind in ("category", "string", "bool"):
        uniques = series.dropna().unique()
        fields = {"categories": sorted(str(v) for v in uniques)[:MAX_CATEGORIES]}
    return Feature(
        name=str(series.name),
        position=position,
        dtype=kind,
        pandas_dtype=str(series.dtype),
        nullable=nulls > 0,
        null_fraction=nulls / n if n else 0.0,
        **fields,
    )


def infer_features(frame: pd.DataFrame) -> list[Feature]:
    """Profile every column of a frame, in order."""
    return [infer_feature(frame[col], i) for i, col in enumerate(frame.columns)]


def infer_estimator_view(scorer: Scorer) -> EstimatorView:
    """What the loaded model says about itself: type, flavor, input names, steps, parameters, size."""
    structure = scorer.structure()
    return EstimatorView(
        type=scorer.type_name,
        flavor=scorer.flavor,
        feature_names_in=scorer.input_names(),
        n_features_in=scorer.n_inputs(),
        steps=structure.steps,
        params=structure.params,
        size=structure.size,
    )


def infer_output(scorer: Scorer, outputs: pd.DataFrame) -> OutputContract:
    """Describe the output contract from a scored frame."""
    classes = scorer.classes
    kind: OutputKind = "classification" if classes is not None else "regression"
    columns = [str(c) for c in outputs.columns]
    proba_cols = [c for c in columns if c.startswith("proba_")]
    # Watch the positive-class probability of a binary classifier, else the prediction.
    primary = proba_cols[-1] if kind == "classification" and len(proba_cols) == 2 else "prediction"
    return OutputContract(
        kind=kind,
        columns=columns,
        dtypes={str(c): str(t) for c, t in outputs.dtypes.items()},
        classes=[str(c) for c in classes] if classes is not None else None,
        primary=primary,
    )


def infer_schema(
    inputs: pd.DataFrame,
    scorer: Scorer,
    outputs: pd.DataFrame,
    target: str | None = None,
    accepts_null: dict[str, bool] | None = None,
) -> Schema:
    """Build the schema of a version from its raw training inputs, model and outputs.

    Args:
        inputs: Raw training inputs.
        scorer: The loaded model.
        outputs: Scored reference outputs.
        target: The label column's name.
        accepts_null: Per feature, whether the version scores a missing value (see
            :func:`rollbackkit.registry.answers.null_acceptance`); None when not probed.
    """
    features = infer_features(inputs)
    if accepts_null is not None:
        features = [f.model_copy(update={"accepts_null": accepts_null.get(f.name)}) for f in features]
    return Schema(
        features=features,
        estimator=infer_estimator_view(scorer),
        output=infer_output(scorer, outputs),
        target=target,
        n_rows=len(inputs),
    )
