"""Gates over time: what the watchdog saw at each evaluation, kept in the prediction log.

The on-call's questions: which evaluations failed before the canary was rolled back, and by
how much? Were the labels of a label gate still coming in? The stories: the Prometheus story's
wine canary (string classes) that the watchdog rolls back on a real server; an iris canary
(string classes) with a late-label gate driven through the watchdog in process, whose history
then survives a real server's start and stop; the shared PostgreSQL store (migrated from
schema 2); a week of evaluations thinned; and every way there is nothing to show.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg
import pytest

import rollbackkit
from rollbackkit import Registry
from rollbackkit.errors import RollbackkitError
from rollbackkit.ops.gate_history import GateHistory
from rollbackkit.serving.background import Background
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.gate_history import PENDING, GateEvaluation, GateRecorder, GateSeen
from rollbackkit.serving.gate_rows import fold
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.widgets._common import MAX_POINTS, points_in
from rollbackkit.widgets.gates_time import GatesOverTimePanel, gates_figure, summary_html

from .servers import TOKEN, running_server
from .story import Case, build_project, widened
from .test_matrix import pipeline

if TYPE_CHECKING:  # imported as a plugin below, so that pytest rewrites its asserts
    from .canary_story import WatchedRollback

pytest_plugins = ["tests.prometheus", "tests.canary_story"]  # the session's one Prometheus and one story

LABEL_GATES = {
    "min_samples": 60,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "accuracy", "kind": "label_metric", "metric": "accuracy", "min": 0.5, "label_delay": "30s"},
    ],
}


CASE = Case("gates-over-time-iris", "iris", "names")


def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> object:
    return pipeline(CASE, list(X.columns[:4]), rounds).fit(X, y)


# ----------------------------------------------------------------------------- the watchdog rolls back
def test_a_canary_the_watchdog_rolled_back_shows_its_failing_evaluations_and_the_rollback(
    watched_rollback: WatchedRollback,
) -> None:
    story = watched_rollback
    history = rollbackkit.gate_history(story.repo, "model", "prod")
    assert history.where == story.server.url  # the server writes the log: it is asked

    canary = [e for e in history.evaluations if e.version == "v1.1.0"]
    assert canary and {e.role for e in canary} == {"canary"}
    failing = [e for e in canary if e.decision == "rollback"]
    assert failing, [e.decision for e in canary]
    drift = next(g for g in failing[-1].gates if g.name == "segment-drift")
    assert drift.status == "fail" and drift.value is not None and drift.value > drift.threshold["max"] == 0.5
    assert drift.slice == {"region": "west"}  # the operator's own record says where
    assert drift.n and drift.n >= 100

    [mark] = history.rollbacks
    assert (mark.automatic, mark.from_version, mark.version) == (True, "v1.1.0", "v1.0.0")
    assert failing[0].first is not None and failing[0].first <= mark.time + timedelta(seconds=1)  # tags: whole s
    series = history.series["segment-drift"]
    assert series.failures >= 1 and series.bounds[-1] == 0.5

    figure = gates_figure(history)
    names = {t.name for t in figure.data}
    assert {"value", "bound", "failed", "rollback"} <= names
    failed = next(t for t in figure.data if t.name == "failed")
    assert any("segment-drift: fail" in h and "region=west" in h for h in failed.hovertext)
    rolled = next(t for t in figure.data if t.name == "rollback")
    assert "automatic rollback v1.1.0 -> v1.0.0" in rolled.hovertext[0]
    assert len(figure.layout.shapes) == len(history.gates) and points_in(figure) <= MAX_POINTS  # a line per plot
    assert figure.layout.uirevision == "model/prod"  # a live refresh keeps the user's zoom

    panel = GatesOverTimePanel(story.repo, "model", "prod")
    assert panel.error == "" and "rollbackkit-gates-time" in panel._dom_classes
    assert "1 rollbacks" in panel.header.value and panel.figure in panel.children


# ----------------------------------------------------------------------------- late labels, a restart
@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, pd.DataFrame]:
    """An iris project (string classes, NaN and nullable inputs): v1.0.0 in prod, v1.2.0 with a late-label gate."""
    root = tmp_path_factory.mktemp("gates-time")
    repo, _ = build_project(root, fit, CASE, rounds=(5, 5))
    train = widened(CASE, 600, seed=5)
    X = train.drop(columns=["target"]).assign(plan=train["plan"].astype("string").fillna("missing").astype(object))
    Registry(repo).register(
        "model", fit(X, train["target"], 20), train, target="target", version="v1.2.0",
        preprocess=root / "features.py", gates=LABEL_GATES,
    )  # fmt: skip
    truth = widened(CASE, 400, seed=9)
    return repo, truth


def test_late_labels_show_their_counts_rising_and_the_history_survives_a_restart(
    iris: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, truth = iris
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    environment = ServingEnvironment(repo, "model", "prod", log=log, bake_seconds=600.0)
    try:
        environment.start()
        environment.deploy("v1.2.0", canary=50, reason="retrained")
        inputs = truth.drop(columns=["target"])
        sent = []
        for i in range(0, len(inputs), 20):
            request_id = uuid.uuid4().hex
            answer = environment.predict(inputs.iloc[i : i + 20], key=f"k-{i}", request_id=request_id)
            if answer.version == "v1.2.0":
                sent += [(request_id, row, truth["target"].iloc[i + row]) for row in range(len(answer.outputs))]
        labels = pd.DataFrame(sent, columns=["request_id", "row", "label"])
        assert len(labels) >= 120, len(labels)
        assert environment.check_gates() is None  # no label yet: the accuracy gate waits
        later = datetime.now(UTC) + timedelta(seconds=45)
        environment.watchdog.clock = lambda: later
        for share in (0.2, 0.6, 1.0):  # the labels come in over time
            log.add_labels("model", "prod", labels.iloc[: int(len(labels) * share)], on="request_id")
            environment.check_gates()

        assert environment.watchdog.history.flush(10.0)

        def refuse(*args: object, **kwargs: object) -> None:
            raise OSError("No space left on device")

        log.record_gates = refuse  # type: ignore[method-assign]  # a write that fails: counted, never raised
        environment.check_gates()
        assert environment.watchdog.history.flush(10.0)
        said = environment.status()["background"]
        assert said["failures"] == 1 and "gate history not recorded: OSError: No space" in said["last_failure"]
        assert said["gate_history_dropped"]["write_failed"] == 1
        assert environment.metrics is not None
        metrics = environment.metrics.exposition()[0].decode()
        assert re.search(r"^rollbackkit_background_failures_total\{[^}]*\} 1\.0$", metrics, re.M), metrics[-2000:]

        def slow(name: str, env: str, evaluation: GateEvaluation) -> None:  # a log busy with a backfill
            time.sleep(3.0)
            PredictionLog.record_gates(log, name, env, evaluation)

        log.record_gates = slow  # type: ignore[method-assign]
        classes = sorted(set(truth["target"]))
        wrong = labels.assign(label=[classes[(classes.index(c) + 1) % len(classes)] for c in labels["label"]])
        log.add_labels("model", "prod", wrong, on="request_id")  # the truth says the canary is wrong
        started = time.monotonic()
        moved = environment.check_gates()
        assert moved is not None and moved["assignment"]["version"] == "v1.0.0"
        assert time.monotonic() - started < 1.5  # rolled back without waiting on the 3 s history write
        entries = environment.journal.entries()
        breach = next(e for e in reversed(entries) if e["event"] == "gate-breach")
        rollback = next(e for e in reversed(entries) if e["event"] == "rollback")
        assert breach["failed_gates"] == rollback["failed_gates"] == ["accuracy"]  # names as data, never parsed
    finally:
        environment.stop()
        log.close()

    offline = rollbackkit.gate_history(repo, "model", "prod", version="v1.2.0")
    assert offline.where == "log file"
    accuracy = offline.series["accuracy"]
    assert accuracy.labelled[0] == 0 and accuracy.statuses[0] == "insufficient"
    assert list(accuracy.labelled) == sorted(accuracy.labelled) and accuracy.labelled[-1] == len(labels)
    assert len(set(accuracy.labelled)) >= 3, accuracy.labelled  # rising, as they came
    assert accuracy.awaiting[0] == len(labels) and accuracy.awaiting[-1] == 0
    assert accuracy.statuses[-2:] == ("pass", "fail") and accuracy.values[-1] == 0.0  # the stop waited for it
    assert offline.evaluations[-1].decision == "rollback"
    assert offline.series["errors"].labelled == (None,) * len(offline.evaluations)

    figure = gates_figure(offline)
    labelled = next(t for t in figure.data if t.name == "labelled rows")
    assert list(labelled.y) == list(accuracy.labelled)
    value = next(t for t in figure.data if t.name == "value" and t.xaxis == labelled.xaxis)
    assert labelled.yaxis != value.yaxis  # a second axis: counts beside the accuracy

    with running_server(repo, "model", "prod", watchdog=60.0) as server:  # a restart: the log file is its
        served = rollbackkit.gate_history(repo, "model", "prod", version="v1.2.0")
        assert served.where == server.url
        assert served.evaluations == offline.evaluations and not served.truncated
        few = rollbackkit.gate_history(repo, "model", "prod", version="v1.2.0", most=3)  # thinned at the server
        assert few.truncated and len(few.evaluations) == 3 and few.evaluations[-1] == offline.evaluations[-1]
        assert "Thinned" in summary_html(few) and "Thinned" not in summary_html(served)
        since = offline.evaluations[1].time.isoformat()
        assert (
            rollbackkit.gate_history(repo, "model", "prod", since=since).evaluations[0].time
            >= offline.evaluations[1].time
        )

    monkeypatch.setattr("rollbackkit.ops.gate_history.log_server", lambda *args: "http://127.0.0.1:1")
    fallen = rollbackkit.gate_history(repo, "model", "prod", version="v1.2.0")  # the server stopped mid-call
    assert fallen.where == "log file" and fallen.evaluations == offline.evaluations


# ----------------------------------------------------------------------------- the shared store
def _evaluation(at: datetime, decision: str, value: float, labelled: int) -> GateEvaluation:
    status = "fail" if decision == "rollback" else "pass"
    seen = GateSeen(
        "accuracy", "label_metric", "rollback", status, value, {"min": 0.8}, 200, labelled, 200, 200 - labelled
    )
    return GateEvaluation(at, "model#prod#3", "v1.1.0", "canary", decision, 200, (seen,))


def test_an_old_store_without_the_table_is_an_empty_history_then_a_new_replica_adds_it_at_schema_2(
    store_url: str,
) -> None:
    open_store(store_url)
    with psycopg.connect(store_url, autocommit=True) as con:  # a store only older replicas have opened
        con.execute("DROP TABLE rollbackkit.gate_evaluations")
    reader = PostgresLog(open_store(store_url, migrate=False), flush_interval=0.05, replica="cli")
    try:
        assert reader.gate_history("model", "prod") == []  # a new client reads an old store: nothing recorded yet
    finally:
        reader.close()
    log = PostgresLog(open_store(store_url), flush_interval=0.05, replica="r1")  # a new replica starts
    try:
        start = datetime.now(UTC) - timedelta(days=3)
        for i in range(40):
            decision = "rollback" if i == 39 else "pass"
            log.record_gates(
                "model", "prod", _evaluation(start + timedelta(seconds=5 * i), decision, 0.9 - i / 1000, i)
            )
        kept = log.gate_history("model", "prod")
        assert [e.decision for e in kept][-1] == "rollback" and kept[-1].gates[0].status == "fail"
        assert sum(e.evaluations for e in kept) == 40 and len(kept) < 10  # thinned, nothing uncounted
        assert kept[0].evaluations == 1 and kept[0].time == start  # a run's first evaluation keeps its row
        assert log.prune(days=1) == 0 and log.gate_history("model", "prod") == []  # the log's retention
    finally:
        log.close()
    with psycopg.connect(store_url) as con:  # older replicas and CLIs still open it
        assert con.execute("SELECT value FROM rollbackkit.meta WHERE key = 'schema_version'").fetchone() == ("2",)
    open_store(store_url, migrate=False)


def kept_rows(evaluations: list[GateEvaluation]) -> list[dict[str, Any]]:
    """What a log keeps of ``evaluations``: the backends' own rule (:func:`fold`) over a list."""
    rows: list[dict[str, Any]] = []
    for e in evaluations:
        where, row = fold(rows[-1] if rows else None, "model", "prod", e)
        if where == "merge":
            rows[-1] = row
        else:
            rows.append(row)
    return rows


