"""Without a flavor's library, every command that needs it names the extra to install.

One test per flavor of the registry (:func:`rollbackkit.bundle.flavors.names`) that has an
optional extra: with a ``PYTHONPATH`` stub whose packages raise ``ImportError`` for the
flavor's library and packages, ``register`` of a file of that flavor, and ``parity`` of a
version registered while the library was there, print one line naming
``rollbackkit[<extra>]`` and exit 1, and nothing is registered; ``show`` reads the stored
schema, not the model, so it still works. A new flavor with an extra fails here until it
has a model file below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.bundle import flavors

from .adversarial.conftest import state
from .conftest import new_repo, run_cli


def _xgboost(X: pd.DataFrame, y: pd.Series, path: Path) -> None:
    import xgboost as xgb

    xgb.train({"nthread": 1, "objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 5).save_model(path)


def _lightgbm(X: pd.DataFrame, y: pd.Series, path: Path) -> None:
    import lightgbm as lgb

    params = {"objective": "binary", "num_threads": 1, "verbose": -1, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(X, y), 5).save_model(path)


def _catboost(X: pd.DataFrame, y: pd.Series, path: Path) -> None:
    import catboost

    catboost.CatBoostClassifier(iterations=5, thread_count=1, verbose=0).fit(X, y).save_model(str(path))


def _onnx(X: pd.DataFrame, y: pd.Series, path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = X.to_numpy(dtype="float32")
    path.write_bytes(to_onnx(LogisticRegression().fit(x, y), x[:1], options={"zipmap": False}).SerializeToString())


# Flavor name -> (model file suffix, how to save a small model of it).
MAKERS: dict[str, tuple[str, Callable[[pd.DataFrame, pd.Series, Path], None]]] = {
    "xgboost": (".ubj", _xgboost),
    "lightgbm": (".txt", _lightgbm),
    "catboost": (".cbm", _catboost),
    "onnx": (".onnx", _onnx),
}
WITH_EXTRA = [name for name in flavors.names() if flavors.get(name).extra is not None]


def test_every_flavor_with_an_extra_is_checked_here() -> None:
    assert set(WITH_EXTRA) == set(MAKERS), "add a model file maker for each flavor with an extra"
    for name, (suffix, _) in MAKERS.items():
        assert flavors.get(name).formats.get(suffix) is not None, (name, suffix)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> dict[str, Path]:
    """A project with ``m-<flavor>@v1.0.0`` registered for each flavor, its files and training data."""
    where = tmp_path_factory.mktemp("extras")
    repo = new_repo(where / "project", "extras")
    registry = Registry.init(repo)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["age", "income", "tenure"]).astype("float32")
    y = pd.Series((X["age"] + X["income"] > 0).astype(int), name="target")
    train = where / "train.csv"
    X.assign(target=y).to_csv(train, index=False)
    paths = {"repo": repo, "train": train, "where": where}
    for name, (suffix, save) in MAKERS.items():
        paths[name] = where / f"model{suffix}"
        save(X, y, paths[name])
        registry.register(f"m-{name}", str(paths[name]), X.assign(target=y), target="target", version="v1.0.0")
    return paths


@pytest.mark.parametrize("name", WITH_EXTRA)
def test_without_the_library_commands_name_the_extra(project: dict[str, Path], name: str) -> None:
    flavor = flavors.get(name)
    stubs = project["where"] / f"without-{name}"
    for package in {str(flavor.library).split(".")[0], *flavor.packages}:
        (stubs / package).mkdir(parents=True, exist_ok=True)
        (stubs / package / "__init__.py").write_text(f"raise ImportError('No module named {package}')\n")
    env = {"PYTHONPATH": str(stubs)}
    repo = project["repo"]
    before = state(repo)
    register = ("register", f"new-{name}", "--model", str(project[name]), "--train-data", str(project["train"]))
    for command in ((*register, "--target", "target"), ("parity", f"m-{name}@v1.0.0")):
        result = run_cli(*command, cwd=repo, env=env)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1 and len(lines) == 1, (command, result.stdout, result.stderr)
        assert f"rollbackkit[{flavor.extra}]" in lines[0] and "Traceback" not in result.stderr, lines
        assert state(repo) == before, command
    shown = run_cli("show", f"m-{name}@v1.0.0", cwd=repo, env=env)
    assert shown.returncode == 0 and f"{name} model" in shown.stdout, shown.stdout + shown.stderr
