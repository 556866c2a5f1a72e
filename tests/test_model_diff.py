"""A regression team swaps estimators and tunes gates: ``diff`` must say so.

On scikit-learn's diabetes data, v1.0.0 is a scaled gradient-boosting regressor, v1.1.0 the
same with shallower trees and retuned gates, v2.0.0 a scaled Ridge. Before any model was
loaded, ``diff`` reads the class, steps and hyper-parameters recorded at register time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.analysis.diffreport import Change
from rollbackkit.ops.compare import diff

from .conftest import run_cli

GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "score-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.2},
    ],
}
RETUNED = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "score-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.25},
        {"name": "rmse", "kind": "label_metric", "metric": "rmse", "max": 60, "severity": "warn"},
    ],
}


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.assign(target=y)


@pytest.fixture
def diabetes_repo(project: Path, diabetes: pd.DataFrame) -> Path:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = diabetes.drop(columns="target"), diabetes["target"]

    def scaled(model: object) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("model", model)]).fit(X, y)

    registry = Registry(project)
    deep = scaled(GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0))
    shallow = scaled(GradientBoostingRegressor(n_estimators=30, max_depth=2, random_state=0))
    registry.register("diabetes", deep, diabetes, target="target", gates=GATES, version="v1.0.0")
    registry.register("diabetes", shallow, diabetes, target="target", gates=RETUNED, version="v1.1.0")
    registry.register("diabetes", scaled(Ridge(alpha=0.5)), diabetes, target="target", gates=RETUNED, version="v2.0.0")
    return project


def test_a_hyper_parameter_and_retuned_gates_show_in_the_diff(diabetes_repo: Path) -> None:
    result = diff("diabetes@v1.0.0", "diabetes@v1.1.0", repo=diabetes_repo)
    assert result.model.params == [Change("model__max_depth", "value", 3, 2)]
    assert result.model.steps == [] and result.model.type is None
    assert result.model.size == [] and result.model.flavor is None  # 30 trees each, both scikit-learn
    text = result.to_text()
    assert "~ model param model__max_depth: 3 -> 2" in text
    assert "~ gate changed: score-drift max 0.2 -> 0.25" in text
    assert "+ gate added: rmse (label_metric rmse <= 60, warn)" in text
    assert "None ->" not in text and "errors" not in text  # unchanged gates say nothing
    assert [(g.name, g.change) for g in result.gates] == [("score-drift", "changed"), ("rmse", "added")]

    backward = diff("diabetes@v1.1.0", "diabetes@v1.0.0", repo=diabetes_repo)
    assert "- gate removed: rmse (label_metric rmse <= 60, warn)" in backward.to_text()
    assert backward.gates == [g.flipped() for g in result.gates]
    assert diff("diabetes@v1.1.0", "diabetes@v1.1.0", repo=diabetes_repo).empty


def test_swapping_gradient_boosting_for_ridge_is_a_model_change(diabetes_repo: Path) -> None:
    result = diff("diabetes@v1.1.0", "diabetes@v2.0.0", repo=diabetes_repo)
    assert not result.empty
    assert result.features.empty and result.gates == [] and result.serving == []
    assert result.model.steps == [Change("model", "class", "GradientBoostingRegressor", "Ridge")]
    assert result.model.params == []  # Ridge's own parameters are told by its step line; the scaler is unchanged
    assert result.model.size == [Change("trees", "size", 30, 0)]
    assert "~ model step model: GradientBoostingRegressor -> Ridge" in result.to_text()
    assert "~ model trees: 30 -> 0" in result.to_text()

    cli = run_cli("diff", "diabetes@v1.1.0", "diabetes@v2.0.0", cwd=diabetes_repo)
    assert cli.returncode == 0, cli.stderr
    assert "no differences" not in cli.stdout
    assert "model step model: GradientBoostingRegressor -> Ridge" in cli.stdout
    body = json.loads(run_cli("diff", "diabetes@v2.0.0", "diabetes@v1.1.0", "--json", cwd=diabetes_repo).stdout)
    assert body["model"]["steps"] == [
        {"name": "model", "field": "class", "from": "Ridge", "to": "GradientBoostingRegressor"}
    ]


def test_an_estimator_swap_without_a_pipeline_names_both_classes(project: Path, diabetes: pd.DataFrame) -> None:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge

    X, y = diabetes.drop(columns="target"), diabetes["target"]
    registry = Registry(project)
    registry.register(
        "bare", GradientBoostingRegressor(n_estimators=10).fit(X, y), diabetes, target="target", version="v1.0.0"
    )
    registry.register("bare", Ridge().fit(X, y), diabetes, target="target", version="v1.1.0")
    result = diff("bare@v1.0.0", "bare@v1.1.0", repo=project)
    text = result.to_text()
    assert "~ model: GradientBoostingRegressor -> Ridge" in text
    assert "model param" not in text  # 20 boosting parameters are not listed one by one
