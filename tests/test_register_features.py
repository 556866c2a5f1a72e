"""A team registers from the wide training table it has, not a CSV cut to the model's columns.

Iris with string species labels plus bookkeeping columns (an id, a load date): the model
uses two measurements. ``register`` keeps the model's features (``feature_names_in_``, or
``features=`` / ``--features a,b``); a name not in the data is a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.errors import InvalidInput

from .conftest import run_cli

USED = ["petal_width", "petal_length"]  # not the table's order


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return frame.assign(
        species=frame["target"].map(dict(enumerate(bunch.target_names))),
        flower_id=range(len(frame)),
        loaded_on=pd.Timestamp("2026-01-05"),
    ).drop(columns="target")


def test_the_models_own_feature_names_pick_the_columns(project: Path, wide: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(wide[USED], wide["species"])
    registry = Registry(project)
    registry.register("iris", model, wide, target="species", version="v1.0.0")
    bundle = registry.load("iris@v1.0.0")
    assert bundle.schema.feature_names == USED
    assert list(bundle.reference_part("input").columns) == USED
    assert set(bundle.predict(wide[USED].head(10))["prediction"]) <= {"setosa", "versicolor", "virginica"}


def test_features_choose_the_columns_of_a_model_without_names(
    project: Path, wide: pd.DataFrame, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(wide[USED].to_numpy(), wide["species"])
    registry = Registry(project)
    with pytest.raises(InvalidInput, match="not in the training data: petal_area") as refused:
        registry.register("iris", model, wide, target="species", features=["petal_width", "petal_area"])
    assert "\n" not in str(refused.value)
    assert registry.versions("iris") == []
    registry.register("iris", model, wide, target="species", features=USED, version="v1.0.0")
    assert registry.describe("iris@v1.0.0").schema.feature_names == USED

    model_file, data_file = tmp_path / "tree.skops", tmp_path / "wide.csv"
    sio.dump(model, model_file)
    wide.to_csv(data_file, index=False)
    base = ["register", "iris", "--model", str(model_file), "--train-data", str(data_file), "--target", "species"]
    bad = run_cli(*base, "--features", "petal_width,petal_area", cwd=project)
    assert bad.returncode == 1
    assert len(bad.stderr.strip().splitlines()) == 1 and "petal_area" in bad.stderr
    good = run_cli(*base, "--features", "petal_width, petal_length", "--version", "v1.1.0", "--json", cwd=project)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["version"] == "v1.1.0"
    assert registry.describe("iris@v1.1.0").schema.feature_names == USED
