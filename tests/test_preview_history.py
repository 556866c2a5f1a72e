"""The preview after rollbacks: which version is current, which rows are re-scored, what the headline says.

A day on a string-label classifier (wine names) and a regressor (diabetes, with a decision
threshold): v1.1.0 replaces v1.0.0; v1.2.0 (trained without ``visits``) replaces v1.1.0 and some
clients stop sending ``visits``; v1.2.0 is rolled back to v1.1.0. Then a further rollback to
v1.0.0 is previewed: v1.1.0 serves, its rows since it was restored are the ones re-scored. Then
v1.3.0 runs as a 25% canary beside v1.1.0 and both are rolled back to v1.0.0 at once: the
preview after it shows both versions it replaced, each with the share it had and its own flips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit.ops.preview import RollbackPreview, preview_rollback
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.widgets.preview import summary_html

from .story import Case, build_project

THRESHOLD = 140.0
"""The regressor's decision threshold (diabetes progression above it: a decision)."""

CASES = [Case("wine-string-classes", "wine", "names"), Case("diabetes-regressor", "diabetes", "float", regressor=True)]


def _fit(case: Case) -> Any:
    """``fit(X, y, rounds)``: 15 a constant, 40 a one-split tree on the second input, else a tree on the third."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> Any:
        if rounds == 15:
            dummy = DummyRegressor(strategy="median") if case.regressor else DummyClassifier(strategy="most_frequent")
            return dummy.fit(X, y)
        tree = DecisionTreeRegressor if case.regressor else DecisionTreeClassifier
        pick = ColumnTransformer([("one", "passthrough", [X.columns[1 if rounds == 40 else 2]])])
        return make_pipeline(pick, tree(max_depth=2, random_state=0)).fit(X, y)

    return fit


def _register(repo: Path, case: Case, live: pd.DataFrame, version: str, drop: list[str]) -> None:
    """``model@version``: a tree on the third input, trained on v1.1.0's answers, without ``drop``."""
    from rollbackkit import Registry

    registry = Registry(repo)
    X = live.iloc[:300].assign(plan=live["plan"].iloc[:300].astype("string").fillna("missing").astype(object))
    y = pd.Series(registry.load("model@v1.1.0").model.predict(X))
    X = X.drop(columns=drop)
    registry.register("model", _fit(case)(X, y, 60), X.assign(target=y), target="target", version=version)


def _send(environment: ServingEnvironment, frame: pd.DataFrame, prefix: str, size: int = 50) -> None:
    for i in range(0, len(frame), size):
        environment.predict(frame.iloc[i : i + size], key=f"{prefix}-{i}")


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Any:
    """The day's previews, taken as it went (a preview writes nothing, so each is what the user saw then)."""
    case: Case = request.param
    repo, live = build_project(tmp_path_factory.mktemp(case.name), _fit(case), case)
    _register(repo, case, live, "v1.2.0", drop=["visits"])
    _register(repo, case, live, "v1.3.0", drop=[])
    threshold = THRESHOLD if case.regressor else None
    seen: dict[str, RollbackPreview] = {}
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()
        _send(environment, live.iloc[:200], "v100")
        environment.deploy("v1.1.0", features=live.iloc[:200], reason="the tree")
        _send(environment, live.iloc[200:500], "v110")
        environment.deploy("v1.2.0", features=live.iloc[:200].drop(columns=["visits"]), reason="without visits")
        _send(environment, live.iloc[500:620], "v120-with")  # old clients still send visits: dropped
        empty = live.iloc[620:650].assign(visits=pd.array([pd.NA] * 30, dtype="Int64"))
        _send(environment, empty, "v120-nan", size=1)  # one-row requests that sent visits empty: sent all the same
        _send(environment, live.iloc[650:800].drop(columns=["visits"]), "v120-without")
        environment.rollback(reason="v1.2.0 worse")  # to v1.1.0, the version before it
        log.flush()  # the server's writer flushes before a read; this process holds the log itself
        seen["after the first"] = preview_rollback(repo, "model", "prod", threshold=threshold)
        _send(environment, live.iloc[800:1000], "v110-again")
        log.flush()
        seen["a further one"] = preview_rollback(repo, "model", "prod", to_version="v1.0.0", threshold=threshold)
        environment.deploy("v1.3.0", canary=25, features=live.iloc[:200], reason="another tree on a quarter")
        _send(environment, live.iloc[1000:1400], "canary", size=5)
        environment.rollback(reason="both back to the constant", to="v1.0.0")
        log.flush()
        seen["both at once"] = preview_rollback(repo, "model", "prod", threshold=threshold)
        seen["no threshold"] = preview_rollback(repo, "model", "prod")
    finally:
        log.close()
    return case, repo, live, seen


