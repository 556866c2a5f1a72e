"""Before a rollback, the on-call engineer previews it: which decisions flip, where, and what the backfill rewrites.

The constructed case: ``v1.1.0`` is a one-split tree on one input, ``v1.0.0`` a constant, so the
rows whose decision flips are known from the inputs alone (the tree's split and leaves). The
preview's flip share must equal that direct computation, for string, boolean and integer class
labels and a regressor with a decision threshold, on inputs with NaN and nullable dtypes. The
demo's churn covers a target with fewer features (52 logged columns, 47 trained: the
preflight's adaptation applied and shown).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit.analysis.class_proba import SERVED_CLASS, served_class_proba
from rollbackkit.analysis.preview import (
    class_mismatch,
    decisions,
    deltas_by_slice,
    flip_share,
    flipped,
    one_sided,
    slice_labels,
    transitions,
)
from rollbackkit.errors import InvalidInput, RollbackRefused, ServerError
from rollbackkit.ops.plans import rollback_plan
from rollbackkit.ops.preview import preview_rollback
from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.widgets._common import MAX_POINTS, points_in
from rollbackkit.widgets.preview import preview_figure, summary_html

from .conftest import copy_project
from .story import SEGMENT, Case, build_project

CASES = [
    Case("wine-string-classes", "wine", "names"),
    Case("tumours-boolean", "breast_cancer", "bool"),
    Case("wine-integer-classes", "wine", "int"),
    Case("diabetes-regressor", "diabetes", "float", regressor=True),
]
SENT = 600


def _models(case: Case) -> Any:
    """``fit(X, y, rounds)``: v1.0.0 (15 rounds) a constant, v1.1.0 a one-split tree on the second input."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> Any:
        if rounds == 15:
            dummy = DummyRegressor(strategy="median") if case.regressor else DummyClassifier(strategy="most_frequent")
            return dummy.fit(X, y)
        tree = DecisionTreeRegressor if case.regressor else DecisionTreeClassifier
        pick = ColumnTransformer([("one", "passthrough", [X.columns[1]])])
        return make_pipeline(pick, tree(max_depth=1, random_state=0)).fit(X, y)

    return fit


def _log(repo: Path, name: str, steps: list[tuple[str, pd.DataFrame]]) -> None:
    """Serve in this process with the prediction log: each step deploys a version (or nothing), then sends rows."""
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, name, "prod", log=log)
        environment.start()
        for version, frame in steps:
            if version:
                environment.deploy(version, features=frame, reason="new model")
            for i in range(0, len(frame), 100):
                environment.predict(frame.iloc[i : i + 100], key=f"{version}-{i}")
    finally:
        log.close()


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def constructed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Any:
    """v1.1.0 (the tree) serving prod after 600 logged rows; v1.0.0 (the constant) before it."""
    case: Case = request.param
    root = tmp_path_factory.mktemp(case.name)
    repo, live = build_project(root, _models(case), case)
    _log(repo, "model", [("", live.iloc[:200]), ("v1.1.0", live.iloc[1000 : 1000 + SENT])])
    return case, repo, live.iloc[1000 : 1000 + SENT].reset_index(drop=True)


def _direct(case: Case, repo: Path, sent: pd.DataFrame) -> tuple[np.ndarray, Any]:
    """The rows whose decision flips, from the tree's split alone; and the decision threshold (regressor)."""
    from rollbackkit import Registry

    registry = Registry(repo)
    constant = registry.load("model@v1.0.0").model
    pipeline = registry.load("model@v1.1.0").model
    tree = pipeline[-1].tree_
    column = pipeline[0].transformers_[0][2][0]
    left = sent[column].to_numpy(dtype="float64") <= tree.threshold[0]
    if case.regressor:
        leaves = tree.value[1].ravel()[0], tree.value[2].ravel()[0]
        threshold = float(np.mean(leaves))  # between the two leaves: one side decides "above"
        above = np.where(left, leaves[0], leaves[1]) > threshold
        return above != (float(constant.constant_.ravel()[0]) > threshold), threshold
    classes = pipeline[-1].classes_
    leaf = np.where(left, classes[tree.value[1][0].argmax()], classes[tree.value[2][0].argmax()])
    return leaf != constant.classes_[constant.class_prior_.argmax()], None


