"""The prediction log keeps every output's type: string, boolean, integer and float
predictions and per-class probabilities go in and come back as they were, and every step
that reads the log (gates, the watchdog, ``affected``, ``backfill``, log drift) works for a
classifier whose labels are strings.
"""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.serving.predlog.log import PredictionLog

from .terminal import screen

SPECIES = {0: "setosa", 1: "versi color", 2: 'virginica "big"'}  # spaces and quotes in class names
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS_GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "label-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.2},
    ],
}


def iris_frame(n: int, seed: int, *, large_petals: bool = False) -> pd.DataFrame:
    """``n`` flowers resampled from iris with a little noise; species as strings.

    ``large_petals``: every petal measures about 6 x 2.2 cm (within the trained range), so
    the model calls every flower the largest species: the degraded traffic.
    """
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(iris.frame), n)
    frame = iris.data.iloc[picks].reset_index(drop=True)
    frame = frame + rng.normal(0, 0.1, frame.shape)
    if large_petals:
        frame[FEATURES[2:]] = np.array([6.0, 2.2]) + rng.normal(0, 0.1, (n, 2))
    species = iris.target.iloc[picks].map(SPECIES).reset_index(drop=True)
    return frame.assign(species=species.astype(object))


@pytest.fixture
def iris_project(project: Path) -> Path:
    """``iris@v1.0.0`` (logistic regression) serving prod, ``iris@v1.1.0`` (a forest) registered."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rollbackkit.ops.traffic import deploy

    registry = Registry(project)
    train, held_out = iris_frame(600, seed=1), iris_frame(400, seed=2)
    v1 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(train[FEATURES], train["species"])
    v2 = RandomForestClassifier(n_estimators=25, random_state=0).fit(train[FEATURES], train["species"])
    for version, model, gates in (("v1.0.0", v1, None), ("v1.1.0", v2, IRIS_GATES)):
        registry.register(
            "iris", model, train, target="species", version=version, gates=gates, validation_data=held_out
        )
    deploy(project, "iris@v1.0.0", "prod", reason="first release")
    return project


def test_a_string_label_canary_is_logged_rolled_back_and_backfilled(iris_project: Path) -> None:
    from rollbackkit.ops.runbooks import run
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.log_operations import log_drift, log_operation

    registry = Registry(iris_project)
    log = PredictionLog(registry.paths.prediction_log)
    try:
        environment = ServingEnvironment(iris_project, "iris", "prod", log=log)
        environment.start()
        healthy = iris_frame(400, seed=3)[FEATURES]
        for i in range(0, 400, 20):
            environment.predict(healthy.iloc[i : i + 20], key=f"healthy-{i}")
        environment.deploy("v1.1.0", canary=50, reason="try the forest")
        degraded = iris_frame(600, seed=4, large_petals=True)[FEATURES]  # every flower looks like the largest
        for i in range(0, 600, 10):
            environment.predict(degraded.iloc[i : i + 10], key=f"degraded-{i}")
        assert log.write_errors == []

        # The log holds the string labels, typed, and the watchdog evaluates them.
        canary = environment.router.state.slot(environment.router.state.canary)
        assert canary is not None
        window = environment.window(canary)
        assert len(window) >= 100
        assert set(window["prediction"]) <= set(SPECIES.values())
        assert window[f"proba_{SPECIES[2]}"].dtype == "float64"
        result = environment.check_gates()
        assert result is not None, environment.last_report
        failed = {g["name"]: g for g in result["report"]["gates"] if g["status"] == "fail"}
        assert set(failed) == {"label-drift"}
        assert failed["label-drift"]["evidence"]["column"] == "prediction"
        assert environment.router.state.canary is None  # rolled back automatically

        # affected counts the rolled-back version's rows; backfill re-scores them with v1.
        rows = log.affected("iris", "prod", "v1.1.0")
        assert rows["rows"] == rows["quarantined"] == len(window)
        assert rows["sample"][0]["outputs"]["prediction"] in SPECIES.values()
        repaired = log_operation(registry, log, "backfill", "iris", "prod", "v1.1.0")
        assert repaired == {"rescored": rows["rows"], "already_done": 0, "failed": 0}
        corrected = log.production("iris").query("status == 'backfill'")
        assert len(corrected) == rows["rows"] and corrected["primary_output"].isna().all()
        assert log.affected("iris", "prod", "v1.1.0")["backfilled"] == rows["rows"]

        # The incident review's drift: class shares, not a histogram of a cast.
        drift = log_drift(registry, log, "iris", "prod", ["v1.0.0", "v1.1.0"])
        assert drift["v1.1.0"]["kind"] == "categorical" and drift["v1.1.0"]["psi"] > 0.2
        assert drift["v1.1.0"]["bins"] == sorted(SPECIES.values())
        assert math.isclose(sum(drift["v1.0.0"]["current"]), 1.0)
    finally:
        log.close()

    review = run("incident_review", {"name": "iris", "env": "prod"}, repo=iris_project)
    assert (review.status, review.verdict) == ("ok", "reviewed"), review.error
    assert review.results["drift"]["v1.1.0"]["psi"] > 0.2
    assert review.results["rows"]["v1.1.0"]["backfilled"] == rows["rows"]

    # The on-call's screens at 80 columns read string classes as they read the churn demo's ints.
    shown = screen("affected", "iris", "--env", "prod", "--version", "v1.1.0", cwd=iris_project)
    assert shown.returncode == 0 and shown.no_ellipsis(), shown
    assert any(shown.whole(f"prediction={species}") for species in SPECIES.values()), shown
    history = screen("history", "iris", "--env", "prod", cwd=iris_project)
    assert history.returncode == 0 and history.whole("auto-rollback") and history.no_ellipsis(), history
    assert "label-drift psi" in history.stdout and "{" not in history.stdout, history  # plain words
    status = screen("status", "iris", "--env", "prod", cwd=iris_project)
    assert status.returncode == 0 and status.fits(24) and "v1.0.0" in status.stdout, status


LABEL_GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "accuracy", "kind": "label_metric", "metric": "accuracy", "min": 0.8},
        {"name": "auc", "kind": "label_metric", "metric": "auc", "min": 0.9},
        {"name": "garden-accuracy", "kind": "slice", "by": "garden", "metric": "accuracy", "min": 0.8},
        {"name": "label-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.1},
    ],
}


def test_label_gates_compare_string_labels_as_classes(project: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from rollbackkit.analysis.gates import evaluate

    registry = Registry(project)
    train = iris_frame(600, seed=1).assign(garden=np.where(np.arange(600) % 2, "A", "B"))
    petals = ColumnTransformer([("petals", "passthrough", FEATURES)])  # the garden is an input, not used
    model = make_pipeline(petals, LogisticRegression(max_iter=500)).fit(train[[*FEATURES, "garden"]], train["species"])
    registry.register("iris", model, train, target="species", version="v1.0.0", gates=LABEL_GATES)
    bundle = registry.load("iris@v1.0.0")

    flowers = iris_frame(600, seed=5)
    garden = np.where(np.arange(600) < 400, "A", "B")
    labelled = flowers["species"].where(np.arange(600) % 3 > 0)  # a third of the labels not in yet
    scored = flowers[FEATURES].assign(garden=garden)
    window = bundle.predict(scored).assign(garden=garden, label=labelled, latency_ms=2.0, error=None)
    report = evaluate(bundle, window)
    assert report.decision == "pass", report.to_dict()
    assert report.gates[0].evidence["n"] == 400 and report.gates[0].observed > 0.9

    # In garden B the petals look large: the model calls every flower there the largest species.
    grown, in_b = flowers[FEATURES].copy(), garden == "B"
    grown.loc[in_b] = iris_frame(600, seed=5, large_petals=True)[FEATURES].loc[in_b]
    window = bundle.predict(grown.assign(garden=garden)).assign(
        garden=garden, label=labelled, latency_ms=2.0, error=None
    )
    report = evaluate(bundle, window)
    by_name = {g.name: g for g in report.gates}
    assert by_name["garden-accuracy"].status == "fail"
    assert by_name["garden-accuracy"].evidence["worst_slice"] == {"garden": "B"}
    assert by_name["label-drift"].status == "fail", by_name["label-drift"]
    assert by_name["label-drift"].evidence["new_category_share"] == 0


def test_a_boolean_label_classifier_logs_booleans_and_its_label_gates_run(project: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from rollbackkit.analysis.gates import evaluate
    from rollbackkit.ops.traffic import deploy
    from rollbackkit.serving.environment import ServingEnvironment

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    malignant = y == 0  # sklearn codes malignant as 0
    frame = X.assign(malignant=malignant)
    registry = Registry(project)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X.iloc[:400], malignant.iloc[:400])
    gates = {"min_samples": 100, "gates": [g for g in LABEL_GATES["gates"] if g["kind"] == "label_metric"]}
    registry.register(
        "tumour",
        model,
        frame.iloc[:400],
        target="malignant",
        version="v1.0.0",
        gates=gates,
        validation_data=frame.iloc[400:],
    )
    deploy(project, "tumour@v1.0.0", "prod", reason="first release")
    log = PredictionLog(registry.paths.prediction_log)
    try:
        environment = ServingEnvironment(project, "tumour", "prod", log=log)
        environment.start()
        for i in range(0, len(X), 50):
            environment.predict(X.iloc[i : i + 50], key=str(i))
        live = environment.router.state.slot(environment.router.state.live)
        assert live is not None
        window = environment.window(live)
        assert window["prediction"].dtype == bool and window["proba_True"].dtype == "float64"
        assert environment.status()["log"]["write_errors"] == 0
        labels = pd.Series(malignant.to_numpy(), dtype="boolean").where(np.arange(len(X)) % 2 == 0)  # half labelled
        report = evaluate(registry.describe("tumour@v1.0.0"), window.assign(label=labels.to_numpy()))
        assert report.decision == "pass", report.to_dict()
        assert [g.status for g in report.gates] == ["pass", "pass"]
    finally:
        log.close()


def test_requests_the_writer_cannot_store_are_counted_in_its_status(tmp_path: Path) -> None:
    from rollbackkit.serving.predlog.process import LogProcess

    log = LogProcess(tmp_path / "log.duckdb", flush_interval=0.05)
    log.start()
    try:
        log.set_stage("m#prod#1", "m", "prod", "v1.0.0", "production")
        assert log.status()["write_errors"] == 0 and log.status()["last_write_error"] is None
        good = pd.DataFrame({"x": [1.0, 2.0]})
        for request_id, inputs in (("first", good), ("complex", pd.DataFrame({"x": [1 + 2j]})), ("last", good)):
            outputs = pd.DataFrame({"prediction": ["yes"] * len(inputs)})  # one hand-over, one batch
            log.record(_meta("m", request_id), inputs, outputs)
        deadline = time.monotonic() + 15
        while log.status()["write_errors"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = log.status()
        assert status["alive"] and status["dropped"] == 0
        assert status["write_errors"] == 1 and status["unwritten"] == 1
        assert "request complex" in status["last_write_error"] and "complex" in status["last_write_error"].lower()
        stored = log.query("SELECT request_id, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1")
        assert stored.to_dict(orient="list") == {"request_id": ["first", "last"], "n": [2, 2]}  # only it was lost
    finally:
        log.close()


# ----------------------------------------------------------------------------- the round trip
def _meta(name: str, request_id: str, error: str | None = None) -> dict:
    return {
        "request_id": request_id,
        "time": datetime.now(UTC),
        "env": "prod",
        "name": name,
        "version": "v1.0.0",
        "bundle_id": "sha256:x",
        "slot": "blue",
        "deployment": f"{name}#prod#1",
        "latency_ms": 1.0,
        "error": error,
        "primary": "prediction",
    }


EXAMPLES = int(os.environ.get("ROLLBACKKIT_EXAMPLES", "30"))
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)  # any text UTF-8 can carry
PREDICTIONS = {
    "str": (TEXT, "object"),
    "bool": (st.booleans(), "bool"),
    "int64": (st.integers(-(2**63), 2**63 - 1), "int64"),
    "float64": (st.floats(allow_nan=True, allow_infinity=True), "float64"),
    "Int64": (st.none() | st.integers(-(2**63), 2**63 - 1), "Int64"),
    "boolean": (st.none() | st.booleans(), "boolean"),
}


@st.composite
def outputs_frames(draw: st.DrawFn) -> tuple[str, pd.DataFrame]:
    """A classifier's or regressor's outputs: a typed prediction and maybe per-class probabilities."""
    kind = draw(st.sampled_from(sorted(PREDICTIONS)))
    values, dtype = PREDICTIONS[kind]
    n = draw(st.integers(1, 6))
    frame = pd.DataFrame({"prediction": pd.Series(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)})
    for cls in draw(st.lists(TEXT, max_size=3, unique=True)):
        frame[f"proba_{cls}"] = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    return kind, frame


def _same(a: object, b: object) -> bool:
    """Equal values of the same kind: text, boolean, integer or float (NaN equals NaN, -0.0 is not 0.0).

    A missing value (``pd.NA``, None) comes back missing; in a column of nothing but
    missing values there is no type left to give back, so NaN counts as missing there.
    """
    if a is pd.NA or a is None:
        return b is pd.NA or b is None or (isinstance(b, float) and math.isnan(b))
    for kind in (str, bool | np.bool_):
        if isinstance(a, kind) or isinstance(b, kind):
            return isinstance(a, kind) and isinstance(b, kind) and a == b
    if isinstance(a, int | np.integer) or isinstance(b, int | np.integer):
        return isinstance(a, int | np.integer) and isinstance(b, int | np.integer) and int(a) == int(b)
    return isinstance(b, float | np.floating) and repr(float(a)) == repr(float(b))


def test_outputs_come_back_from_the_log_equal_and_typed(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.duckdb")  # one file; each example logs as its own model

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(requests=st.lists(outputs_frames(), min_size=1, max_size=3), failed_too=st.booleans())
    def round_trip(requests: list[tuple[str, pd.DataFrame]], failed_too: bool) -> None:
        kind = requests[0][0]  # one model: every request has the same output types
        requests = [(k, f) for k, f in requests if k == kind and list(f.columns) == list(requests[0][1].columns)]
        name = f"m{time.monotonic_ns()}"
        log.set_stage(f"{name}#prod#1", name, "prod", "v1.0.0", "production")
        sent = []
        for i, (_, outputs) in enumerate(requests):
            inputs = pd.DataFrame({"x": np.arange(len(outputs), dtype="float64")})
            log.record(_meta(name, f"{name}-r{i}"), inputs, outputs)
            sent.append(outputs)
        if failed_too:  # a failed request logs no outputs: the columns then have gaps
            log.record(_meta(name, f"{name}-failed", error="ValueError"), pd.DataFrame({"x": [0.0]}), None)
        window = log.window(name, "prod")
        assert log.write_errors == []
        scored = window[window["error"].isna()].reset_index(drop=True)
        expected = pd.concat(sent, ignore_index=True)
        assert list(scored.columns[1 : 1 + expected.shape[1]]) == list(expected.columns)
        for column in expected.columns:
            got, want = scored[column].tolist(), expected[column].tolist()
            assert all(_same(a, b) for a, b in zip(want, got, strict=True)), (column, want, got)
        if kind in ("bool", "int64", "str") and not failed_too:  # the dtype itself, not only the values
            assert scored["prediction"].dtype.kind == {"bool": "b", "int64": "i", "str": "O"}[kind]

        sample = log.affected(name, "prod", "v1.0.0")["sample"]
        logged = [row["outputs"] for row in sample if not row["request_id"].endswith("-failed")]
        for row, want in zip(logged, expected.to_dict(orient="records"), strict=True):
            finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in want.items()}
            assert all(_same(finite[k], row[k]) for k in want), (want, row)

    try:
        round_trip()
    finally:
        log.close()