def _direct(repo: Path, version: str, deployment: str, rows: int, threshold: float | None) -> float:
    """The flip share computed here: the first ``rows`` the log holds of ``version`` under ``deployment``
    (a preview taken then read them all), against v1.0.0's answers."""
    from rollbackkit import Registry

    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        window = log.window("model", "prod", version=version, deployment=deployment, limit=10_000, answered=True)
    finally:
        log.close()
    window = window.iloc[:rows]
    inputs = window.drop(columns=[c for c in window.columns if c in {"prediction", "latency_ms", "error", "time",
                                  "request_id", "row", "key", "label"} or c.startswith("proba_")])  # fmt: skip
    after = Registry(repo).load("model@v1.0.0").predict(inputs)["prediction"].to_numpy()
    before = window["prediction"].to_numpy()
    if threshold is not None:
        return float(np.mean((before.astype(float) > threshold) != (after.astype(float) > threshold)))
    return float(np.mean(before.astype(str) != after.astype(str)))


def _deployment(repo: Path, version: str, nth: int = -1) -> str:
    """The tag of ``version``'s ``nth`` assignment in prod."""
    from rollbackkit.registry.assignments import Deployments
    from rollbackkit.registry.repository import Repository

    tags = [a.tag for a in Deployments(Repository(repo)).history("model", "prod") if a.version == version]
    return tags[nth]


def test_after_a_rollback_the_preview_shows_the_version_it_replaced_per_column_set(day: Any) -> None:
    """v1.2.0's rows are re-scored by v1.1.0: the rows logged without visits are refused, not filled with gaps;
    one-row requests that sent visits empty did send it (the log recorded it): scored, not refused."""
    _, _, _, seen = day
    first = seen["after the first"]
    assert first.done and (first.from_version, first.to_version) == ("v1.2.0", "v1.1.0")
    part = first.parts[0]
    assert [(p.version, p.role, p.traffic) for p in first.parts] == [("v1.2.0", "replaced", 100.0)]
    assert [(g.rows, g.absent) for g in part.groups] == [(150, []), (150, ["visits"])]
    kept, refused = part.groups
    assert kept.refused is None and refused.refused is not None and "visits: missing_column" in refused.refused
    assert part.n == 150 and part.refused is None and part.flip_share is not None
    text = summary_html(first)
    assert "rolled back from <b>v1.2.0</b> to <b>v1.1.0</b>" in text
    assert "v1.2.0: 150 row(s) logged without visits: refused (" in text and "rollbackkit-error" in text
    assert "flipped of 150 scoreable rows; 150 of 300 (50%) are refused: without visits" in text
    assert "over all its deployments" in text and first.note is None  # recorded column sets: none inferred
    assert "150 of 300 (50%) are refused: without visits" in first.card().text()


def test_a_further_rollback_rescores_the_restored_version_since_it_serves_again(day: Any) -> None:
    case, repo, _, seen = day
    further = seen["a further one"]
    assert not further.done and (further.from_version, further.to_version) == ("v1.1.0", "v1.0.0")
    part = further.parts[0]
    assert (part.role, part.traffic, part.n) == ("live", 100.0, 200)  # only its rows since the rollback restored it
    assert [g.rows for g in part.groups] == [200]
    threshold = THRESHOLD if case.regressor else None
    expected = _direct(repo, "v1.1.0", _deployment(repo, "v1.1.0"), 200, threshold)
    assert part.flip_share == pytest.approx(expected, abs=1e-12)
    assert "v1.1.0 serves since a rollback from v1.2.0" in str(further.note)
    assert "would roll back from <b>v1.1.0</b> to <b>v1.0.0</b>" in summary_html(further)


def test_a_rollback_of_a_canary_and_the_live_version_shows_both(day: Any) -> None:
    """Before: only the canary was shown after the rollback, as if the live version's customers kept their answers."""
    case, repo, _, seen = day
    both = seen["both at once"]
    assert both.done and both.to_version == "v1.0.0"
    assert [(p.version, p.role, p.traffic) for p in both.parts] == [
        ("v1.3.0", "replaced", 25.0),
        ("v1.1.0", "replaced", 75.0),
    ]
    canary, live = both.parts
    threshold = THRESHOLD if case.regressor else None
    for part, version in ((canary, "v1.3.0"), (live, "v1.1.0")):
        assert part.n > 0 and part.flip_share == pytest.approx(
            _direct(repo, version, _deployment(repo, version), part.n, threshold), abs=1e-12
        )
    assert both.total == pytest.approx(0.25 * canary.flip_share + 0.75 * live.flip_share)
    text = summary_html(both)
    assert "rolled back from <b>v1.3.0</b> and <b>v1.1.0</b> to <b>v1.0.0</b>" in text
    assert "(25% of traffic before the rollback)" in text and "of all prod scoreable decisions flipped" in text


def test_a_regressor_preview_without_a_threshold_says_why_no_decision_flips(day: Any) -> None:
    case, _, _, seen = day
    bare = seen["no threshold"]
    if not case.regressor:  # a classifier's decisions are its classes: no threshold needed
        assert bare.flip_share is not None and "No flip share" not in str(bare.note)
        return
    assert bare.flip_share is None and "n/a flip" in bare.headline()
    assert str(bare.note).startswith("No flip share: a regressor's answer is a number, not a decision; pass threshold=")