def test_flip_share_equals_the_direct_computation(constructed: Any) -> None:
    case, repo, sent = constructed
    expected, threshold = _direct(case, repo, sent)
    before = _snapshot(repo)
    preview = preview_rollback(repo, "model", "prod", threshold=threshold)
    assert (preview.from_version, preview.to_version, preview.n) == ("v1.1.0", "v1.0.0", SENT)
    assert 0 < expected.sum() < SENT, "the case must flip some rows and keep others"
    assert preview.flip_share == pytest.approx(expected.mean(), abs=1e-12)
    assert preview.by == SEGMENT  # v1.1.0's slice gate names the column
    regions = sent[SEGMENT].astype(str)
    for item in preview.slices[1:]:
        assert item.flips == int(expected[(regions == item.slice).to_numpy()].sum()), item
    assert preview.verdict in ("compatible", "adaptable")
    plan = rollback_plan(repo, "model", "prod")  # one rule for the rows a backfill would rewrite
    assert [p.rows for p in preview.parts] == plan.rows and preview.rewrite == plan.rows[0].backfill
    assert preview.parts[0].traffic == 100.0 and preview.total == pytest.approx(preview.flip_share)
    first, last = preview.parts[0].first, preview.parts[0].last
    assert first is not None and last is not None and first <= last
    assert _snapshot(repo) == before, "a preview writes nothing"
    headline, figure = summary_html(preview), preview_figure(preview)
    assert f"{preview.flip_share:.1%}</b></span> flip of {preview.n:,} scoreable rows" in headline
    assert "rollbackkit-error" not in headline and "refused" not in headline
    assert {t.name for t in figure.data} >= {"flip share (%)"} and points_in(figure) <= MAX_POINTS
    if case.regressor:  # without a threshold a regressor has no decisions: score deltas only
        plain = preview_rollback(repo, "model", "prod", by="plan")
        assert plain.flip_share is None and plain.changes == []
        assert summary_html(plain).count("threshold=") == 1  # the note says it once
        overall = plain.slices[0]
        assert overall.mean is not None and overall.p5 is not None and overall.p95 is not None
        assert overall.p5 <= overall.mean <= overall.p95
        assert "(missing)" in {s.slice for s in plain.slices}  # the nullable string's missing plans


def test_decisions_and_scores_are_compared_only_when_comparable(constructed: Any) -> None:
    """Class ids are not scores; a threshold needs a score; 0/1 and False/True are not the same classes."""
    case, repo, sent = constructed
    if case.labels in ("names", "int"):  # the primary output is the class label (multiclass wine)
        with pytest.raises(InvalidInput, match="holds class labels") as error:
            preview_rollback(repo, "model", "prod", threshold=0.5)
        assert "Leave threshold out" in error.value.hint
        preview = preview_rollback(repo, "model", "prod", sample=200)
        assert preview.score == SERVED_CLASS and preview.note is None and preview.flip_share is not None
        every = preview.slices[0]  # the constant's prior minus the tree's probability of the class it served
        assert every.mean is not None and every.p5 is not None and every.p95 is not None
        assert -1 <= every.p5 <= every.mean <= every.p95 <= 1 and every.p5 < 0
        figure = preview_figure(preview)
        assert figure.layout.xaxis2 is not None and figure.data[-1].y[0] == pytest.approx(every.mean)
        headline = summary_html(preview)
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d\d:\d\d:\d\d UTC", headline), headline
        with pytest.raises(RollbackRefused) as refused:
            preview_rollback(repo, "model", "prod", to_version="v1.1.0")  # what serves now: no rollback
        assert "to_version=" in refused.value.hint and "-p " not in refused.value.hint
    if case.labels != "bool":
        return
    _int_twin(repo, case, sent)
    preview = preview_rollback(repo, "model", "prod", to_version="v1.2.0", sample=200)
    assert preview.flip_share is None and preview.changes == [] and preview.score is None
    assert preview.refused == "classes differ (False, True vs 0, 1): decisions are not comparable"
    assert preview.slices[0].mean is None and "proba_1" in (preview.note or "")
    alone = preview_figure(preview)  # nothing to draw on the right: one plot, the note above it
    assert "xaxis2" not in alone.layout.to_plotly_json()
    assert "no score both versions output" in str(alone.layout.annotations)
    headline = summary_html(preview)
    assert "n/a</b></span> flip of" in headline and "classes differ (False, True vs 0, 1)" in headline
    at = preview_rollback(repo, "model", "prod", to_version="v1.2.0", sample=200, threshold=0.5)
    assert at.flip_share is None and at.refused is not None and "no 'proba_1' output" in at.refused


