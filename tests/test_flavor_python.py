"""The Python-model flavor: a directory with a model.py and its artifacts, stored as one archive.

The whole story with a small numpy logistic model (weights in an .npy artifact, string
labels), a regressor through ``Registry.load(...).predict``, determinism of the archive
(the same directory gives the same bundle id), and bad directories refused by the CLI in
one line with nothing registered.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo
from .story import Case, build_project, whole_story

LOGISTIC = '''\
"""A logistic regression in numpy: weights.npy rows are means, scales, coefficients, intercept."""
import io
import json

import numpy as np

CLASSES = ["malignant", "benign"]
PARAMS = {"kind": "logistic"}


def load(artifacts):
    weights = np.load(io.BytesIO(artifacts["weights.npy"]), allow_pickle=False)
    return json.loads(artifacts["meta/columns.json"]), weights


def _positive(state, frame):
    columns, w = state
    x = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    x = np.nan_to_num((x - w[0]) / w[1], nan=0.0)
    return 1.0 / (1.0 + np.exp(-(x @ w[2] + w[3][0])))


def predict_proba(state, frame):
    p = _positive(state, frame)
    return np.column_stack([1.0 - p, p])


def predict(state, frame):
    return np.where(_positive(state, frame) >= 0.5, CLASSES[1], CLASSES[0])
'''

LINEAR = """\
import numpy as np
from sklearn.utils import check_array  # a library model.py needs: its version is recorded

FEATURES = ["age", "bmi", "bp"]


def load(artifacts):
    return np.frombuffer(artifacts["coef.bin"], dtype="<f8")


def predict(state, frame):
    return frame[FEATURES].to_numpy(dtype="float64") @ state[:-1] + state[-1]
