"""The CatBoost flavor: native ``.cbm`` files, categorical columns and labels kept as trained.

The whole story with string and integer labels and the plan and region columns as CatBoost's own
categorical features; register and predict for boolean labels and a regressor; a missing
categorical value refused in one line; and the bad input a user brings: a ``.cbm`` that is
not CatBoost and a truncated one (CatBoost's own loader crashes the process on some); no
catboost installed: tests/test_flavor_extras.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.errors import RollbackkitError

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo, run_cli
from .story import SEGMENT, Case, build_project, whole_story

CASE = Case("catboost-string-labels", "breast_cancer", "names")
# The bundle's feature logic: a missing plan is a plan of its own (CatBoost cannot score a
# missing category), nullable numbers as floats, the datetime is not a feature.
CATBOOST_PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=["signup"]).assign(plan=frame["plan"].astype("string").fillna("missing").astype(object))
    return frame.astype({"visits": "float64", "promo": "float64"})
"""
CATEGORICAL = ["plan", SEGMENT]


def _catboost(kind: str, rounds: int, **params: Any) -> Any:
    import catboost

    model = catboost.CatBoostRegressor if kind == "regressor" else catboost.CatBoostClassifier
    return model(iterations=rounds, depth=4, thread_count=1, verbose=0, random_seed=0, **params)


# The schema records labels as text; answers keep the labels' type (through the real server).
@pytest.mark.parametrize(
    ("case", "answer_type", "classes"),
    [
        (CASE, str, ["benign", "malignant"]),
        # make test-long: integer labels keep a whole story in make test through XGBoost
        pytest.param(Case("catboost-integer-labels", "wine", "int"), int, ["0", "1", "2"], marks=pytest.mark.long),
    ],
    ids=["str", "int"],
)
def test_the_whole_story_holds_for_catboost_with_native_categorical_columns(
    tmp_path: Path, case: Case, answer_type: type, classes: list[Any]
) -> None:
    def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> str:
        assert isinstance(X[SEGMENT].dtype, pd.CategoricalDtype)  # passed to CatBoost as a category
        path = tmp_path / f"model-{rounds}.cbm"
        _catboost("classifier", rounds, cat_features=CATEGORICAL).fit(X, y).save_model(str(path))
        return str(path)

    repo, live = build_project(tmp_path, fit, case, preprocess=CATBOOST_PREPROCESS)
    schema = Registry(repo).load("model@v1.0.0").schema
    assert schema.estimator.flavor == "catboost" and schema.estimator.size == {"trees": 15}
    assert schema.estimator.params is not None and schema.estimator.params["cat_features"] == "plan, region"
    assert schema.output.classes == classes
    shown = run_cli("show", "model@v1.1.0", cwd=repo)
    assert shown.returncode == 0 and "catboost model" in shown.stdout, shown.stdout + shown.stderr
    whole_story(repo, live, list(live.columns[:6]), answer_type, ["model trees: 15 -> 40", "iterations"])


# --------------------------------------------------------------------------- register + predict
@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(list("abcdefgh"), n)})
    X["visits"] = pd.array(rng.poisson(3, n), dtype="Int64")
    return X.assign(target=(X["age"] > 40) ^ (X["plan"] < "c"))


def test_boolean_labels_and_a_regressor_answer_as_trained(tmp_path: Path, frame: pd.DataFrame) -> None:
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    X = frame.drop(columns=["target"])
    numeric = X.astype({"visits": "float64"})
    classifier = _catboost("classifier", 10, cat_features=["plan"]).fit(numeric, frame["target"])
    registry.register("churn", classifier, frame, target="target", version="v1.0.0")  # the object itself
    bundle = registry.load("churn@v1.0.0")
    X.loc[0, "visits"] = pd.NA  # a nullable integer column's missing value reaches CatBoost as NaN
    out = bundle.predict(X.iloc[:30])
    assert [type(v) for v in out["prediction"].tolist()[:1]] == [bool]
    expected = classifier.predict(X.iloc[:30].astype({"visits": "float64"}))
    assert out["prediction"].tolist() == expected.tolist()
    assert list(out.columns) == ["prediction", "proba_False", "proba_True"]
    assert bundle.schema.estimator.feature_names_in == ["age", "plan", "visits"]

    regressor = _catboost("regressor", 10, cat_features=["plan"], loss_function="Poisson")
    regressor.fit(numeric, numeric["visits"])
    path = tmp_path / "visits.cbm"
    regressor.save_model(str(path))
    registry.register("visits", str(path), frame.assign(target=numeric["visits"]), target="target", version="v1.0.0")
    bundle = registry.load("visits@v1.0.0")
    out = bundle.predict(frame.drop(columns=["target"]).iloc[:30])
    assert bundle.schema.output.kind == "regression"
    assert np.allclose(out["prediction"], regressor.predict(numeric.iloc[:30]))  # the loss's Exponent applied
    assert bundle.schema.estimator.params is not None and bundle.schema.estimator.params["loss_function"] == "Poisson"


