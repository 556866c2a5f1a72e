"""A project unlike the demo for the readable diff and the rich objects (built once per session).

``wine@v1.0.0`` and ``wine@v1.1.0``: wine with string classes, pandas nullable columns and NaN;
v1.1.0 changes the model, gates (:data:`tests.story.V2_GATES` instead of the defaults) and the
preprocessing code, adds a feature whose name is markup, and moves a numeric feature's
distribution. ``dose@v1.0.0``: a diabetes regressor. Built once per run (across xdist workers: the
conftest's ``shared_template``); each module gets its own copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rollbackkit import Registry

from .conftest import copy_project, new_repo, shared_template
from .story import PREPROCESS, SEGMENT, V2_GATES, Case, widened

WINE = Case("wine-names", "wine", "names")
DOSE = Case("diabetes", "diabetes", "float", regressor=True)
MARKUP = "<script>alert('x')</script>"
"""A feature (and class) name that must show as text."""
MOVED = "alcohol"
"""The feature whose values v1.1.0 was trained on moved (x1.3)."""

PREPROCESS_V2 = PREPROCESS.replace('fillna("missing")', 'fillna("none")') + "\n# v1.1.0: a missing plan is 'none'\n"


def pipeline(frame: pd.DataFrame, regressor: bool, rounds: int) -> Any:
    """Impute numbers, encode the plan and segment, boosted trees (the datetime is unused)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in frame.columns if c not in ("plan", SEGMENT, "signup")]
    encode = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan", SEGMENT]),
        ]
    )
    model = HistGradientBoostingRegressor if regressor else HistGradientBoostingClassifier
    return make_pipeline(encode, model(max_iter=rounds, random_state=0))


def _fit(preprocess: str, train: pd.DataFrame, regressor: bool, rounds: int) -> Any:
    namespace: dict[str, Any] = {}
    exec(preprocess, namespace)
    X = namespace["preprocess"](train.drop(columns=["target"]))
    return pipeline(X, regressor, rounds).fit(X, train["target"])


def rich_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the project (built by the run's first caller on any worker)."""
    return copy_project(shared_template(tmp_path_factory, "rich-project", _build), tmp_path_factory.mktemp("rich"))


def _build(root: Path) -> Path:
    repo = new_repo(root / "project", "rich objects")
    registry = Registry.init(repo)
    for version, preprocess, gates, seed in (("v1.0.0", PREPROCESS, None, 1), ("v1.1.0", PREPROCESS_V2, V2_GATES, 4)):
        train, held_out = widened(WINE, 600, seed=seed), widened(WINE, 300, seed=seed + 1)
        if version == "v1.1.0":
            for frame in (train, held_out):
                frame[MOVED] = frame[MOVED] * 1.3
                frame[MARKUP] = frame["visits"].astype("float64") * 2
        code = root / f"features-{version}.py"
        code.write_text(preprocess)
        model = _fit(preprocess, train, False, 10 if version == "v1.0.0" else 20)
        registry.register(
            "wine", model, train, target="target", version=version, validation_data=held_out,
            preprocess=code, gates=gates,
        )  # fmt: skip
    train = widened(DOSE, 400, seed=7)
    code = root / "features-dose.py"
    code.write_text(PREPROCESS)
    registry.register(
        "dose", _fit(PREPROCESS, train, True, 10), train, target="target", version="v1.0.0", preprocess=code
    )
    return repo