"""


def logistic_dir(where: Path, frame: pd.DataFrame, columns: list[str], rounds: int) -> Path:
    """A model directory: model.py, weights.npy and meta/columns.json, trained by gradient descent."""
    x = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    means, scales = np.nanmean(x, axis=0), np.nanstd(x, axis=0) + 1e-9
    x = np.nan_to_num((x - means) / scales, nan=0.0)
    y = (frame["target"] == "benign").to_numpy(dtype="float64")
    coef, bias = np.zeros(len(columns)), 0.0
    for _ in range(rounds):
        err = 1.0 / (1.0 + np.exp(-(x @ coef + bias))) - y
        coef, bias = coef - 0.1 * x.T @ err / len(y), bias - 0.1 * float(err.mean())
    where.mkdir(parents=True)
    (where / "model.py").write_text(LOGISTIC)
    intercept = np.zeros(len(columns))
    intercept[0] = bias
    np.save(where / "weights.npy", np.vstack([means, scales, coef, intercept]))
    (where / "meta").mkdir()
    (where / "meta" / "columns.json").write_text(json.dumps(columns))
    return where


def test_the_whole_story_holds_for_a_python_model(tmp_path: Path) -> None:
    def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> Path:
        columns = [*map(str, X.columns[:6]), "visits", "promo"]
        return logistic_dir(tmp_path / f"rounds-{rounds}", X.assign(target=y), columns, rounds)

    case = Case("python-string-labels", "breast_cancer", "names")
    repo, live = build_project(tmp_path, fit, case, rounds=(20, 200))
    loaded = Registry(repo).load("model@v1.1.0")
    assert loaded.scorer is not None and loaded.scorer.classes == ["malignant", "benign"]
    assert loaded.schema.estimator.flavor == "python" and loaded.schema.estimator.size == {"files": 3}
    assert loaded.schema.estimator.steps == ["model.py: load, predict, predict_proba, CLASSES, PARAMS"]
    whole_story(repo, live, list(live.columns[:6]), str, ["weights.npy"])


def test_a_regressor_registers_and_predicts_with_its_declared_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["age", "bmi", "bp", "unused"])
    frame["target"] = frame["age"] * 2 - frame["bp"] + 0.5
    model = tmp_path / "linear"
    model.mkdir()
    (model / "model.py").write_text(LINEAR)
    (model / "coef.bin").write_bytes(np.array([2.0, 0.0, -1.0, 0.5], dtype="<f8").tobytes())
    registry = Registry.init(new_repo(tmp_path / "project"))
    info = registry.register("linear", model, frame, target="target")
    bundle = registry.load(info.tag)
    assert bundle.schema.feature_names == ["age", "bmi", "bp"]  # FEATURES chose the columns
    assert bundle.schema.output.kind == "regression"
    answers = bundle.predict(frame[["age", "bmi", "bp"]].iloc[:5])
    np.testing.assert_allclose(answers["prediction"], frame["target"].iloc[:5])
    assert bundle.model.predict(frame.iloc[:2]).shape == (2,)
    runtime = bundle.manifest.registration.runtime
    assert runtime is not None and {"numpy", "pandas", "sklearn"} <= set(runtime.libraries)


def test_the_same_directory_gives_the_same_archive_and_bundle_id(tmp_path: Path) -> None:
    model = tmp_path / "linear"
    model.mkdir()
    (model / "model.py").write_text(LINEAR)
    (model / "coef.bin").write_bytes(np.array([2.0, 0.0, -1.0, 0.5], dtype="<f8").tobytes())
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0], "bmi": [0.0, 1.0, 0.0], "bp": [3.0, 1.0, 2.0]})
    frame["target"] = frame["age"] * 2 - frame["bp"] + 0.5
    ids = []
    for i in range(2):
        registry = Registry.init(new_repo(tmp_path / f"project{i}"))
        ids.append(registry.register("linear", model, frame, target="target").bundle_id)
        # what changes between two checkouts of one directory must not change the archive
        os.utime(model / "coef.bin", (1_000_000_000, 1_000_000_000))
        (model / "model.py").chmod(0o600)
        (model / "__pycache__").mkdir(exist_ok=True)
        (model / "__pycache__" / "model.cpython-312.pyc").write_bytes(os.urandom(64))
        (model / ".DS_Store").write_bytes(os.urandom(16))
    assert ids[0] == ids[1]
    archive = zipfile.ZipFile(io.BytesIO((tmp_path / "project0" / "bundles" / "linear" / "model.zip").read_bytes()))
    assert archive.namelist() == ["coef.bin", "model.py"]
    assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


# --------------------------------------------------------------------------- bad directories
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    path = new_repo(tmp_path_factory.mktemp("python-bad") / "project", "bad python models")
    Registry.init(path)
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0, 4.0], "bp": [3.0, 1.0, 2.0, 0.0], "target": [1.0, 2.0, 3.0, 4.0]})
    frame.to_csv(path.parent / "train.csv", index=False)
    rollbackkit("register", "bad", "--model", "absent", "--train-data", "absent.csv", cwd=path)
    return path


GOOD = "def load(artifacts):\n    return 2.0\n\n\ndef predict(state, frame):\n    return frame['age'] * state\n"
BAD_CODE = {
    "syntax": ("def load(:\n", ["model.py fails to import", "SyntaxError"]),
    "import": ("import not_a_module_anywhere\n" + GOOD, ["model.py fails to import", "ModuleNotFoundError"]),
    "exit": ("import sys\nsys.exit(3)\n" + GOOD, ["model.py fails to import", "SystemExit"]),
    "no-predict": ("def load(artifacts):\n    return 1\n", ["model.py defines no predict()"]),
    "load-fails": (GOOD.replace("return 2.0", "return artifacts['absent']"), ["model.py load() failed", "KeyError"]),
    "wrong-length": (GOOD.replace("frame['age'] * state", "[1.0]"), ["model.py predict() returned 1 values for"]),
    "wrong-shape": (GOOD.replace("frame['age'] * state", "frame.to_numpy()"), ["model.py predict() returned shape"]),
    "proba-no-classes": (GOOD + "\n\ndef predict_proba(state, frame):\n    return None\n", ["no CLASSES"]),
}


def _register(project: Path, model: Path) -> object:
    train = project.parent / "train.csv"
    return rollbackkit(
        "register", "bad", "--model", str(model), "--train-data", str(train), "--target", "target", cwd=project
    )


@pytest.mark.parametrize("kind", sorted(BAD_CODE))
def test_model_code_that_breaks_the_contract_is_one_line_and_nothing_is_registered(
    project: Path, tmp_path: Path, kind: str
) -> None:
    code, mentions = BAD_CODE[kind]
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.py").write_text(code)
    before = state(project)
    assert_one_clean_line(_register(project, model), *mentions)  # type: ignore[arg-type]
    assert state(project) == before


def _directory(tmp_path: Path, kind: str) -> tuple[Path, list[str]]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.py").write_text(GOOD)
    if kind == "no-model-py":
        (model / "model.py").rename(model / "other.py")
        return model, ["holds no model.py"]
    if kind == "symlink-out":
        (tmp_path / "secret.txt").write_text("secret")
        (model / "leak.txt").symlink_to(tmp_path / "secret.txt")
        return model, ["leak.txt", "symlink", "outside"]
    if kind == "bad-name":
        (model / "we!rd name.txt").write_text("x")
        return model, ["we!rd name.txt", "not a plain path"]
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("model.py", GOOD)
        out.writestr("../escape.txt", "x")
    return archive, ["'../escape.txt'", "not a plain path"]


@pytest.mark.parametrize("kind", ["no-model-py", "symlink-out", "bad-name", "archive-escapes"])
def test_a_bad_model_directory_or_archive_is_one_line_and_nothing_is_registered(
    project: Path, tmp_path: Path, kind: str
) -> None:
    model, mentions = _directory(tmp_path, kind)
    before = state(project)
    assert_one_clean_line(_register(project, model), *mentions)  # type: ignore[arg-type]
    assert state(project) == before


THRESHOLD = """\
CLASSES = [False, True]