def _int_twin(repo: Path, case: Case, sent: pd.DataFrame) -> None:
    """Register ``model@v1.2.0`` (once): v1.1.0's tree trained on 0/1 integers instead of booleans."""
    from rollbackkit import Registry
    from rollbackkit.errors import VersionNotFound

    registry = Registry(repo)
    try:
        registry.load("model@v1.2.0")
        return
    except VersionNotFound:
        pass
    X = sent.iloc[:300].assign(plan=sent["plan"].iloc[:300].astype("string").fillna("missing").astype(object))
    ints = pd.Series(registry.load("model@v1.1.0").model.predict(X)).astype("int64")
    registry.register("model", _models(case)(X, ints, 40), X.assign(target=ints), target="target", version="v1.2.0")


def test_every_version_losing_traffic_is_previewed_with_its_share(constructed: Any, tmp_path: Path) -> None:
    """A shadow flips nothing; a canary's flips count for its share of traffic; both versions can leave."""
    from rollbackkit.serving.environment import ServingEnvironment

    case, template, sent = constructed
    if case.labels != "bool":
        return
    _int_twin(template, case, sent)
    repo = copy_project(template, tmp_path)
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    environment = ServingEnvironment(repo, "model", "prod", log=log)
    try:
        environment.start()
        environment.deploy("v1.0.0", shadow=50, reason="mirror")
        shadowed = preview_rollback(repo, "model", "prod")  # before: "Nothing served model in prod before v1.1.0"
        assert (shadowed.from_version, shadowed.to_version, shadowed.parts) == ("v1.0.0", "v1.1.0", [])
        assert shadowed.flip_share == 0.0 and shadowed.total == 0.0 and "only cancels the shadow" in str(shadowed.note)
        assert "rollbackkit-error" not in summary_html(shadowed)
        environment.rollback(reason="stop the mirror")
        environment.deploy("v1.0.0", canary=25, reason="the constant again, on a quarter")
        for i in range(0, 400, 5):
            environment.predict(sent.iloc[i : i + 5], key=f"canary-{i}")
    finally:
        log.close()
    small = preview_rollback(repo, "model", "prod", sample=10)
    assert small.n == 10 and small.parts[0].role == "canary"  # the sample's size is the log read's limit
    preview = preview_rollback(repo, "model", "prod")
    part = preview.parts[0]
    assert [(p.version, p.role, p.traffic) for p in preview.parts] == [("v1.0.0", "canary", 25.0)]
    assert part.rows is not None and 0 < part.n == part.rows.rows - 200 < 400  # not its first deployment's 200 rows
    assert part.flip_share is not None and preview.total == pytest.approx(part.flip_share * 0.25)
    assert "of the canary v1.0.0's 25% of traffic" in summary_html(preview)
    both = preview_rollback(repo, "model", "prod", to_version="v1.2.0")
    assert [(p.version, p.role, p.traffic) for p in both.parts] == [
        ("v1.0.0", "canary", 25.0),
        ("v1.1.0", "live", 75.0),
    ]
    assert all(p.n > 0 and p.refused and "classes differ" in p.refused for p in both.parts) and both.total is None


def _snapshot(repo: Path, *, log: bool = True) -> tuple[Any, ...]:
    """What a preview must leave alone: the tags, the journal and the log's rows (``log``: read the file)."""
    import subprocess

    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True, check=True).stdout
    from rollbackkit.registry.repository import Repository

    journal = Repository(repo).paths.journal
    rows = -1
    if log:
        opened = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
        try:
            rows = int(opened.query("SELECT count(*) AS n FROM predictions")["n"].iloc[0])
        finally:
            opened.close()
    return tags, journal.read_bytes() if journal.exists() else b"", rows


