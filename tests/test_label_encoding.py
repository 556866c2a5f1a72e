"""A model that numbers its classes 0..C-1 answers the training labels, in the order they were encoded.

XGBoost trains on integer classes and an ONNX graph may carry none: class ``i`` is then the
``i``-th label in sorted order (``LabelEncoder``). A team that encoded the labels another way
(``pd.factorize``, in order of appearance) must be told at register, not answered with swapped
names in production.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.errors import InvalidInput


def _labelled() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame[list(data.feature_names[:5])].copy()
    frame["diagnosis"] = np.asarray(data.target_names)[data.target.to_numpy()]  # 'malignant', 'benign'
    frame = frame.sample(frac=1.0, random_state=3)
    first = frame.index[frame["diagnosis"] == "malignant"][0]  # appears first, sorts last
    return pd.concat([frame.loc[[first]], frame.drop(index=first)]).reset_index(drop=True)


def _booster(frame: pd.DataFrame, codes: np.ndarray) -> object:
    import xgboost as xgb

    features = frame.drop(columns="diagnosis")
    matrix = xgb.DMatrix(features, label=codes)
    return xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, matrix, num_boost_round=20)


def test_labels_encoded_in_sorted_order_come_back_as_the_labels(project: Path) -> None:
    frame = _labelled()
    codes = np.searchsorted(np.sort(frame["diagnosis"].unique()), frame["diagnosis"])  # LabelEncoder's order
    registry = Registry(project)
    registry.register("cancer", _booster(frame, codes), frame, target="diagnosis", version="v1.0.0")
    answers = registry.load("cancer@v1.0.0").predict(frame.drop(columns="diagnosis").head(200))
    assert set(answers["prediction"]) <= {"benign", "malignant"}
    assert (answers["prediction"].to_numpy() == frame["diagnosis"].head(200).to_numpy()).mean() > 0.85


def test_labels_encoded_in_another_order_are_refused_at_register(project: Path) -> None:
    frame = _labelled()
    codes, uniques = pd.factorize(frame["diagnosis"])
    assert list(uniques) != sorted(uniques)  # the data starts with a label that sorts last
    with pytest.raises(InvalidInput, match="LabelEncoder"):
        Registry(project).register("cancer", _booster(frame, codes), frame, target="diagnosis", version="v1.0.0")
    assert Registry(project).versions("cancer") == []