def load(artifacts):
    return float(artifacts["threshold.txt"])


def predict(state, frame):
    return (frame["a"] > state).to_numpy()


def predict_proba(state, frame):
    import numpy as np

    p = 1.0 / (1.0 + np.exp(-(frame["a"].to_numpy() - state)))
    return np.column_stack([1.0 - p, p])
"""


def test_boolean_labels_come_back_as_python_bools(tmp_path: Path) -> None:
    model = tmp_path / "threshold"
    model.mkdir()
    (model / "model.py").write_text(THRESHOLD)
    (model / "threshold.txt").write_text("0.5")
    frame = pd.DataFrame({"a": np.linspace(-2, 2, 50)})
    frame["target"] = frame["a"] > 0.5
    registry = Registry.init(new_repo(tmp_path / "project"))
    bundle = registry.load(registry.register("flag", model, frame, target="target").tag)
    answers = bundle.predict(frame[["a"]])
    assert list(answers.columns) == ["prediction", "proba_False", "proba_True"]
    assert [type(v) for v in answers["prediction"].tolist()[:2]] == [bool, bool]
    assert answers["prediction"].tolist() == frame["target"].tolist()
    assert bundle.schema.output.classes == ["False", "True"]


def test_show_names_the_code_a_python_model_runs_and_diff_shows_its_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import sklearn

    from rollbackkit.bundle import runtime

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["age", "bmi", "bp"])
    frame["target"] = frame["age"] * 2 - frame["bp"] + 0.5
    repo = new_repo(tmp_path / "project")
    registry = Registry.init(repo)
    changed = LINEAR.replace("@ state[:-1] + state[-1]", "@ state[:-1] + state[-1] * 1.0  # the intercept, as a float")
    for version, code in (("v1.0.0", LINEAR), ("v1.1.0", changed)):
        model = tmp_path / version
        model.mkdir()
        (model / "model.py").write_text(code)
        (model / "coef.bin").write_bytes(np.array([2.0, 0.0, -1.0, 0.5], dtype="<f8").tobytes())
        real = runtime.installed_version
        fake = {"sklearn": "0.24.2"} if version == "v1.0.0" else {}
        with monkeypatch.context() as patch:
            patch.setattr(runtime, "installed_version", lambda name, fake=fake, real=real: fake.get(name) or real(name))
            registry.register("linear", model, frame, target="target", version=version)
    shown = json.loads(rollbackkit("show", "linear@v1.1.0", "--json", cwd=repo).stdout)
    digest = hashlib.sha256(changed.encode()).hexdigest()
    assert shown["own_code"] == {"file": "model.py", "sha256": digest}
    assert shown["schema"]["estimator"]["type"] == "model.py"  # not rollbackkit's internal class
    text = " ".join(rollbackkit("show", "linear@v1.1.0", cwd=repo).stdout.split())
    assert f"runs its own code: model.py sha256 {digest}" in text and "python model model.py;" in text, text
    assert "PythonModel" not in text
    diffed = rollbackkit("diff", "linear@v1.0.0", "linear@v1.1.0", cwd=repo).stdout
    assert "~ model code (model.py) changed:" in diffed, diffed
    assert "--- linear@v1.0.0/model.py" in diffed and "+++ linear@v1.1.0/model.py" in diffed
    assert '-    return frame[FEATURES].to_numpy(dtype="float64") @ state[:-1] + state[-1]\n' in diffed
    assert '+    return frame[FEATURES].to_numpy(dtype="float64") @ state[:-1] + state[-1] * 1.0' in diffed
    assert f"~ runtime sklearn: 0.24.2 -> {sklearn.__version__}" in diffed  # the runtimes are compared too
    data = json.loads(rollbackkit("diff", "linear@v1.0.0", "linear@v1.1.0", "--json", cwd=repo).stdout)
    assert data["model_code_changed"] and data["model_code_diff"].startswith("--- linear@v1.0.0/model.py")
    assert data["runtime"] == [{"name": "sklearn", "field": "version", "from": "0.24.2", "to": sklearn.__version__}]
    same = rollbackkit("diff", "linear@v1.1.0", "linear@v1.1.0", cwd=repo).stdout
    assert "no differences" in same
