"""Feature and output schema: inferred from a training frame and an estimator at register time.

``schema.json`` describes what a version was trained on: each input feature's logical dtype,
nullability and domain (numeric range and quantiles, or the category set), the estimator's
own view of its inputs (``feature_names_in_``, ``n_features_in_``), and the output contract
that downstream consumers receive.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

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
    the other hyper-parameters (``get_params(deep=True)``) as JSON scalars or short text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    feature_names_in: list[str] | None = None
    n_features_in: int | None = None
    steps: list[str] | None = None
    params: dict[str, str | int | float | bool | None] | None = None


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
    def from_json(cls, text: str | bytes) -> Schema:
        """Parse ``schema.json``."""
        return cls.model_validate_json(text)


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


def infer_estimator_view(model: Any) -> EstimatorView:
    """Read ``feature_names_in_`` / ``n_features_in_``, the steps and the hyper-parameters."""
    names = getattr(model, "feature_names_in_", None)
    n_in = getattr(model, "n_features_in_", None)
    steps, params = model_structure(model)
    return EstimatorView(
        type=_qualified(model),
        feature_names_in=[str(n) for n in names] if names is not None else None,
        n_features_in=int(n_in) if n_in is not None else None,
        steps=steps,
        params=params,
    )


def model_structure(model: Any) -> tuple[list[str] | None, dict[str, Any] | None]:
    """Every estimator inside ``model`` as ``path: Class``, and its other parameters.

    Works on anything with scikit-learn's ``get_params``; returns ``(None, None)`` otherwise.
    Lists of named estimators (``steps``, ``transformers``) are not parameters of their
    own: their estimators appear as steps, a ``ColumnTransformer``'s column lists as
    ``PATH.columns[NAME]``.
    """
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return None, None
    try:
        deep: dict[str, Any] = get_params(deep=True)
    except Exception:  # a third-party estimator with a broken get_params: record the type only
        return None, None
    steps = [type(model).__name__]
    params: dict[str, Any] = {}
    for key, value in deep.items():
        if _is_estimator(value):
            steps.append(f"{key}: {type(value).__name__}")
        elif isinstance(value, list | tuple) and value and all(_is_named_estimator(v) for v in value):
            prefix = key.rsplit("__", 1)[0] + "__" if "__" in key else ""
            for item in value:
                if isinstance(item[1], str):  # "drop" / "passthrough" holds a step's place
                    steps.append(f"{prefix}{item[0]}: {item[1]}")
                if len(item) >= 3:
                    params[f"{key}.columns[{item[0]}]"] = _param_value(item[2])
        else:
            params[key] = _param_value(value)
    return steps, params


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _is_named_estimator(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) >= 2
        and isinstance(value[0], str)
        and (_is_estimator(value[1]) or value[1] in ("drop", "passthrough"))
    )


def _param_value(value: Any, limit: int = 200) -> str | int | float | bool | None:
    """A JSON scalar as is (finite floats only), anything else as short text."""
    if isinstance(value, np.generic):
        value = value.item()
    text: Any
    if value is None or isinstance(value, bool | int | str):
        text = value
    elif isinstance(value, float) and np.isfinite(value):
        return value
    elif isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        text = getattr(value, "__qualname__", repr(value))
    else:
        text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _qualified(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def output_frame(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """Score ``features`` into the standard output frame.

    Classifiers give ``prediction`` (the label) plus ``proba_<class>`` per class when the
    estimator has ``predict_proba``; regressors give ``prediction``. A scikit-learn
    ``Pipeline`` transforms once and both calls go to its final step: exactly what
    ``Pipeline.predict``/``predict_proba`` compute, at half the cost.
    """
    classes = getattr(model, "classes_", None)
    wants_proba = classes is not None and hasattr(model, "predict_proba")
    final, inputs = model, features
    steps = getattr(model, "steps", None)
    if wants_proba and isinstance(steps, list) and len(steps) > 1 and hasattr(model, "__getitem__"):
        final, inputs = steps[-1][1], model[:-1].transform(features)
    prediction = final.predict(inputs)
    out = pd.DataFrame({"prediction": prediction}, index=features.index)
    if wants_proba and classes is not None:
        proba = np.asarray(final.predict_proba(inputs), dtype="float64")
        for i, cls in enumerate(classes):
            out[f"proba_{cls}"] = proba[:, i]
    return out


def infer_output(model: Any, outputs: pd.DataFrame) -> OutputContract:
    """Describe the output contract from a scored frame."""
    classes = getattr(model, "classes_", None)
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
    model: Any,
    outputs: pd.DataFrame,
    target: str | None = None,
    accepts_null: dict[str, bool] | None = None,
) -> Schema:
    """Build the schema of a version from its raw training inputs, model and outputs.

    Args:
        inputs: Raw training inputs.
        model: The fitted estimator.
        outputs: Scored reference outputs.
        target: The label column's name.
        accepts_null: Per feature, whether the version scores a missing value (see
            :func:`rollbackkit.registry.builder.null_acceptance`); None when not probed.
    """
    features = infer_features(inputs)
    if accepts_null is not None:
        features = [f.model_copy(update={"accepts_null": accepts_null.get(f.name)}) for f in features]
    return Schema(
        features=features,
        estimator=infer_estimator_view(model),
        output=infer_output(model, outputs),
        target=target,
        n_rows=len(inputs),
    )
