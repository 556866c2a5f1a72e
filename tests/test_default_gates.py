"""The gates a version gets without ``--gates`` catch one degraded segment, and leave healthy traffic alone.

A clinic network registers a tumour classifier (string labels) and a disease-progression
regressor on scikit-learn's breast-cancer and diabetes data, widened with the columns real
tables have: a clinic (pandas ``category``), a size or age band derived from the data
(pandas ``string``) and missing values in a numeric column. Nobody writes gates. One
clinic's scanner is then recalibrated: its measurements come in larger, its predictions
move, and the aggregate prediction drift stays under its bound. The default per-clinic
gate fails; held-out traffic passes every default gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.analysis.gates import GateReport, evaluate
from rollbackkit.analysis.gatespec import parse_gates_dict
from rollbackkit.analysis.slices import same_segment
from rollbackkit.bundle.schema import EstimatorView, OutputContract, Schema, infer_features
from rollbackkit.registry.default_gates import default_gates

from .conftest import new_repo

CLINICS = ["north", "south", "east", "west"]
SHARES = [0.4, 0.3, 0.2, 0.1]  # the recalibrated clinic is the smallest: a tenth of traffic
BAD_CLINIC = "west"


@dataclass(frozen=True)
class Study:
    """One dataset: the features kept, the one that is missing at times, the band column."""

    dataset: str
    features: list[str]
    missing: str
    band_of: str
    band: str
    scaled: list[str]  # what the recalibrated scanner reads too high


CANCER = Study(
    "breast_cancer",
    ["mean radius", "mean texture", "mean smoothness", "mean concavity", "mean concave points", "worst area"],
    missing="mean texture",
    band_of="mean radius",
    band="size_band",
    scaled=["mean concavity", "mean concave points", "worst area"],
)
DIABETES = Study(
    "diabetes",
    ["age", "bmi", "bp", "s1", "s3", "s5"],
    missing="bp",
    band_of="age",
    band="age_band",
    scaled=["bmi", "s5"],
)


def _rows(study: Study, pick: str, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows resampled (with 2% noise) from the dataset's first 60% (``train``) or the
    rest (``held-out``), with the clinic, the band and missing values; the target in ``target``."""
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{study.dataset}")(as_frame=True)
    cut = int(len(loaded.frame) * 0.6)
    base = loaded.frame.iloc[:cut] if pick == "train" else loaded.frame.iloc[cut:]
    rng = np.random.default_rng(seed)
    sample = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    frame = sample[study.features] * rng.normal(1.0, 0.02, (rows, len(study.features)))
    edges = np.quantile(loaded.frame[study.band_of], [1 / 3, 2 / 3])
    frame[study.band] = pd.array(
        np.select([frame[study.band_of] <= edges[0], frame[study.band_of] <= edges[1]], ["low", "mid"], "high"),
        dtype="string",
    )
    frame["clinic"] = pd.Categorical(rng.choice(CLINICS, rows, p=SHARES), categories=CLINICS)
    frame.loc[rng.random(rows) < 0.05, study.missing] = np.nan
    target = sample["target"]
    if study.dataset == "breast_cancer":
        target = pd.Series(np.asarray(loaded.target_names)[target.to_numpy()], dtype=object)
    frame["target"] = target.to_numpy()
    return frame


