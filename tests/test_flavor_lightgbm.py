"""LightGBM models in LightGBM's own text format, never pickled.

The whole story with an ``LGBMClassifier`` on string labels and pandas ``category``
columns (which arrive as JSON text and must score as the categories LightGBM recorded);
feature names with spaces (LightGBM respells them); boolean labels, a regressor and a
model file registered by path answer as trained; garbage and truncated files are one line
each, and nothing is registered (a missing lightgbm: tests/test_flavor_extras.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo, run_cli
from .story import Case, build_project, whole_story, widened

PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"LightGBM takes numbers and categories: the plan becomes one, the datetime is unused.\"\"\"
    out = frame.drop(columns=["signup"])
    out["plan"] = out["plan"].astype("string").fillna("missing").astype("category")
    return out
"""


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    namespace: dict[str, Any] = {}
    exec(PREPROCESS, namespace)
    return namespace["preprocess"](frame.drop(columns=["target"], errors="ignore"))  # type: ignore[no-any-return]


def _classifier(rounds: int) -> Any:
    return lgb.LGBMClassifier(n_estimators=rounds, num_leaves=15, n_jobs=1, random_state=0, verbose=-1)


def test_the_whole_story_holds_for_a_lightgbm_classifier_with_string_labels(tmp_path: Path) -> None:
    case = Case("lightgbm-string-labels", "breast_cancer", "names")
    repo, live = build_project(
        tmp_path, lambda X, y, rounds: _classifier(rounds).fit(X, y), case, preprocess=PREPROCESS, rounds=(40, 80)
    )
    shown = run_cli("show", "model@v1.1.0", cwd=repo)
    assert shown.returncode == 0 and "lightgbm model" in shown.stdout, shown.stdout + shown.stderr
    whole_story(repo, live, list(live.columns[:6]), str, ["trees: 40 -> 80", "num_iterations"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Model features (names with spaces, nullable ints/booleans, categories) and a string target."""
    data = widened(Case("lgb", "breast_cancer", "names"), 500, seed=4)
    return _features(data).assign(target=data["target"].to_numpy())


def test_text_where_a_category_was_trained_scores_the_same(tmp_path: Path, frame: pd.DataFrame) -> None:
    registry = Registry.init(new_repo(tmp_path / "p"))
    X = frame.drop(columns=["target"])
    model = _classifier(20).fit(X, frame["target"])
    registry.register("m", model, frame, target="target", version="v1.0.0")
    loaded = registry.load("m@v1.0.0")
    as_text = X.head(40).astype({"plan": object, "region": "string"})  # as JSON gives them, categories lost
    expected = model.predict_proba(X.head(40))[:, 1]
    assert np.allclose(loaded.predict(X.head(40))["proba_malignant"], expected)
    assert loaded.scorer is not None
    assert np.allclose(loaded.scorer.score(as_text)["proba_malignant"], expected)
    assert set(loaded.predict(X.head(40))["prediction"]) <= {"benign", "malignant"}


def test_boolean_labels_and_a_regressor_answer_as_trained(tmp_path: Path, frame: pd.DataFrame) -> None:
    registry = Registry.init(new_repo(tmp_path / "p"))
    X = frame.drop(columns=["target"])
    flags = frame["target"] == "malignant"
    classifier = _classifier(20).fit(X, flags)
    registry.register("flags", classifier, X.assign(target=flags), target="target", version="v1.0.0")
    answers = registry.load("flags@v1.0.0").predict(X.head(20))
    assert [type(v) for v in answers["prediction"].tolist()] == [bool] * 20
    assert answers["prediction"].tolist() == classifier.predict(X.head(20)).tolist()

    target = X["mean radius"].fillna(0.0)
    regressor = lgb.LGBMRegressor(n_estimators=20, n_jobs=1, verbose=-1).fit(X, target)
    registry.register("reg", regressor, X.assign(target=target), target="target", version="v1.0.0")
    loaded = registry.load("reg@v1.0.0")
    assert loaded.scorer is not None and loaded.scorer.classes is None
    assert np.allclose(loaded.predict(X.head(20))["prediction"], regressor.predict(X.head(20)))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path, frame: pd.DataFrame) -> dict[str, Path]:
    """A project, its training data (integer labels: a text model holds no label names) and two .txt models."""
    where = tmp_path_factory.mktemp("lightgbm-files")
    repo = new_repo(where / "project")
    Registry.init(repo)
    train = where / "train.parquet"
    frame.assign(target=(frame["target"] == "malignant").astype(int)).to_parquet(train)
    paths = {"repo": repo, "where": where, "train": train}
    for rounds in (40, 80):
        booster = lgb.train(
            {"objective": "binary", "num_threads": 1, "verbose": -1, "num_leaves": 7},
            lgb.Dataset(frame.drop(columns=["target"]), (frame["target"] == "malignant").astype(int)),
            rounds,
        )
        paths[f"txt{rounds}"] = where / f"model{rounds}.txt"
        booster.save_model(paths[f"txt{rounds}"])
    return paths


def _register(project: dict[str, Path], model: Path, *extra: str) -> Any:
    args = ("register", "m", "--model", str(model), "--train-data", str(project["train"]), "--target", "target")
    return rollbackkit(*args, *extra, cwd=project["repo"])


def test_a_text_model_registers_by_path_with_parity_and_diff(project: dict[str, Path], frame: pd.DataFrame) -> None:
    repo = project["repo"]
    assert _register(project, project["txt40"], "--version", "v1.0.0").code == 0
    assert _register(project, project["txt80"], "--version", "v1.1.0").code == 0
    shown = run_cli("show", "m@v1.1.0", cwd=repo)
    assert "lightgbm model" in shown.stdout and "model.txt" in shown.stdout, shown.stdout
    parity = run_cli("parity", "m@v1.1.0", cwd=repo)
    assert parity.returncode == 0, parity.stdout + parity.stderr
    diff = run_cli("diff", "m@v1.0.0", "m@v1.1.0", cwd=repo)
    assert "trees: 40 -> 80" in diff.stdout, diff.stdout
    X = frame.drop(columns=["target"]).head(30)
    expected = lgb.Booster(model_file=str(project["txt80"])).predict(X)
    answers = Registry(repo).load("m@v1.1.0").predict(X)
    assert np.allclose(answers["proba_1"], expected)
    assert answers["prediction"].tolist() == [int(p > 0.5) for p in expected]


@pytest.mark.parametrize(
    ("content", "mention"),
    [
        (b"garbage\nnot a model at all\n", "does not start with LightGBM's 'tree' line"),
        (b"\xff\xfe\x00binary", "not text"),
        (b"", "does not start"),
    ],
)
def test_a_txt_file_that_is_not_a_lightgbm_model_is_one_line(
    project: dict[str, Path], content: bytes, mention: str
) -> None:
    path = project["where"] / "garbage.txt"
    path.write_bytes(content)
    before = state(project["repo"])
    assert_one_clean_line(_register(project, path), str(path), "not a readable LightGBM model", mention)
    assert state(project["repo"]) == before


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.99])
def test_a_truncated_txt_file_is_one_line_and_nothing_registered(project: dict[str, Path], cut: float) -> None:
    data = project["txt40"].read_bytes()  # LightGBM itself aborts the process on most of these: checked first
    short = project["where"] / f"cut{cut}.txt"
    short.write_bytes(data[: int(len(data) * cut)])
    before = state(project["repo"])
    assert_one_clean_line(_register(project, short), str(short), "cut short")
    assert state(project["repo"]) == before


def test_a_tree_pointing_outside_itself_is_one_line(project: dict[str, Path]) -> None:
    text = project["txt40"].read_text()
    start = text.index("left_child=", text.index("Tree=3"))
    end = text.index("\n", start)
    crafted = project["where"] / "crafted.txt"
    crafted.write_text(text[:start] + "left_child=" + " ".join(["999"] * 6) + text[end:])
    before = state(project["repo"])
    assert_one_clean_line(_register(project, crafted), "tree 3")
    assert state(project["repo"]) == before