def test_the_log_file_merges_like_runs_keeping_each_gates_low_and_high_and_never_across_downtime(
    tmp_path: Path,
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    values = [0.9 - 0.08 * (i == 17) + 0.05 * (i == 23) for i in range(40)]  # a dip and a peak inside the run
    times = [start + timedelta(seconds=5 * i) for i in range(30)] + [
        start + timedelta(days=1, seconds=5 * i)
        for i in range(10)  # the server was down for a day
    ]
    week = [_evaluation(t, "pass", v, 200) for t, v in zip(times, values, strict=True)]
    log = PredictionLog(tmp_path / "predictions.duckdb")
    try:
        for e in week:
            log.record_gates("model", "prod", e)
        stored = log.gate_history("model", "prod")
    finally:
        log.close()
    expected = [GateEvaluation.from_dict(r) for r in kept_rows(week)]
    assert stored == expected and sum(e.evaluations for e in stored) == 40  # DuckDB's UPDATE is the rule
    lows = [g.low for e in stored for g in e.gates if g.low is not None]
    highs = [g.high for e in stored for g in e.gates if g.high is not None]
    assert min(lows) == pytest.approx(0.82) and max(highs) == pytest.approx(0.95)  # never lost in a merge
    assert all(g.low <= g.value <= g.high for e in stored if e.evaluations > 1 for g in e.gates)  # type: ignore[operator]
    after = [e for e in stored if e.time >= times[30]]
    assert after[0].first == after[0].time == times[30] and after[0].evaluations == 1  # a new row after the gap
    assert all((e.first or e.time) >= times[30] or e.time <= times[29] for e in stored)  # none spans the downtime
    figure = gates_figure(GateHistory("model", "prod", tuple(stored)))
    value = next(t for t in figure.data if t.name == "value")
    assert value.error_y.array is not None and any("from 0.82 to" in h for h in value.hovertext)


def test_the_recorder_never_waits_and_counts_what_it_drops() -> None:
    entered, go, written, failures = threading.Event(), threading.Event(), [], []

    def record_gates(name: str, env: str, evaluation: GateEvaluation) -> None:  # a log held by a long backfill
        entered.set()
        go.wait(10)
        written.append(evaluation)

    log = SimpleNamespace(record_gates=record_gates)
    recorder = GateRecorder(SimpleNamespace(log=log, name="model", env="prod", background_failed=failures.append))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    evaluations = [_evaluation(start + timedelta(seconds=i), "pass", 0.9, 200) for i in range(PENDING + 2)]
    recorder.record(evaluations[0])
    assert entered.wait(10)  # the writer is stuck on the first
    began = time.monotonic()
    for evaluation in evaluations[1:]:
        recorder.record(evaluation)
    assert time.monotonic() - began < 0.5  # the watchdog never waits on it
    go.set()
    assert recorder.flush(10.0)
    assert recorder.dropped == 1 and written == [evaluations[0], *evaluations[2:]]  # the oldest waiting, in order
    assert failures == []  # a repeat inside the run is trimmed, no failure: every decision change is kept
    assert recorder.background.history_dropped == {"repeat": 1, "change": 0, "write_failed": 0, "not_built": 0}


def test_a_record_that_cannot_be_built_is_counted_never_raised() -> None:
    failures: list[str] = []
    environment = SimpleNamespace(
        log=object(), name="model", env="prod", background=Background(), background_failed=failures.append
    )
    GateRecorder(environment).evaluated(object(), deployment="d", version="v1.0.0", role="live")  # type: ignore[arg-type]
    assert len(failures) == 1 and "gate history not recorded: AttributeError" in failures[0]
    assert environment.background.history_dropped["not_built"] == 1


def test_a_week_of_evaluations_stays_small_keeps_every_change_and_plots_under_the_cap() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    decisions = ["rollback" if i % 2880 in range(100, 220) else "pass" for i in range(20_160)]  # every 30 s
    week = [_evaluation(start + timedelta(seconds=30 * i), d, 0.85, 200) for i, d in enumerate(decisions)]
    rows = kept_rows(week)  # a failing hour a day: 14 runs, each thinned
    assert len(rows) < len(week) / 15 and sum(r["evaluations"] for r in rows) == len(week)
    changes = sum(a != b for a, b in itertools.pairwise(decisions))
    assert sum(a["decision"] != b["decision"] for a, b in itertools.pairwise(rows)) == changes == 14

    once = GateHistory("model", "prod", tuple(GateEvaluation.from_dict(r) for r in rows))
    failures = sum(e.decision == "rollback" for e in once.evaluations)
    thin = once.thinned(failures + 100)  # room for every failure: each is kept, and each change
    assert sum(e.decision == "rollback" for e in thin.evaluations) == failures
    assert sum(a.decision != b.decision for a, b in itertools.pairwise(thin.evaluations)) == changes

    months = GateHistory("model", "prod", tuple(replace(e, time=e.time + timedelta(days=7 * k))
                                                for k in range(20) for e in once.evaluations))  # fmt: skip
    figure = gates_figure(months)
    assert points_in(figure) <= MAX_POINTS
    shown = [e.decision for e in months.thinned(len(figure.data[0].x)).evaluations]
    assert sum(a != b for a, b in itertools.pairwise(shown)) == 20 * changes  # every change still drawn


def test_hover_says_bounds_in_the_one_wording_and_escapes_what_the_log_holds() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    odd = "<img src=x onerror=alert(1)>"  # a store anyone with write access can fill
    seen = [
        GateSeen(f"lat{odd}", "latency", "rollback", "fail", 312.5, {"max_ms": 250.0}, 900, failing=f"2 of 3{odd}"),
        GateSeen("tail", "prediction_tail", "warn", "pass", 0.012, {"share_above_p99_max": 0.05}, 900),
        GateSeen("ratio", "error_rate", "rollback", "pass", 0.01, {"max": 0.05, "max_ratio": 2.0}, 900),
    ]
    at = [start + timedelta(minutes=i) for i in range(2)]
    history = GateHistory("model", "prod", tuple(GateEvaluation(t, "d", f"v1.1.0{odd}", "canary", "rollback", 900,
                                                                tuple(seen)) for t in at))  # fmt: skip
    assert history.series["tail"].bounds[-1] == 0.05  # the tail gate's bound drawn, as the gates declare it
    figure = gates_figure(history)
    hover = "".join(h for t in figure.data for h in (t.hovertext or ()))
    titles = "".join(a.text for a in figure.layout.annotations)
    assert "<img" not in hover and "<img" not in titles and "&lt;img src=x" in hover
    assert "bounds: &lt;= 250 ms" in hover and "bounds: share above p99 &lt;= 0.05" in hover
    assert "bounds: &lt;= 0.05, max_ratio 2" in hover and "312.5" in hover


# ----------------------------------------------------------------------------- nothing to show
def test_nothing_to_show_is_one_line_in_the_panel(iris: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    repo, _ = iris
    empty = rollbackkit.gate_history(repo, "model", "prod", version="v9.9.9")
    assert empty.empty and gates_figure(empty).data == ()
    panel = GatesOverTimePanel(repo, "model", "prod", version="v9.9.9")
    assert "No gate evaluations recorded for model in prod" in panel.header.value and panel.figure not in panel.children

    with pytest.raises(RollbackkitError) as unknown:
        rollbackkit.gate_history(repo, "model", "nowhere")
    panel = GatesOverTimePanel(repo, "model", "nowhere")
    assert panel.error.count("rollbackkit-error") == 1 and html.escape(unknown.value.message) in panel.error
    assert "Traceback" not in panel.error and panel.figure not in panel.children

    (repo / ".rollbackkit" / "local" / "predictions.duckdb").rename(tmp_path / "kept.duckdb")
    try:
        panel = GatesOverTimePanel(repo, "model", "prod")
        assert "There is no prediction log for model in prod" in panel.error
    finally:
        (tmp_path / "kept.duckdb").rename(repo / ".rollbackkit" / "local" / "predictions.duckdb")


@pytest.fixture(autouse=True)
def _no_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ROLLBACKKIT_STORE", raising=False)
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)  # the servers' token, for the admin calls
    yield
