"""Label metrics: how right a version was, once ground truth arrived.

Classifiers: ``accuracy``, ``balanced_accuracy``, ``f1`` (two classes: the last class is
positive; more: macro over the classes seen), ``roc_auc`` (``auc``; one-vs-rest macro for
more than two classes) and ``log_loss`` (from the ``proba_<class>`` columns). Regressors:
``mae``, ``rmse`` and ``mape`` (rows labelled 0 have no percentage error: they are left out
and counted). Classes compare as text (:func:`~rollbackkit.analysis.series.as_labels`), so
``True``, ``"True"``; ``1``, ``1.0`` and ``"1"`` are one class each.

Only rows old enough for their labels to have arrived are eligible (:func:`eligible`,
``label_delay``). Metrics are computed on :class:`Labelled` arrays, so a bootstrap can
resample them cheaply (:mod:`rollbackkit.analysis.comparison`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.gatebase import CLASS_METRICS
from rollbackkit.analysis.gateresult import Insufficient
from rollbackkit.analysis.series import as_labels

if TYPE_CHECKING:
    from rollbackkit.bundle.model import BundleDescription

NUMBER_METRICS = frozenset({"mae", "rmse", "mape"})


@dataclass(frozen=True)
class Labelled:
    """The labelled rows as arrays, cheap to resample.

    Attributes:
        truth: Class codes (an index into ``names``) or numbers.
        prediction: Likewise.
        proba: The class probabilities, one column per class of the contract (or None).
        classes: How many classes the contract has (codes ``0 .. classes - 1``; later codes
            are labels or predictions outside it).
        names: Each code's class text.
    """

    truth: np.ndarray
    prediction: np.ndarray
    proba: np.ndarray | None
    classes: int = 0
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.truth)

    def take(self, index: np.ndarray) -> Labelled:
        """The rows at ``index`` (a resample)."""
        proba = self.proba[index] if self.proba is not None else None
        return Labelled(self.truth[index], self.prediction[index], proba, self.classes, self.names)


def eligible(frame: pd.DataFrame, label_delay: float | None, now: datetime) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows old enough to have labels (``time <= now - label_delay``) and notes for the evidence
    (``too_recent``; ``no_time``: rows whose time is missing or does not parse, never eligible)."""
    if label_delay is None:
        return frame, {}
    if "time" not in frame.columns:
        return frame, {"label_delay": "not applied: the window has no time column"}
    times = pd.to_datetime(frame["time"], utc=True, errors="coerce")
    cutoff = pd.Timestamp(now).tz_localize("UTC") if pd.Timestamp(now).tzinfo is None else pd.Timestamp(now)
    keep = (times <= cutoff - timedelta(seconds=label_delay)).to_numpy(dtype=bool)
    no_time = times.isna().to_numpy(dtype=bool)  # a time that does not parse is bad data, not young data
    notes = {"too_recent": int((~keep & ~no_time).sum())}
    return frame[keep], notes | ({"no_time": int(no_time.sum())} if no_time.any() else {})


def labelled(
    frame: pd.DataFrame, bundle: BundleDescription, label: str, metric: str
) -> tuple[Labelled, dict[str, Any]]:
    """The labelled rows of ``frame`` as :class:`Labelled` for ``metric``, and notes for the evidence.

    Raises:
        Insufficient: the rows cannot be measured so (why, in words).
    """
    output = bundle.schema.output
    if metric in CLASS_METRICS:
        if output.kind != "classification":
            raise Insufficient(f"{metric} needs a classifier; use mae, rmse or mape")
        classes = [str(c) for c in (output.classes or [])]
        truth, truth_texts = _coded(frame[label])
        prediction, predicted_texts = _coded(frame["prediction"])
        if not classes:
            classes = sorted({*truth_texts, *predicted_texts} - {None})
        names = classes + sorted({*truth_texts, *predicted_texts} - set(classes) - {None})
        index = {name: i for i, name in enumerate(names)}
        codes = [
            np.array([index.get(text, -1) for text in texts] + [-1], dtype=np.int64)[values]
            for values, texts in ((truth, truth_texts), (prediction, predicted_texts))
        ]
        return Labelled(codes[0], codes[1], _proba(frame, classes, metric), len(classes), tuple(names)), {}
    try:
        truth = pd.to_numeric(frame[label], errors="raise").to_numpy(dtype="float64")
        prediction = pd.to_numeric(frame["prediction"], errors="raise").to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise Insufficient(f"{metric} needs numeric predictions and labels ({exc}); use accuracy or f1") from exc
    notes: dict[str, Any] = {}
    if metric == "mape":
        zero = truth == 0
        if zero.all():
            raise Insufficient(f"every one of {len(truth)} labels is 0: MAPE is undefined there")
        if zero.any():
            notes["zero_labels_left_out"] = int(zero.sum())
            truth, prediction = truth[~zero], prediction[~zero]
    return Labelled(truth, prediction, None), notes


