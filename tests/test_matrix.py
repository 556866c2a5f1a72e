"""The whole story, for the data and models a team actually has.

For each kind of model (binary and multiclass classifiers with string labels, boolean and
integer labels, a regressor), on scikit-learn's bundled datasets widened with the columns
real feature tables have (NaN, pandas nullable ``Int64``/``boolean``/``string``, a
``category`` segment, a timezone-aware datetime): register two versions, serve with the
prediction log, start a canary, degrade one segment, let the watchdog roll back, list the
affected rows the runbook backfilled, check parity, diff the versions, read the rollback runbook
the watchdog ran, and verify the audit trail. Every step goes through the CLI and the
HTTP API against a real server, as an on-call engineer would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry

from .conftest import new_repo, run_cli
from .story import BAD_SEGMENT, SEGMENT, V2_GATES, whole_story


@dataclass(frozen=True)
class Case:
    """One kind of model: its dataset, how labels are made, and what an answer looks like."""

    name: str
    dataset: str
    labels: str  # "names", "bool", "int" or "float"
    regressor: bool = False

    def answer_type(self) -> type:
        return {"names": str, "bool": bool, "int": int, "float": float}[self.labels]


CASES = [
    Case("binary-string-labels", "breast_cancer", "names"),
    Case("multiclass-string-labels", "wine", "names"),
    Case("boolean-labels", "breast_cancer", "bool"),
    Case("integer-labels", "wine", "int"),
    Case("regressor", "diabetes", "float", regressor=True),
]


def _bundled(case: Case) -> tuple[pd.DataFrame, pd.Series]:
    """Six numeric features of the bundled dataset (names with spaces kept) and the labels."""
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{case.dataset}")(as_frame=True)
    features = loaded.frame[loaded.feature_names[:6]]
    target = loaded.frame["target"]
    if case.labels == "names":
        labels = pd.Series(np.asarray(loaded.target_names)[target.to_numpy()], name="target")
    elif case.labels == "bool":
        labels = target.astype(bool)
    elif case.labels == "int":
        labels = target.astype("int64")
    else:
        labels = target.astype("float64")
    return features, labels.rename("target")


def widened(case: Case, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows resampled from the dataset, with the columns real tables have, and the target."""
    features, labels = _bundled(case)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(features), rows)
    frame = features.iloc[pick].reset_index(drop=True)
    frame = frame * rng.normal(1.0, 0.02, frame.shape)  # resampled, not copied
    first = frame.columns[0]
    frame.loc[rng.random(rows) < 0.05, first] = np.nan
    frame["visits"] = pd.array(rng.poisson(3, rows), dtype="Int64")
    frame.loc[rng.random(rows) < 0.05, "visits"] = pd.NA
    frame["promo"] = pd.array(rng.random(rows) < 0.3, dtype="boolean")
    frame.loc[rng.random(rows) < 0.05, "promo"] = pd.NA
    frame["plan"] = pd.array(rng.choice(["basic", "plus", "pro"], rows), dtype="string")
    frame.loc[rng.random(rows) < 0.05, "plan"] = pd.NA
    frame[SEGMENT] = pd.Categorical(rng.choice(["north", "south", "east", BAD_SEGMENT], rows))
    frame["signup"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    frame["target"] = labels.iloc[pick].to_numpy()
    return frame


PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"The feature logic shipped in the bundle: a missing plan is a plan of its own.\"\"\"
    return frame.assign(plan=frame["plan"].astype("string").fillna("missing").astype(object))
"""


def pipeline(case: Case, numeric: list[str], rounds: int) -> Any:
    """Impute the numbers, encode the plan and segment, boosted trees; the datetime is unused."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), [*numeric, "visits", "promo"]),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan", SEGMENT]),
        ]
    )
    model = HistGradientBoostingRegressor if case.regressor else HistGradientBoostingClassifier
    return make_pipeline(encode, model(max_iter=rounds, random_state=0))


def build(case: Case, root: Path) -> tuple[Path, pd.DataFrame]:
    """A project with ``NAME@v1.0.0`` serving prod and ``v1.1.0`` (more rounds, segment gate) registered."""
    repo = new_repo(root / "project", case.name)
    registry = Registry.init(repo)
    train, held_out = widened(case, 1500, seed=1), widened(case, 800, seed=2)
    preprocess = root / "features.py"
    preprocess.write_text(PREPROCESS)
    namespace: dict[str, Any] = {}
    exec(PREPROCESS, namespace)
    X, y = namespace["preprocess"](train.drop(columns=["target"])), train["target"]
    numeric = list(X.columns[:6])
    for version, rounds, gates in (("v1.0.0", 15, None), ("v1.1.0", 40, V2_GATES)):
        registry.register(
            "model",
            pipeline(case, numeric, rounds).fit(X, y),
            train,
            target="target",
            version=version,
            validation_data=held_out,
            preprocess=preprocess,
            gates=gates,
        )
    deployed = run_cli("deploy", "model@v1.0.0", "--env", "prod", "--reason", "first release", cwd=repo)
    assert deployed.returncode == 0, deployed.stderr
    return repo, widened(case, 4000, seed=3).drop(columns=["target"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_whole_story_holds_for_each_kind_of_model(case: Case, tmp_path: Path) -> None:
    repo, live = build(case, tmp_path)
    whole_story(repo, live, list(live.columns[:6]), case.answer_type(), ["max_iter"])
