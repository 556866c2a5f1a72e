"""What register checks about a model's answers before anything is stored.

Run on the training and reference rows, with the model loaded back from the stored bytes:
which columns may be missing at predict (:func:`null_acceptance`), whether numbered
classes follow the sorted labels (:func:`check_label_order`) or are whole numbers of an
integer target (:func:`integer_classes`), and whether class probabilities are
probabilities (:func:`check_probabilities`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS
from rollbackkit.bundle.flavors.base import Scorer
from rollbackkit.errors import InvalidInput

NULL_PROBE_ROWS = 8
NULL_PROBE_MAX_COLUMNS = 256
LABEL_CHECK_ROWS = 2000


def null_acceptance(score: Callable[[pd.DataFrame], Any], sample: pd.DataFrame) -> dict[str, bool] | None:
    """Per column of ``sample``: does ``score`` still work when that column is missing?

    Working means scoring without an error and answering finite values: a graph that
    passes NaN through gives NaN probabilities (and a label picked from them), which is
    not taking a missing value. One call with every column blanked settles the common
    cases (a model that takes NaN everywhere); otherwise each column is tried alone, up to
    ``NULL_PROBE_MAX_COLUMNS`` columns (None beyond: not recorded). Missing values are
    made the way a live frame holds them (``Series.where``: NaN, ``pd.NA`` or NaT for the
    column's dtype).
    """
    import warnings

    def scores(columns: list[str]) -> bool:
        frame = sample.copy()
        for name in columns:
            column = by_name[name]  # the frame's own label (an MLflow example numbers its columns 0..N-1)
            frame[column] = frame[column].where(pd.Series(False, index=frame.index))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                answer = score(frame)
        except USER_CODE_ERRORS:  # preprocess() may call sys.exit(); _apply reports it
            return False
        return _finite(answer)

    by_name = {str(c): c for c in sample.columns}
    names = list(by_name)
    if sample.empty or not scores([]):  # the probe must fail for the missing values, not the sample
        return None
    if scores(names):
        return dict.fromkeys(names, True)
    if len(names) > NULL_PROBE_MAX_COLUMNS:
        return None
    return {name: scores([name]) for name in names}


def integer_classes(classes: list[Any] | None, target: pd.Series) -> list[Any] | None:
    """Whole-number float classes as integers when the target holds integers (LightGBM reads an
    ``Int64`` target as floats: its answers would be ``10.0`` and its columns ``proba_10.0``)."""
    if not classes or not pd.api.types.is_integer_dtype(target.dtype):
        return None
    if not all(isinstance(c, float) and c.is_integer() for c in classes):
        return None
    return [int(c) for c in classes]


def check_probabilities(outputs: pd.DataFrame) -> None:
    """Refuse class probabilities outside [0, 1] or rows that do not sum to 1 (on the reference)."""
    proba = outputs[[c for c in outputs.columns if str(c).startswith("proba_")]].to_numpy(dtype="float64")
    rows = proba[np.isfinite(proba).all(axis=1)] if proba.size else proba
    if rows.size == 0:
        return
    sums = rows.sum(axis=1)
    if (rows < -1e-6).any() or (rows > 1 + 1e-6).any() or (np.abs(sums - 1.0) > 1e-3).any():
        worst = float(sums[np.abs(sums - 1.0).argmax()])
        raise InvalidInput(
            "The model gives class probabilities that are not probabilities on the reference data "
            f"(a row sums to {worst:.4g}, or a value lies outside [0, 1]).",
            "Return one probability per class in CLASSES order, each row summing to 1.",
        )


def with_scored_nulls(
    accepts: dict[str, bool] | None, inputs: pd.DataFrame, outputs: pd.DataFrame
) -> dict[str, bool] | None:
    """``accepts`` with every column the reference scored missing values in (finite answers) as accepting them.

    The probe blanks a whole column, which some libraries cannot read (XGBoost, a category
    column with no category left); rows the reference itself scored settle the question.
    """
    if accepts is None:
        return None
    out = dict(accepts)
    for column in inputs.columns:
        missing = inputs[column].isna().to_numpy()
        if missing.any() and not out.get(str(column), True) and _finite(outputs[missing]):
            out[str(column)] = True
    return out


def _finite(answer: Any) -> bool:
    """Whether a model's output frame holds no missing and no infinite value."""
    if not isinstance(answer, pd.DataFrame):
        return True
    numbers = answer.select_dtypes(include="number")
    finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan)).all()
    return bool(finite) and not answer.isna().to_numpy().any()


def check_label_order(scorer: Scorer, features: pd.DataFrame, target: pd.Series, labels: list[Any]) -> None:
    """Refuse to name a model's classes ``0..C-1`` by the sorted labels when its own answers disagree.

    Class ``i`` is taken to be the ``i``-th label in sorted order (``LabelEncoder``); labels
    encoded in another order (``pd.factorize``) would answer the wrong names silently. On up
    to ``LABEL_CHECK_ROWS`` training rows, the label most often true where the model answers
    ``i`` must be ``labels[i]`` for every class it answers.
    """
    rows = features.index[: min(LABEL_CHECK_ROWS, len(features))]
    answered = scorer.score(features.loc[rows])["prediction"].to_numpy()
    truth = target.loc[rows].to_numpy()
    for i, label in enumerate(labels):
        hits = truth[(answered == i) & pd.notna(truth)]
        if len(hits) == 0:
            continue
        values, counts = np.unique(hits.astype(str), return_counts=True)
        mostly = str(values[counts.argmax()])
        if mostly != str(label):
            raise InvalidInput(
                f"The model numbers its classes 0..{len(labels) - 1}, but where it answers {i} the training "
                f"labels are mostly {mostly!r}, not {str(label)!r} (the {i}-th label in sorted order).",
                "Encode the labels with sklearn's LabelEncoder (sorted order) before training, or register a model "
                "that records its classes (a scikit-learn style wrapper).",
            )
