"""XGBoost models in XGBoost's own formats (UBJ by default, JSON), never pickled.

The whole story with an ``XGBClassifier`` on native ``category`` columns, with integer
labels (XGBoost's own case) and boolean labels (XGBoost keeps 0/1: answers are booleans);
a ``Booster`` from ``xgb.train``, an ``XGBRegressor`` and model files registered by path
answer as trained; broken files and a Booster trained on other columns are one line each,
and nothing is registered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from rollbackkit import Registry

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo, run_cli
from .story import Case, build_project, whole_story, widened

PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"XGBoost takes numbers and categories: the plan becomes one, the datetime is unused.\"\"\"
    out = frame.drop(columns=["signup"])
    out["plan"] = out["plan"].astype("string").fillna("missing").astype("category")
    return out
"""


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    namespace: dict[str, Any] = {}
    exec(PREPROCESS, namespace)
    return namespace["preprocess"](frame.drop(columns=["target"], errors="ignore"))  # type: ignore[no-any-return]


def _classifier(rounds: int) -> Any:
    return xgb.XGBClassifier(n_estimators=rounds, max_depth=3, n_jobs=1, enable_categorical=True, random_state=0)


@pytest.mark.parametrize(
    ("case", "answer_type", "trees"),
    [
        (Case("xgboost-integer-labels", "wine", "int"), int, "trees: 120 -> 240"),  # 3 classes: a tree each
        pytest.param(  # XGBoost keeps 0/1; make test-long (the matrix keeps a boolean story in make test)
            Case("xgboost-boolean-labels", "breast_cancer", "bool"), bool, "trees: 40 -> 80", marks=pytest.mark.long
        ),
    ],
    ids=["int", "bool"],
)
def test_the_whole_story_holds_for_an_xgboost_classifier(
    tmp_path: Path, case: Case, answer_type: type, trees: str
) -> None:
    repo, live = build_project(
        tmp_path, lambda X, y, rounds: _classifier(rounds).fit(X, y), case, preprocess=PREPROCESS, rounds=(40, 80)
    )
    shown = run_cli("show", "model@v1.1.0", cwd=repo)
    assert shown.returncode == 0 and "xgboost" in shown.stdout, shown.stdout + shown.stderr
    whole_story(repo, live, list(live.columns[:6]), answer_type, [trees, "num_boost_round"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Model features (numbers, nullable ints/booleans, categories) and an integer target."""
    data = widened(Case("xgb", "breast_cancer", "int"), 500, seed=4)
    return _features(data).assign(target=data["target"].to_numpy())


def test_a_booster_and_a_regressor_answer_as_trained(tmp_path: Path, frame: pd.DataFrame) -> None:
    registry = Registry.init(new_repo(tmp_path / "p"))
    X, y = frame.drop(columns=["target"]), frame["target"]
    train = xgb.DMatrix(X, label=y, enable_categorical=True)
    booster = xgb.train({"objective": "multi:softmax", "num_class": 2, "nthread": 1, "max_depth": 2}, train, 10)
    registry.register("booster", booster, frame, target="target", version="v1.0.0")
    answers = registry.load("booster@v1.0.0").predict(X.head(20))
    assert [type(v) for v in answers["prediction"].tolist()] == [int] * 20
    assert answers["prediction"].tolist() == booster.predict(xgb.DMatrix(X.head(20), enable_categorical=True)).tolist()
    assert np.allclose(answers[["proba_0", "proba_1"]].sum(axis=1), 1.0)

    target = X["mean radius"].fillna(0.0)
    regressor = xgb.XGBRegressor(n_estimators=20, n_jobs=1, enable_categorical=True).fit(X, target)
    registry.register("reg", regressor, X.assign(target=target), target="target", version="v1.0.0")
    loaded = registry.load("reg@v1.0.0")
    assert loaded.scorer is not None and loaded.scorer.classes is None
    assert np.allclose(loaded.predict(X.head(20))["prediction"], regressor.predict(X.head(20)), atol=1e-6)


def test_a_classifier_trained_on_boolean_labels_answers_booleans(tmp_path: Path, frame: pd.DataFrame) -> None:
    registry = Registry.init(new_repo(tmp_path / "p"))
    X, flags = frame.drop(columns=["target"]), frame["target"] == 1
    model = _classifier(20).fit(X, flags)  # XGBoost encodes False, True as 0, 1: classes_ is [0, 1]
    registry.register("flags", model, X.assign(target=flags), target="target", version="v1.0.0")
    answers = registry.load("flags@v1.0.0").predict(X.head(20))
    assert [type(v) for v in answers["prediction"].tolist()] == [bool] * 20
    assert answers["prediction"].tolist() == model.predict(X.head(20)).astype(bool).tolist()
    assert np.allclose(answers["proba_True"], model.predict_proba(X.head(20))[:, 1])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path, frame: pd.DataFrame) -> dict[str, Path]:
    """A project, its training data, and a 40-round and an 80-round model in .ubj and .json."""
    where = tmp_path_factory.mktemp("xgboost-files")
    repo = new_repo(where / "project")
    Registry.init(repo)
    train = where / "train.parquet"
    frame.to_parquet(train)
    paths = {"repo": repo, "where": where, "train": train}
    for rounds in (40, 80):
        booster = _classifier(rounds).fit(frame.drop(columns=["target"]), frame["target"]).get_booster()
        for fmt in ("ubj", "json"):
            paths[f"{fmt}{rounds}"] = where / f"model{rounds}.{fmt}"
            booster.save_model(paths[f"{fmt}{rounds}"])
    return paths


def _register(project: dict[str, Path], model: Path, *extra: str) -> Any:
    args = ("register", "m", "--model", str(model), "--train-data", str(project["train"]), "--target", "target")
    return rollbackkit(*args, *extra, cwd=project["repo"])


def test_native_files_register_by_path_serve_parity_and_diff(project: dict[str, Path], frame: pd.DataFrame) -> None:
    repo = project["repo"]
    first = _register(project, project["ubj40"], "--version", "v1.0.0")
    assert first.code == 0 and "\nraw inputs: mean radius, mean texture," in first.stdout, first.stdout
    raw = next(line for line in first.stdout.splitlines() if line.startswith("raw inputs: "))
    assert raw.endswith(", region (model)"), first.stdout  # the columns the booster names
    assert _register(project, project["json80"], "--version", "v1.1.0").code == 0
    shown = run_cli("show", "m@v1.1.0", cwd=repo)
    assert "xgboost model" in shown.stdout and "model.json" in shown.stdout, shown.stdout
    parity = run_cli("parity", "m@v1.1.0", cwd=repo)
    assert parity.returncode == 0, parity.stdout + parity.stderr
    diff = run_cli("diff", "m@v1.0.0", "m@v1.1.0", cwd=repo)
    assert "trees: 40 -> 80" in diff.stdout and "num_boost_round" in diff.stdout, diff.stdout
    X = frame.drop(columns=["target"]).head(30)
    native = xgb.Booster(model_file=str(project["json80"]))
    expected = native.inplace_predict(X)
    answers = Registry(repo).load("m@v1.1.0").predict(X)
    assert np.allclose(answers["proba_1"], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "content", "mention"),
    [
        ("other.json", b'{"model": "not xgboost", "weights": [1, 2]}', "holds no XGBoost learner"),
        ("broken.json", b'{"learner": {', "not complete JSON"),
        ("empty.ubj", b"", "not complete UBJSON"),
    ],
)
def test_a_file_that_is_not_an_xgboost_model_is_one_line(
    project: dict[str, Path], name: str, content: bytes, mention: str
) -> None:
    path = project["where"] / name
    path.write_bytes(content)
    before = state(project["repo"])
    assert_one_clean_line(_register(project, path), str(path), "not a readable XGBoost model", mention)
    assert state(project["repo"]) == before


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_a_truncated_ubj_file_is_one_line_and_nothing_registered(project: dict[str, Path], cut: float) -> None:
    data = project["ubj40"].read_bytes()  # XGBoost itself crashes on these bytes: checked first
    short = project["where"] / f"cut{cut}.ubj"
    short.write_bytes(data[: int(len(data) * cut)])
    before = state(project["repo"])
    assert_one_clean_line(_register(project, short), str(short), "not complete UBJSON")
    assert state(project["repo"]) == before


def _child_past_the_end(model: dict[str, Any]) -> None:
    model["trees"][3]["left_children"][0] = 10_000


def _categories_out_of_range(model: dict[str, Any]) -> None:
    model["cats"]["sorted_idx"][-1] = 61_442  # XGBoost aborts the process scoring with this


def _split_on_a_missing_feature(model: dict[str, Any]) -> None:
    tree = model["trees"][0]
    tree["split_indices"][0] = 999


@pytest.mark.parametrize(
    ("craft", "mention"),
    [
        (_child_past_the_end, "tree 3: a child index outside the tree"),
        (_categories_out_of_range, "not a permutation of its categories"),
        (_split_on_a_missing_feature, "tree 0: a split on a feature the model does not have"),
    ],
)
def test_a_crafted_json_model_is_refused_before_xgboost_reads_it(
    project: dict[str, Path], craft: Any, mention: str
) -> None:
    doc = json.loads(project["json40"].read_text())
    craft(doc["learner"]["gradient_booster"]["model"])
    crafted = project["where"] / "crafted.json"
    crafted.write_text(json.dumps(doc))
    before = state(project["repo"])
    assert_one_clean_line(_register(project, crafted), str(crafted), mention)
    assert state(project["repo"]) == before


def test_a_booster_trained_on_other_columns_is_one_line_naming_both(
    project: dict[str, Path], frame: pd.DataFrame
) -> None:
    X = frame.drop(columns=["target"]).select_dtypes("number")
    renamed = X.rename(columns={X.columns[0]: "radius_mm"})
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(renamed, label=frame["target"]), 5)
    path = project["where"] / "renamed.ubj"
    booster.save_model(path)
    before = state(project["repo"])
    assert_one_clean_line(_register(project, path), "radius_mm", str(X.columns[0]))
    assert state(project["repo"]) == before