def _coded(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``values`` and each code's class text (missing: code -1), in one pass over the rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, as_labels(pd.Series(uniques, dtype=object)).tolist()


def _proba(frame: pd.DataFrame, classes: list[str], metric: str) -> np.ndarray | None:
    columns = [f"proba_{c}" for c in classes]
    if all(c in frame.columns for c in columns):
        return frame[columns].to_numpy(dtype="float64")
    if metric in ("roc_auc", "auc", "log_loss"):
        missing = [c for c in columns if c not in frame.columns]
        raise Insufficient(f"{metric} needs the class probabilities; the window has no {missing[0]}")
    return None


def value(metric: str, data: Labelled) -> float:
    """``metric`` over the labelled rows.

    Raises:
        Insufficient: the metric is undefined on these rows (one class only for AUC, no rows).
    """
    if len(data) == 0:
        raise Insufficient("no labelled rows")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(_METRICS[metric](data))


def _accuracy(d: Labelled) -> float:
    return float(np.mean(d.truth == d.prediction))


def _balanced_accuracy(d: Labelled) -> float:
    seen = np.unique(d.truth)
    right = np.bincount(d.truth[d.truth == d.prediction], minlength=len(d.names))
    total = np.bincount(d.truth, minlength=len(d.names))
    return float(np.mean(right[seen] / total[seen]))


def _f1(d: Labelled) -> float:
    if d.classes == 2:
        return _f1_of(d, 1)
    seen = np.union1d(np.unique(d.truth), np.unique(d.prediction[d.prediction >= 0]))
    return float(np.mean([_f1_of(d, int(c)) for c in seen]))


def _f1_of(d: Labelled, positive: int) -> float:
    truth, predicted = d.truth == positive, d.prediction == positive
    tp = int(np.count_nonzero(truth & predicted))
    denominator = int(np.count_nonzero(truth)) + int(np.count_nonzero(predicted))
    return 2 * tp / denominator if denominator else 0.0


def _roc_auc(d: Labelled) -> float:
    from sklearn.metrics import roc_auc_score

    assert d.proba is not None
    if d.classes > 2:
        if len(np.unique(d.truth)) < d.classes:
            raise Insufficient(f"roc_auc over {d.classes} classes needs every class among the labels")
        try:
            return float(roc_auc_score(d.truth, d.proba, multi_class="ovr", labels=list(range(d.classes))))
        except ValueError as exc:
            raise Insufficient(f"roc_auc over {d.classes} classes: {exc}") from exc
    positive = d.truth == d.classes - 1
    if positive.all() or not positive.any():
        raise Insufficient("roc_auc needs both classes among the labels")
    return float(roc_auc_score(positive, d.proba[:, -1]))


def _log_loss(d: Labelled) -> float:
    assert d.proba is not None
    outside = d.truth >= d.classes
    if outside.any():
        name = d.names[int(d.truth[outside][0])]
        raise Insufficient(f"log_loss: label {name!r} is not one of the classes {list(d.names[: d.classes])}")
    proba = d.proba / d.proba.sum(axis=1, keepdims=True)
    eps = np.finfo(proba.dtype).eps
    picked = np.clip(proba[np.arange(len(d)), d.truth], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def _mae(d: Labelled) -> float:
    return float(np.mean(np.abs(d.prediction - d.truth)))


def _rmse(d: Labelled) -> float:
    return float(np.sqrt(np.mean((d.prediction - d.truth) ** 2)))


def _mape(d: Labelled) -> float:
    return float(np.mean(np.abs(d.prediction - d.truth) / np.abs(d.truth)))


_METRICS = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1,
    "roc_auc": _roc_auc,
    "auc": _roc_auc,
    "log_loss": _log_loss,
    "mae": _mae,
    "rmse": _rmse,
    "mape": _mape,
}
