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

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .conftest import copy_project, shared_template
from .story import SEGMENT, Case, build_project, live_inputs, whole_story

CASES = [
    Case("binary-string-labels", "breast_cancer", "names"),
    Case("multiclass-string-labels", "wine", "names"),
    Case("boolean-labels", "breast_cancer", "bool"),
    Case("integer-labels", "wine", "int"),
    Case("regressor", "diabetes", "float", regressor=True),
]
LONG = {"binary-string-labels", "integer-labels"}
"""Run by ``make test-long``: ``make test`` keeps string (wine), boolean and regressor stories here,
integer labels in the XGBoost story and binary string labels in CatBoost's."""
MATRIX = {case.name: case for case in CASES}


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
    """A project with ``model@v1.0.0`` serving prod and ``v1.1.0`` (more rounds, segment gate) registered."""
    return build_project(root, lambda X, y, rounds: pipeline(case, list(X.columns[:6]), rounds).fit(X, y), case)


def template(case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """:func:`build`'s project for ``case`` (its ``features.py`` beside it) and its live inputs, built ONCE
    per run across xdist workers (tests.conftest.shared_template): read-only, callers copy it."""
    assert MATRIX.get(case.name, case) == case, f"{case} is not test_matrix's {case.name}"
    repo = shared_template(tmp_path_factory, f"matrix-{case.name}", lambda root: build(case, root)[0])
    return repo, live_inputs(case)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=[pytest.mark.long] if c.name in LONG else []) for c in CASES]
)
def test_the_whole_story_holds_for_each_kind_of_model(
    case: Case, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    built, live = template(case, tmp_path_factory)  # the same project other modules copy
    repo = copy_project(built, tmp_path)
    whole_story(repo, live, list(live.columns[:6]), case.answer_type(), ["max_iter"])