def _model(study: Study, train: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("bands", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [study.band, "clinic"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    learner = (
        HistGradientBoostingClassifier(max_iter=60, random_state=0)
        if study.dataset == "breast_cancer"
        else HistGradientBoostingRegressor(max_iter=60, random_state=0)
    )
    X = train.drop(columns=["target"]).astype({study.band: object, "clinic": object})
    return Pipeline([("encode", encode), ("model", learner)]).fit(X, train["target"])


@pytest.fixture(scope="module")
def clinics(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Registry:
    """``tumour@v1.0.0`` (classifier) and ``progression@v1.0.0`` (regressor), registered without gates."""
    repo = new_repo(tmp_path_factory.mktemp("clinics") / "project", "clinic network")
    registry = Registry.init(repo)
    for name, study in (("tumour", CANCER), ("progression", DIABETES)):
        train = _rows(study, "train", 3000, seed=1)
        registry.register(
            name,
            _model(study, train),
            train,
            target="target",
            version="v1.0.0",
            validation_data=_rows(study, "held-out", 2500, seed=2),
        )
    return registry


def _window(registry: Registry, ref: str, inputs: pd.DataFrame) -> pd.DataFrame:
    """What the prediction log would hold: the inputs, the answers, latency and no errors."""
    answers = registry.load(ref).predict(inputs)
    return pd.concat([inputs.reset_index(drop=True), answers.reset_index(drop=True)], axis=1).assign(
        latency_ms=4.0, error=None
    )


def _recalibrated(study: Study, frame: pd.DataFrame) -> pd.DataFrame:
    """The bad clinic's scanner reads its measurements one standard deviation too high."""
    frame = frame.copy()
    bad = frame["clinic"] == BAD_CLINIC
    frame.loc[bad, study.scaled] = frame.loc[bad, study.scaled] + frame[study.scaled].std()
    return frame


def _gate(report: GateReport, name: str) -> Any:
    return next(g for g in report.gates if g.name == name)


@pytest.mark.parametrize(("name", "study"), [("tumour", CANCER), ("progression", DIABETES)])
def test_one_recalibrated_clinic_fails_a_default_gate_and_healthy_traffic_passes_them_all(
    clinics: Registry, name: str, study: Study
) -> None:
    ref = f"{name}@v1.0.0"
    bundle = clinics.describe(ref)
    names = [g["name"] for g in bundle.gates["gates"]]
    assert names == [
        "error-rate",
        "latency-p99",
        "prediction-drift",
        f"prediction-drift-by-{study.band}",
        "prediction-drift-by-clinic",
        "prediction-tail",
    ]
    by_clinic = _gate_spec(bundle.gates, "prediction-drift-by-clinic")
    assert by_clinic == {
        "name": "prediction-drift-by-clinic",
        "kind": "slice",
        "by": "clinic",
        "metric": "psi",
        "max": by_clinic["max"],
        "min_slice_samples": 200,
        "severity": "rollback",
    }
    assert 0.25 <= by_clinic["max"] <= 0.5  # west has ~250 reference rows: 40 * (1/200 + 1/250) -> 0.4
    assert _gate_spec(bundle.gates, "prediction-tail")["share_above_p99_max"] == 0.05
    assert "gates" in clinics.show(ref)["components"]

    traffic = _rows(study, "held-out", 3000, seed=3).drop(columns=["target"])
    healthy = evaluate(bundle, _window(clinics, ref, traffic))
    assert healthy.decision == "pass", healthy.summary()
    assert {g.status for g in healthy.gates} == {"pass"}, [g.words() for g in healthy.gates]

    degraded = evaluate(bundle, _window(clinics, ref, _recalibrated(study, traffic)))
    overall = _gate(degraded, "prediction-drift")
    assert overall.status == "pass" and overall.observed is not None and overall.observed < 0.2, overall.words()
    segment = _gate(degraded, "prediction-drift-by-clinic")
    assert segment.status == "fail", segment.words()
    assert segment.evidence["worst_slice"] == {"clinic": BAD_CLINIC}
    assert degraded.decision == "rollback"
    assert "prediction-drift-by-clinic" in degraded.summary()


def _gate_spec(gates: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in gates["gates"] if g["name"] == name)


def _schema(frame: pd.DataFrame, output: OutputContract) -> Schema:
    return Schema(
        features=infer_features(frame), estimator=EstimatorView(type="Model"), output=output, n_rows=len(frame)
    )


CHANNELS = np.array(["web", "app", None], dtype=object)


def test_which_inputs_get_a_segment_gate_and_which_outputs_a_tail_gate() -> None:
    """Categorical inputs with 2 to 12 values, at most five; none where the reference cannot judge a segment."""
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame(
        {
            "spend": rng.normal(50, 10, n),  # a number: never sliced
            "visits": rng.integers(1, 4, n),  # 3 values, but an integer
            "plan": rng.choice(["basic", "plus", "pro"], n).astype(object),
            "member": rng.random(n) < 0.5,
            "country": pd.array(rng.choice([f"c{i}" for i in range(13)], n), dtype="string"),  # 13 values
            "brand": pd.array(["acme"] * n, dtype="string"),  # 1 value
            "channel": pd.array(rng.choice(CHANNELS, n, p=[0.5, 0.45, 0.05]), dtype="string"),  # 5% missing
            "tier": pd.Categorical(rng.choice(["gold", "rare"], n, p=[0.97, 0.03])),  # 90 rows of "rare"
            **{f"flag_{i}": pd.Categorical(rng.choice(["on", "off"], n)) for i in range(4)},
        }
    )
    classifier = OutputContract(
        kind="classification",
        columns=["prediction", "proba_a", "proba_b", "proba_c"],
        dtypes={"prediction": "object", "proba_a": "float64", "proba_b": "float64", "proba_c": "float64"},
        classes=["a", "b", "c"],
        primary="prediction",
    )
    gates = default_gates(_schema(frame, classifier), frame)
    sliced = {g["by"]: g["max"] for g in gates["gates"] if g["kind"] == "slice"}
    # plan, member, channel, flag_0, flag_1: the first five sliceable columns; tier has a segment
    # too thin; a bound is 40 * (1/200 + 1/~1000) -> 0.25, but channel's missing values are a
    # segment of ~150 rows: 40 * (1/200 + 1/150) = 0.47 -> 0.5
    assert sliced == {"plan": 0.25, "member": 0.25, "channel": 0.5, "flag_0": 0.25, "flag_1": 0.25}
    assert "prediction-tail" not in {g["name"] for g in gates["gates"]}  # class labels have no tail
    assert parse_gates_dict(gates, "defaults").min_samples == 200  # a valid gates.yaml

    regressor = OutputContract(
        kind="regression", columns=["prediction"], dtypes={"prediction": "float32"}, primary="prediction"
    )
    thin = frame.groupby("plan").head(200)  # 200 reference rows per plan: 40 * (1/200 + 1/200) = 0.4
    gates = default_gates(_schema(frame, regressor), frame, reference=thin)
    assert {g["name"]: g.get("max") for g in gates["gates"]}["prediction-drift-by-plan"] == 0.4
    assert gates["gates"][-1] == {
        "name": "prediction-tail",
        "kind": "tail",
        "share_above_p99_max": 0.05,
        "share_below_p1_max": 0.05,
        "severity": "rollback",
    }


def test_a_segment_of_missing_values_is_compared_with_the_reference_rows_missing_there() -> None:
    reference = pd.DataFrame(
        {"channel": pd.array(["web", None, "app", None, "web"], dtype="string"), "score": [1.0, 2.0, 3.0, 4.0, 5.0]}
    )
    assert same_segment(reference, {"channel": None})["score"].tolist() == [2.0, 4.0]
    assert same_segment(reference, {"channel": float("nan")})["score"].tolist() == [2.0, 4.0]
    assert same_segment(reference, {"channel": "web"})["score"].tolist() == [1.0, 5.0]
    assert same_segment(reference, {"channel": "tv"}).empty
    assert len(same_segment(reference, {"absent": 1})) == 5  # a column the reference lacks filters nothing
