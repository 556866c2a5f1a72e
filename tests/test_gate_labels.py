"""Ground truth that arrives later: label metrics, overall and per slice, on real datasets.

Every metric is checked against scikit-learn's on the rows that have labels: a binary
classifier with integer classes (breast cancer), a three-class one with string classes
(iris), one with boolean classes and a regressor (diabetes). Labels arrive late and not for
every row; a gate says how many of the rows old enough to have a label have one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets, metrics
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rollbackkit import Registry
from rollbackkit.analysis.gates import GateReport, evaluate

from .conftest import new_repo

CLASS_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "auc", "log_loss")
NUMBER_METRICS = ("mae", "rmse", "mape")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def metric_gates(names: tuple[str, ...], **extra: object) -> dict[str, object]:
    """One label_metric gate per metric with a bound every model meets (the observed value is what we check)."""
    bound = {"min": 0.0} if names == CLASS_METRICS else {"max": 1e12}
    return {
        "min_samples": 20,
        "gates": [{"name": m, "kind": "label_metric", "metric": m, **bound, **extra} for m in names],
    }


def frame_of(loader: object, target: str = "target") -> pd.DataFrame:
    X, y = loader(return_X_y=True, as_frame=True)  # type: ignore[operator]
    X.columns = [c.replace(" ", "_").replace("(", "").replace(")", "") for c in X.columns]
    return X.assign(**{target: y})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One project holding four versions: int, string and bool classes, and a regressor."""
    root = new_repo(tmp_path_factory.mktemp("labels") / "project")
    Registry.init(root)
    registry = Registry(root)
    cancer = frame_of(datasets.load_breast_cancer)
    features = [c for c in cancer.columns if c != "target"]
    rng = np.random.default_rng(0)
    cancer["site"] = rng.choice(["north", "south", "east", "west"], len(cancer), p=[0.3, 0.3, 0.3, 0.1])
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), features)], remainder="drop"), LogisticRegression(max_iter=500)
    )
    model.fit(cancer.drop(columns="target"), cancer["target"])
    gates = metric_gates(CLASS_METRICS)
    gates["gates"] += [  # type: ignore[operator]
        {"name": "accuracy-by-site", "kind": "slice", "by": "site", "metric": "accuracy", "min": 0.8},
    ]
    registry.register("cancer", model, cancer, target="target", gates=gates, version="v1.0.0")
    iris = frame_of(datasets.load_iris)
    iris["target"] = np.array(["setosa", "versicolor", "virginica"])[iris["target"]]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(iris.drop(columns="target"), iris["target"])
    registry.register("iris", model, iris, target="target", gates=metric_gates(CLASS_METRICS), version="v1.0.0")
    flags = cancer.drop(columns="site").assign(target=cancer["target"] == 1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(flags.drop(columns="target"), flags["target"])
    registry.register("flags", model, flags, target="target", gates=metric_gates(CLASS_METRICS), version="v1.0.0")
    diabetes = frame_of(datasets.load_diabetes)
    model = make_pipeline(StandardScaler(), Ridge())
    model.fit(diabetes.drop(columns="target"), diabetes["target"])
    gates = metric_gates(NUMBER_METRICS)
    gates["gates"] += [  # type: ignore[operator]
        {"name": "mae-later", "kind": "label_metric", "metric": "mae", "max": 1e12, "label_delay": "1h"},
    ]
    registry.register("diabetes", model, diabetes, target="target", gates=gates, version="v1.0.0")
    return registry


def served(registry: Registry, name: str, frame: pd.DataFrame, labelled_share: float = 0.8) -> pd.DataFrame:
    """What the log holds once labels arrived for some rows: inputs, outputs, labels (typed values or None)."""
    bundle = registry.load(f"{name}@v1.0.0")
    X = frame.drop(columns="target").reset_index(drop=True)
    outputs = bundle.predict(X).reset_index(drop=True)
    rng = np.random.default_rng(7)
    known = rng.uniform(size=len(X)) < labelled_share
    labels = pd.Series([v if k else None for v, k in zip(frame["target"].tolist(), known, strict=True)], dtype=object)
    times = NOW - pd.to_timedelta(rng.uniform(0, 7200, len(X)), unit="s")
    return pd.concat([X, outputs], axis=1).assign(
        label=labels, latency_ms=rng.gamma(2.0, 4.0, len(X)), error=None, time=times
    )


def observed(report: GateReport) -> dict[str, float | None]:
    return {g.name: g.observed for g in report.gates}


def sklearn_scores(window: pd.DataFrame, classes: list[object]) -> dict[str, float]:
    rows = window[window["label"].notna()]
    truth, predicted = rows["label"].tolist(), rows["prediction"].tolist()
    proba = rows[[f"proba_{c}" for c in classes]].to_numpy()
    binary = len(classes) == 2
    return {
        "accuracy": metrics.accuracy_score(truth, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(truth, predicted),
        "f1": metrics.f1_score(truth, predicted, pos_label=classes[-1])
        if binary
        else metrics.f1_score(truth, predicted, average="macro"),
        "roc_auc": metrics.roc_auc_score([t == classes[-1] for t in truth], proba[:, -1])
        if binary
        else metrics.roc_auc_score(truth, proba, multi_class="ovr", labels=classes),
        "log_loss": metrics.log_loss(truth, proba, labels=classes),
    }


@pytest.mark.parametrize(
    ("name", "loader", "classes"),
    [
        ("cancer", datasets.load_breast_cancer, [0, 1]),
        ("iris", datasets.load_iris, ["setosa", "versicolor", "virginica"]),
        ("flags", datasets.load_breast_cancer, [False, True]),
    ],
)
def test_classifier_label_metrics_match_scikit_learn(
    registry: Registry, name: str, loader: object, classes: list[object]
) -> None:
    frame = frame_of(loader)
    if name == "iris":
        frame["target"] = np.array(classes, dtype=object)[frame["target"]]
    elif name == "flags":
        frame["target"] = (frame["target"] == 1).astype(object)
    else:
        frame["site"] = "north"
    window = served(registry, name, frame)
    assert {type(v) for v in window["label"].dropna()} == {type(classes[0])}  # int, str or bool labels
    report = evaluate(registry.describe(f"{name}@v1.0.0"), window, now=NOW)
    expected = sklearn_scores(window, classes)
    got = observed(report)
    for metric in CLASS_METRICS:
        assert got[metric] == pytest.approx(expected["roc_auc" if metric == "auc" else metric], rel=1e-6), metric
    labelled = int(window["label"].notna().sum())
    gate = next(g for g in report.gates if g.name == "f1")
    assert (gate.evidence["labelled"], gate.evidence["eligible"]) == (labelled, len(window))
    assert f"({labelled} of {len(window)} rows labelled)" in gate.words()


def test_regressor_label_metrics_match_scikit_learn_and_mape_leaves_zero_labels_out(registry: Registry) -> None:
    diabetes = frame_of(datasets.load_diabetes)
    window = served(registry, "diabetes", diabetes)
    rows = window[window["label"].notna()]
    truth, predicted = rows["label"].astype(float), rows["prediction"]
    report = evaluate(registry.describe("diabetes@v1.0.0"), window, now=NOW)
    got = observed(report)
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(truth, predicted))
    assert got["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, predicted)))
    assert got["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(truth, predicted))

    zeroed = window.copy()
    zero_rows = rows.index[:25]
    zeroed.loc[zero_rows, "label"] = 0
    mape = next(g for g in evaluate(registry.describe("diabetes@v1.0.0"), zeroed, now=NOW).gates if g.name == "mape")
    kept = rows.drop(index=zero_rows)
    assert mape.observed == pytest.approx(
        metrics.mean_absolute_percentage_error(kept["label"].astype(float), kept["prediction"])
    )
    assert mape.evidence["zero_labels_left_out"] == 25

    all_zero = window.assign(label=[0 if v is not None else None for v in window["label"]])
    mape = next(g for g in evaluate(registry.describe("diabetes@v1.0.0"), all_zero, now=NOW).gates if g.name == "mape")
    assert mape.status == "insufficient" and "MAPE is undefined" in mape.evidence["reason"]


def test_one_site_collapses_while_the_aggregate_holds(registry: Registry) -> None:
    cancer = frame_of(datasets.load_breast_cancer)
    frame = pd.concat([cancer] * 4, ignore_index=True)
    frame["site"] = np.random.default_rng(3).choice(
        ["north", "south", "east", "west"], len(frame), p=[0.3, 0.3, 0.3, 0.1]
    )
    bundle = registry.describe("cancer@v1.0.0")
    healthy = served(registry, "cancer", frame, labelled_share=1.0)
    west = (healthy["site"] == "west").to_numpy()
    degraded = healthy.assign(label=np.where(west, 1 - healthy["prediction"], healthy["prediction"]).astype(object))
    degraded["label"] = degraded["label"].map(int).astype(object)
    before = {g.name: g for g in evaluate(bundle, healthy, now=NOW).gates}
    after = {g.name: g for g in evaluate(bundle, degraded, now=NOW).gates}
    assert before["accuracy-by-site"].status == "pass"
    assert after["accuracy"].status == "pass" and after["accuracy"].observed > 0.85  # the aggregate holds
    assert after["accuracy-by-site"].status == "fail"
    assert after["accuracy-by-site"].evidence["worst_slice"] == {"site": "west"}
    assert after["accuracy-by-site"].observed == 0.0
    west_rows = int(west.sum())  # the on-call reads which segment broke, and on how many rows
    assert f"in site=west, {west_rows} rows" in after["accuracy-by-site"].words()
    assert "site=west" in evaluate(bundle, degraded, now=NOW).summary()


def test_rows_too_young_for_their_labels_are_not_eligible(registry: Registry) -> None:
    diabetes = frame_of(datasets.load_diabetes).head(200)
    window = served(registry, "diabetes", diabetes, labelled_share=1.0)
    ages = np.r_[np.full(150, 5400.0), np.full(50, 600.0)]  # 150 rows 90 minutes old, 50 rows 10 minutes old
    window["time"] = NOW - pd.to_timedelta(ages, unit="s")
    labels = window["label"].copy()
    labels.iloc[120:150] = None  # 30 old rows never got a label; the young ones did, but are not eligible yet
    window["label"] = labels
    gate = next(
        g for g in evaluate(registry.describe("diabetes@v1.0.0"), window, now=NOW).gates if g.name == "mae-later"
    )
    assert (gate.evidence["labelled"], gate.evidence["eligible"], gate.evidence["too_recent"]) == (120, 150, 50)
    old = window.iloc[:120]
    assert gate.observed == pytest.approx(metrics.mean_absolute_error(old["label"].astype(float), old["prediction"]))
    assert gate.words().endswith("(120 of 150 rows labelled)")

    bundle = registry.describe("diabetes@v1.0.0")
    strict = bundle.gates | {"min_samples": 130}
    report = evaluate(replace(bundle, gates=strict), window, now=NOW)
    short = next(g for g in report.gates if g.name == "mae-later")
    assert short.status == "insufficient" and short.words() == "mae-later: insufficient (120 labelled rows, 130 needed)"
    assert report.decision == "inconclusive" and "mae-later: insufficient (120 labelled rows" in report.summary()


def test_no_labels_yet_is_insufficient_never_a_pass(registry: Registry) -> None:
    iris = frame_of(datasets.load_iris)
    iris["target"] = np.array(["setosa", "versicolor", "virginica"], dtype=object)[iris["target"]]
    window = served(registry, "iris", iris, labelled_share=0.0)
    report = evaluate(registry.describe("iris@v1.0.0"), window, now=NOW)
    assert {g.status for g in report.gates} == {"insufficient"} and report.decision == "inconclusive"
    assert report.gates[0].words() == "accuracy: insufficient (0 labelled rows, 20 needed)"
    unlabelled = window.drop(columns="label")  # an in-memory window: no label column at all
    report = evaluate(registry.describe("iris@v1.0.0"), unlabelled, now=NOW)
    assert "no labels yet" in report.gates[0].evidence["reason"]


def test_a_class_metric_on_a_regressor_is_refused_at_register(registry: Registry) -> None:
    from rollbackkit.errors import InvalidInput

    diabetes = frame_of(datasets.load_diabetes)
    model = make_pipeline(StandardScaler(), Ridge()).fit(diabetes.drop(columns="target"), diabetes["target"])
    gates = {"gates": [{"name": "right", "kind": "label_metric", "metric": "accuracy", "min": 0.9}]}
    with pytest.raises(InvalidInput, match=r"line 4: gate 'right': metric 'accuracy' needs a classifier"):
        registry.register("diabetes", model, diabetes, target="target", gates=gates, version="v1.1.0")
    assert [v.version for v in registry.versions("diabetes")] == ["v1.0.0"]
