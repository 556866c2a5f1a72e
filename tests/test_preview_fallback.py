"""A rollback preview over rows whose log answer carries no input signatures (an older server's).

A string-label classifier on income (float with NaN), visits (Int64 with gaps) and plan
(category with gaps): v1.0.0 reads all three; v1.1.0, trained without visits, replaced it and
some clients stopped sending visits; others sent it empty. Previewed back to v1.0.0 from a
window without ``sent_columns`` (what a server of an earlier release answers), the column sets
are inferred from the values: the requests with visits are scored, those without it refused,
and those that sent it empty read as not sent (the note says so). The flip share is computed
here from v1.0.0's own answers on the rows scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.ops import preview_parts
from rollbackkit.ops.preview import INFERRED, preview_rollback
from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.outputs import SENT_COLUMNS

from .conftest import new_repo

WITH, EMPTY, WITHOUT = 120, 20, 80
"""Rows sent with visits (in 50-row requests), with visits empty (one-row requests) and without it."""


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, rows)
    visits = rng.poisson(4, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    churn = np.where((visits < 3) | ((plan == "basic") & (income < 45_000)), "leave", "stay")
    frame = pd.DataFrame(
        {
            "income": np.where(rng.random(rows) < 0.05, np.nan, income),
            "visits": pd.array(visits, dtype="Int64"),
            "plan": pd.Categorical(plan, categories=["basic", "plus", "pro"]),
            "churn": churn,
        }
    )
    frame.loc[rng.random(rows) < 0.05, "visits"] = pd.NA
    frame.loc[rng.random(rows) < 0.05, "plan"] = np.nan
    return frame


def _model(columns: list[str]) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    numbers = [c for c in columns if c != "plan"]
    encode = ColumnTransformer(
        [("n", SimpleImputer(), numbers), ("c", OneHotEncoder(handle_unknown="ignore"), ["plan"])]
    )
    return make_pipeline(encode, DecisionTreeClassifier(max_depth=3, random_state=0))


@pytest.fixture(scope="module")
def replaced(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, pd.DataFrame]:
    """v1.1.0 (without visits) serving prod after the day's requests; v1.0.0 (with visits) before it."""
    repo = new_repo(tmp_path_factory.mktemp("fallback") / "project")
    registry = Registry.init(repo)
    train = _frame(600, seed=1)
    for version, columns in (("v1.0.0", ["income", "visits", "plan"]), ("v1.1.0", ["income", "plan"])):
        X = train[columns]
        model = _model(columns).fit(X.astype({"plan": object}), train["churn"])
        registry.register("model", model, X.assign(churn=train["churn"]), target="churn", version=version)
    deploy(repo, "model@v1.0.0", "prod", reason="first release")
    live = _frame(WITH + EMPTY + WITHOUT, seed=2).drop(columns=["churn"])
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()
        environment.deploy("v1.1.0", features=live.iloc[:WITH].drop(columns=["visits"]), reason="without visits")
        for i in range(0, WITH, 50):  # old clients still send visits
            environment.predict(live.iloc[i : min(i + 50, WITH)], key=f"with-{i}")
        empty = live.iloc[WITH : WITH + EMPTY].assign(visits=pd.array([pd.NA] * EMPTY, dtype="Int64"))
        for i in range(EMPTY):  # one-row requests that sent visits empty
            environment.predict(empty.iloc[[i]], key=f"empty-{i}")
        without = live.iloc[WITH + EMPTY :].drop(columns=["visits"])
        for i in range(0, WITHOUT, 40):
            environment.predict(without.iloc[i : i + 40], key=f"without-{i}")
        log.flush()
    finally:
        log.close()
    return repo, live


def test_without_input_signatures_the_column_sets_are_inferred_from_the_values(
    replaced: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, live = replaced
    recorded = preview_rollback(repo, "model", "prod", to_version="v1.0.0")
    [part] = recorded.parts
    assert [(g.rows, g.absent, g.inferred) for g in part.groups] == [
        (WITH + EMPTY, [], False),
        (WITHOUT, ["visits"], False),
    ]
    assert recorded.note is None or INFERRED not in recorded.note

    window = preview_parts.window

    def older_server(*args: object) -> pd.DataFrame:  # an earlier release's answer: no signatures
        frame = window(*args)  # type: ignore[arg-type]
        assert SENT_COLUMNS in frame.columns
        return frame.drop(columns=[SENT_COLUMNS])

    monkeypatch.setattr(preview_parts, "window", older_server)
    inferred = preview_rollback(repo, "model", "prod", to_version="v1.0.0")
    [part] = inferred.parts
    kept, refused = part.groups
    assert (kept.rows, kept.absent, kept.inferred) == (WITH, [], True)  # any value in a request: it sent visits
    assert (refused.rows, refused.absent, refused.inferred) == (WITHOUT + EMPTY, ["visits"], True)  # empty: not sent
    assert refused.refused is not None and "visits" in refused.refused and kept.refused is None
    assert sorted(kept.columns) == ["income", "plan", "visits"] and "visits" not in refused.columns
    assert part.n == WITH and part.refused_rows == WITHOUT + EMPTY
    assert inferred.note is not None and INFERRED in inferred.note

    sent = live.iloc[:WITH].reset_index(drop=True)  # the rows scored: v1.0.0's answers computed here
    registry = Registry(repo)
    before = registry.load("model@v1.1.0").predict(sent.drop(columns=["visits"]))["prediction"].astype(str)
    after = registry.load("model@v1.0.0").predict(sent)["prediction"].astype(str)
    flips = float(np.mean(before.to_numpy() != after.to_numpy()))
    assert 0 < flips < 1 and part.flip_share == pytest.approx(flips)