def test_a_missing_categorical_value_is_one_line_naming_the_column(tmp_path: Path, frame: pd.DataFrame) -> None:
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    numeric = frame.astype({"visits": "float64"})
    model = _catboost("classifier", 5, cat_features=["plan"]).fit(numeric.drop(columns=["target"]), frame["target"])
    registry.register("churn", model, numeric, target="target", version="v1.0.0")
    bundle = registry.load("churn@v1.0.0")
    assert {f.name: f.accepts_null for f in bundle.schema.features}["plan"] is False  # preflight knows
    gap = numeric.drop(columns=["target"]).iloc[:3].assign(plan=["a", None, "b"])
    for score in (bundle.predict, bundle.score_features):
        with pytest.raises(RollbackkitError) as refused:
            score(gap)
        assert "plan" in str(refused.value) and "\n" not in str(refused.value)


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path, frame: pd.DataFrame) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("catboost-bad")
    repo = new_repo(where / "project", "catboost bad input")
    Registry.init(repo)
    rollbackkit("register", "m", "--model", "absent.cbm", "--train-data", "absent.csv", cwd=repo)  # lock files
    numeric = frame.astype({"visits": "float64"})
    train = where / "train.csv"
    numeric.to_csv(train, index=False)
    whole = where / "whole.cbm"  # categorical counters: tables after the model core
    _catboost("classifier", 10, cat_features=["plan"], one_hot_max_size=1).fit(
        numeric.drop(columns=["target"]), numeric["target"]
    ).save_model(str(whole))
    return {"repo": repo, "train": train, "whole": whole, "where": where}


def _register(project: dict[str, Path], model: Path) -> Any:
    args = ("register", "m", "--model", str(model), "--train-data", str(project["train"]), "--target", "target")
    return rollbackkit(*args, cwd=project["repo"])


def test_a_cbm_file_that_is_not_catboost_is_one_line(project: dict[str, Path]) -> None:
    fake = project["where"] / "model.cbm"
    fake.write_text('{"learner": "not a CatBoost model"}')
    before = state(project["repo"])
    assert_one_clean_line(_register(project, fake), str(fake), "CatBoost", "CBM1")
    assert state(project["repo"]) == before


@pytest.mark.parametrize("cut", [0.3, 0.97, -1])
def test_a_truncated_cbm_file_is_one_line_and_nothing_registered(project: dict[str, Path], cut: float) -> None:
    data = project["whole"].read_bytes()
    short = project["where"] / f"cut{cut}.cbm"
    short.write_bytes(data[: int(len(data) * cut)] if cut > 0 else data[:-1])
    before = state(project["repo"])
    assert_one_clean_line(_register(project, short), str(short), "truncated")
    assert state(project["repo"]) == before


def test_predict_uses_the_threads_rollbackkit_model_threads_allows(
    project: dict[str, Path], frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from rollbackkit.bundle.flavors.catboost_native import FLAVOR

    scorer = FLAVOR.load(project["whole"].read_bytes(), SimpleNamespace(classes=None), "whole.cbm")  # type: ignore[arg-type]
    seen: list[int] = []
    predict_proba = scorer.native.predict_proba

    def spy(data: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["thread_count"])
        return predict_proba(data, **kwargs)

    scorer.native.predict_proba = spy
    X = frame.drop(columns=["target"]).astype({"visits": "float64"}).iloc[:5]
    for value in ("2", "many"):
        monkeypatch.setenv("ROLLBACKKIT_MODEL_THREADS", value)
        scorer.score(X)
    assert seen == [2, 1]