@pytest.fixture(scope="module")
def churn_rolled_forward(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's churn: v1.0.0 (47 features) served the 47 columns it knows, then v1.1.0 (52) took all
    traffic and the feature pipeline sent 52 columns."""
    from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, churn_frame

    repo = copy_project(served_template, tmp_path_factory.mktemp("preview-churn"))
    live = churn_frame(1000, seed=71)
    _log(repo, "churn", [("", live.iloc[:300][BASE_FEATURES]), ("v1.1.0", live.iloc[300:][ALL_FEATURES])])
    return repo


def test_a_target_with_fewer_features_is_scored_through_the_shown_adaptation(churn_rolled_forward: Path) -> None:
    preview = preview_rollback(churn_rolled_forward, "churn", "prod", sample=500)
    assert (preview.from_version, preview.to_version, preview.n) == ("v1.1.0", "v1.0.0", 500)
    assert preview.verdict == "adaptable" and len(preview.adaptation.drop) == 5
    assert preview.refused is None and preview.flip_share is not None and 0 <= preview.flip_share <= 1


def test_the_rollback_runbook_previews_after_the_shift_and_records_it(
    churn_rolled_forward: Path, tmp_path: Path
) -> None:
    """The preview never delays the shift: it runs after it and records what the rollback changed."""
    import nbformat

    from rollbackkit.ops.runbooks import run
    from rollbackkit.widgets.preview import RollbackPreviewPanel

    repo = copy_project(churn_rolled_forward, tmp_path)
    expected = preview_rollback(repo, "churn", "prod")
    result = run("rollback", {"name": "churn", "env": "prod", "reason": "preview after"}, repo=repo)
    assert (result.status, result.verdict) == ("ok", "rolled-back"), result.error
    recorded = result.results["preview"]
    assert recorded["done"] and (recorded["from_version"], recorded["to_version"]) == ("v1.1.0", "v1.0.0")
    assert recorded["n"] == expected.n and recorded["flip_share"] == pytest.approx(expected.flip_share)
    assert recorded["verdict"] == "adaptable" and len(recorded["adaptation"]["drop"]) == 5
    before = unescape(summary_html(expected))
    assert not expected.serves and f"adaptable on v1.1.0's latest {expected.n:,} rows" in before
    after = unescape(summary_html(preview_rollback(repo, "churn", "prod", to_version="v1.0.0")))  # serves again
    assert recorded["serves"] and "Preflight of v1.0.0: " in after and "fail" not in after
    assert "not needed: v1.0.0 serves live traffic (the rollback is done; on v1.1.0's latest" in after, after
    cells = nbformat.read(str(result.notebook), as_version=4).cells
    order = [i for i, c in enumerate(cells) if "rk.rollback(" in c.source or "preview_rollback" in c.source]
    assert "rk.rollback(" in cells[order[0]].source, "the shift runs first"
    printed = "".join(o.get("text", "") for c in cells if "preview_rollback" in c.source for o in c.outputs)
    said = f"v1.1.0 -> v1.0.0: {100 * expected.flip_share:.3g}% flipped of {expected.n:,} scoreable rows"
    assert said in printed, printed
    record = nbformat.read(str(result.notebook), as_version=4)
    assert "widgets" not in record.metadata and result.notebook.stat().st_size < 400_000  # no widget state saved

    panel = RollbackPreviewPanel(repo, "churn", "prod", to_version="v1.1.0")  # v1.0.0's rows lack 5 columns
    preview = panel.preview
    assert preview is not None and (preview.from_version, preview.to_version) == ("v1.0.0", "v1.1.0")
    assert preview.verdict == "incompatible" and preview.refused and preview.flip_share is None
    assert "incompatible" in panel.summary.value and "cannot score" in panel.summary.value


def test_bad_input_is_one_readable_line(churn_rolled_forward: Path, served: Path) -> None:
    with pytest.raises(RollbackRefused, match="no earlier version"):
        preview_rollback(served, "churn", "prod")  # only v1.0.0 ever served
    with pytest.raises(InvalidInput, match="not a logged input"):
        preview_rollback(churn_rolled_forward, "churn", "prod", by="no_such_column")
    with pytest.raises(ServerError, match="did not answer"):
        preview_rollback(churn_rolled_forward, "churn", "prod", server="http://127.0.0.1:9")
    deploy(served, "churn@v1.1.0", "prod", reason="no traffic yet")
    with pytest.raises(InvalidInput, match=r"no prediction log|no logged rows"):
        preview_rollback(served, "churn", "prod")


def test_flip_share_on_constructed_arrays() -> None:
    assert flip_share(["a", "b", None, None], ["a", "c", None, "d"]) == pytest.approx(1 / 3)  # one-sided: apart
    assert flip_share(pd.array([True, False, pd.NA], dtype="boolean"), np.array([True, True, None], dtype=object)) == (
        pytest.approx(1 / 3)  # two missing decisions are the same decision
    )
    assert flip_share(pd.Series([1, 2, 3], dtype="Int64"), pd.Series([1.0, 2.0, np.nan])) == 0.0  # 2 == 2.0
    assert flip_share([], []) is None
    served, target = decisions(pd.Series([1.0, 5.0, np.nan, 3.0]), 2.5), decisions(pd.Series([3.0, 5, None, None]), 2.5)
    assert flip_share(served, target) == pytest.approx(1 / 3)  # a score crossing the threshold; one went missing
    assert [(c.before, c.after, c.rows) for c in transitions(served, target)] == [("<= 2.5", "> 2.5", 1)]
    apart = deltas_by_slice(None, None, flipped(served, target), None, one_sided(served, target))[0]
    assert (apart.n, apart.flips, apart.missing, apart.flip_share) == (4, 1, 1, pytest.approx(1 / 3))
    flips = flipped(["x", "y", "x", "y"], ["x", "x", "x", "y"])
    slices = deltas_by_slice(
        pd.Series([0.1, 0.2, 0.3, np.nan]), pd.Series([0.2, 0.2, 0.1, 0.5]), flips, pd.Series(["n", "s", "n", None])
    )
    assert [(s.slice, s.n, s.flips) for s in slices[:2]] == [("all", 4, 1), ("n", 2, 0)]
    assert {(s.slice, s.n, s.flips) for s in slices[2:]} == {("(missing)", 1, 0), ("s", 1, 1)}
    assert slices[0].mean == pytest.approx((0.1 + 0.0 - 0.2) / 3)
    assert class_mismatch(["0", "1"], ["False", "True"]) == (
        "classes differ (0, 1 vs False, True): decisions are not comparable"
    )
    assert class_mismatch(["a", "b"], ["b", "a"]) is None and class_mismatch(None, None) is None
    ranges = slice_labels(pd.Series(np.linspace(0, 100, 500)))  # a continuous column: 10 ranges, not 30 values
    assert ranges.nunique() == 10 and ranges.value_counts().max() == 50


def test_the_panel_shows_the_preview_and_its_adaptation(churn_rolled_forward: Path) -> None:
    from rollbackkit.widgets.preview import RollbackPreviewPanel

    panel = RollbackPreviewPanel(churn_rolled_forward, "churn", "prod", sample=500)
    assert panel.preview is not None and "rollbackkit-preview" in panel._dom_classes
    text = panel.summary.value
    assert f"{panel.preview.flip_share:.1%}" in text and "v1.1.0" in text and "v1.0.0" in text
    assert "adaptable" in text and "Scored after the adaptation that drops 5 column(s) (" in text
    assert "A backfill would rewrite" in text
    assert "rollbackkit-error" not in text
    assert 0 < points_in(panel.figure) <= MAX_POINTS

    many = RollbackPreviewPanel(churn_rolled_forward, "churn", "prod", sample=5000, by="monthly_charges")
    assert many.preview is not None and len(many.preview.slices) == 11  # "all" and 10 ranges of a continuous column
    assert points_in(many.figure) <= MAX_POINTS

    bad = RollbackPreviewPanel(churn_rolled_forward, "churn", "prod", by="no_such_column")
    assert bad.preview is None and bad.figure is None
    assert "rollbackkit-error" in bad.summary.value and "Traceback" not in bad.summary.value


def test_through_the_server_that_writes_the_log_the_preview_is_the_same(
    churn_rolled_forward: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollbackkit.ops.traffic import rollback

    from .servers import TOKEN, running_server

    repo = copy_project(churn_rolled_forward, tmp_path)
    offline = preview_rollback(repo, "churn", "prod", sample=500)
    tags, _, rows = _snapshot(repo)
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)
    with running_server(repo, "churn", "prod", watchdog=3600) as server:
        served = preview_rollback(repo, "churn", "prod", sample=500)  # the log's writer answers
        plan = rollback_plan(repo, "churn", "prod")
        assert server.status()["live"]["version"] == "v1.1.0" and _snapshot(repo, log=False)[0] == tags
        rollback(repo, "churn", "prod", reason="v1.1.0 worse")  # through the server: v1.1.0 stays warm in standby
        after = preview_rollback(repo, "churn", "prod", sample=500)  # v1.0.0 now serves in a warm slot
        monkeypatch.setattr("rollbackkit.serving.bodies.MAX_SCORE_ROWS", 400)  # a sample over a slot's limit
        loaded = preview_rollback(repo, "churn", "prod", sample=500)
    assert loaded.where.startswith("loaded bundle") and loaded.flip_share == after.flip_share
    assert loaded.note is not None and "the 500-row sample is over the 400 rows a slot scores" in loaded.note
    assert after.note is None or "slot scores" not in after.note
    assert (served.from_version, served.to_version, served.n) == (offline.from_version, offline.to_version, 500)
    assert served.flip_share == offline.flip_share and served.slices == offline.slices
    assert served.parts[0].first == offline.parts[0].first and served.parts[0].last == offline.parts[0].last
    # the server that shifts quarantines every row first: the plan and the preview say the same
    assert [p.rows for p in served.parts] == plan.rows and served.rewrite == plan.rows[0].rows == 700
    assert offline.rewrite == 0  # without a server nothing is quarantined, so a backfill rewrites nothing
    assert _snapshot(repo)[2] == rows, "no preview logged a row"
    assert after.done and after.where.startswith("warm live slot") and offline.where.startswith("loaded bundle")
    assert (after.from_version, after.n, after.flip_share) == ("v1.1.0", 500, offline.flip_share)
    assert after.adaptation == offline.adaptation and len(after.adaptation.drop) == 5


def test_the_log_leaves_failed_requests_out_before_the_sample_limit(tmp_path: Path) -> None:
    """The newest requests failed: a sample of 2 is still 2 answered rows (never 2 failures filtered to 0)."""
    from datetime import UTC, datetime

    from rollbackkit.serving.log_operations import log_operation
    from rollbackkit.serving.wire import decode_frame

    log = PredictionLog(tmp_path / "predictions.duckdb")
    try:
        base: dict[str, Any] = {"env": "prod", "name": "model", "key": None, "version": "v1.0.0", "slot": "blue"}
        base |= {"bundle_id": "b", "deployment": "model#prod#1", "latency_ms": 1.0, "primary": "prediction"}
        for i in range(6):
            error = "boom" if i >= 3 else None
            meta = base | {"request_id": f"r{i}", "time": datetime(2026, 1, 1, 0, i, tzinfo=UTC), "error": error}
            log.record(meta, pd.DataFrame({"x": [float(i)]}), None if error else pd.DataFrame({"prediction": [i]}))
        assert log.window("model", "prod", version="v1.0.0", limit=2)["error"].notna().all()
        answer = log_operation(None, log, "window", "model", "prod", "v1.0.0", limit=2, deployment="model#prod#1")  # type: ignore[arg-type]
        sample = decode_frame(answer)
    finally:
        log.close()
    assert sample["x"].tolist() == [1.0, 2.0] and sample["error"].isna().all()
    assert [str(t)[:16] for t in sample["time"]] == ["2026-01-01 00:01", "2026-01-01 00:02"]  # times kept


def test_a_multiclass_delta_is_the_probability_of_the_class_served() -> None:
    before = pd.DataFrame({
        "prediction": ["Barolo", "Grignolino", None, "Barbera", "Barolo"],
        "proba_Barolo": [0.7, 0.2, 0.3, 0.1, 0.5], "proba_Grignolino": [0.2, 0.6, 0.3, 0.1, 0.4],
        "proba_Barbera": [0.1, 0.2, 0.4, 0.8, 0.1],
    })  # fmt: skip
    after = pd.DataFrame({"proba_Barolo": [0.4, 0.5, 0.3, 0.2, 0.5], "proba_Grignolino": [0.5, 0.4, 0.3, 0.2, 0.4]})
    old, new = served_class_proba(before, after)  # Barbera: no column in the target's answers
    assert old.tolist()[:2] == [0.7, 0.6] and new.tolist()[:2] == [0.4, 0.4]
    assert np.isnan(old[2]) and np.isnan(new[3]) and new[4] == 0.5
    [every] = deltas_by_slice(old, new, None)
    assert every.mean == pytest.approx((-0.3 - 0.2 + 0.0) / 3)
    ints = pd.DataFrame({"prediction": [1.0, 0.0, np.nan], "proba_0": [0.3, 0.9, 0.5], "proba_1": [0.7, 0.1, 0.5]})
    assert served_class_proba(ints, ints.iloc[:, 1:] * 0.5)[1].tolist()[:2] == [0.35, 0.45]  # 1.0 read back: class 1
