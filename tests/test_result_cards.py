"""The issue-22 results read as cards at the end of a cell: a readable diff, a rollback preview,
a timeline, a gate history, a drift series; a timeline answers "what serves at t" for any time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from rollbackkit.analysis.drift_series import bin_counts, drift_series, numeric_binning
from rollbackkit.analysis.preview import SliceDelta, Transition
from rollbackkit.ops.compare import readable_diff
from rollbackkit.ops.gate_history import GateEvaluation, GateHistory, GateSeen, RollbackMark
from rollbackkit.ops.preview import RollbackPreview
from rollbackkit.ops.preview_parts import VersionPreview
from rollbackkit.ops.serving_now import ServingNow
from rollbackkit.ops.timeline_types import Span, Timeline, TimelineEvent

from .rich_project import rich_project
from .test_rich_objects import safe, shown

T0 = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"


def _timeline() -> Timeline:
    end = T0 + timedelta(hours=3)
    spans = {
        "v1.0.0": (Span("v1.0.0", T0, T0 + timedelta(hours=1), 100.0, "live", "t1"),
                   Span("v1.0.0", T0 + timedelta(hours=1), T0 + timedelta(hours=2), 90.0, "live", "t2"),
                   Span("v1.0.0", T0 + timedelta(hours=2), end, 100.0, "live", "t3")),
        "v1.1.0": (Span("v1.1.0", T0 + timedelta(hours=1), T0 + timedelta(hours=2), 10.0, "canary", "t2"),),
    }  # fmt: skip
    events = (
        TimelineEvent(T0, "deploy", "v1.0.0", actor="ann"),
        TimelineEvent(T0 + timedelta(hours=1), "canary", "v1.1.0", share=10.0),
        TimelineEvent(T0 + timedelta(hours=2), "auto-rollback", "v1.1.0", reason=SCRIPT, actor="watchdog",
                      detail="rolled back from v1.1.0"),
    )  # fmt: skip
    now = ServingNow("v1.0.0", 100.0, "t3", name="wine", env="prod")
    return Timeline("wine", "prod", T0, end, spans, events, now)


def test_share_at_the_end_or_later_is_what_serves_now_and_naive_times_follow_the_one_rule() -> None:
    t = _timeline()
    assert t.share_at(T0 + timedelta(minutes=90)) == {"v1.0.0": 90.0, "v1.1.0": 10.0}
    assert t.share_at(t.end) == t.share_at(t.end + timedelta(days=3)) == {"v1.0.0": 100.0}  # now: what serves
    naive = (T0 + timedelta(minutes=90)).astimezone().replace(tzinfo=None)  # local time, as a notebook means it
    assert t.share_at(naive) == {"v1.0.0": 90.0, "v1.1.0": 10.0}
    assert t.share_at("2026-11-30T19:30:00+00:00") == {"v1.0.0": 90.0, "v1.1.0": 10.0}
    assert t.share_at(T0 - timedelta(hours=1)) == {}  # before anything served


def test_a_timeline_card_says_what_serves_now_and_the_last_events() -> None:
    html, text = shown(_timeline())
    safe(html)
    assert "v1.0.0 (100%)" in text and "auto-rollback" in text and "2026-11-30 20:00:00 UTC" in text
    assert SCRIPT not in html and "1 deploy, 1 canary, 1 auto-rollback" in text
    empty = Timeline("wine", "staging", None, T0, known_envs=("prod",))
    assert "no history in staging" in shown(empty)[1]


def test_a_gate_history_card_lists_each_gates_last_status_and_failures() -> None:
    def seen(status: str, value: float) -> GateSeen:
        return GateSeen("errors", "error_rate", "rollback", status, value, {"max": 0.05}, 200)

    evaluations = tuple(
        GateEvaluation(T0 + timedelta(seconds=30 * i), "wine#prod#2", "v1.1.0", "canary",
                       "rollback" if i >= 3 else "pass", 200, (seen("fail" if i >= 3 else "pass", 0.01 * i),))
        for i in range(5)
    )  # fmt: skip
    mark = RollbackMark(T0 + timedelta(minutes=3), "v1.0.0", "v1.1.0", "errors above 0.05", True)
    html, text = shown(GateHistory("wine", "prod", evaluations, (mark,), "log file"))
    safe(html)
    assert "Gate history of wine in prod [rollback]" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("errors"))
    assert row.split()[1:6] == ["error_rate", "fail", "0.04", "0.05", "2"]  # last status, value, bound, failures
    assert "v1.1.0 -> v1.0.0" in text and "watchdog" in text and "rollbackkit-fail" in html
    assert "no evaluation" in shown(GateHistory("wine", "prod", ()))[1]


def test_a_rollback_preview_card_shows_the_flip_share_and_the_parts_with_readable_times() -> None:
    part = VersionPreview(
        "v1.1.0", "canary", 10.0, 600, "2026-11-30T01:54:27.078885+00:00", "2026-11-30T01:58:00.5+00:00", 0.25,
        [SliceDelta("all", 600, 150, 0.25, None, None, None), SliceDelta("west", 100, 90, 0.9, None, None, None)],
        [Transition("Barolo", "Barbera", 120)], None,
    )  # fmt: skip
    preview = RollbackPreview("wine", "prod", "v1.0.0", [part], "classification", "label", None, None, "region",
                              None, "v1.1.0")  # fmt: skip
    html, text = shown(preview)
    safe(html)
    assert "Rollback preview: wine in prod -> v1.0.0" in text and "flip share   25%" in text
    assert "01:54:27 UTC - 01:58:00 UTC" in text and "01:54:27.078885" not in html
    assert "Barolo -> Barbera" in text and "west" in text and "90%" in text


def test_a_drift_series_card_puts_the_worst_windows_first() -> None:
    rng = np.random.default_rng(3)
    binning = numeric_binning(rng.normal(0, 1, 4000))
    reference = bin_counts(rng.normal(0, 1, 4000), binning)[0]
    windows = [(T0 + timedelta(minutes=k), T0 + timedelta(minutes=k + 1)) for k in range(6)]
    shifts = [0, 0, 0, 0, 2.5, 0]
    counts = np.array([[bin_counts(rng.normal(s, 1, 500), binning)[0] for s in shifts]])
    series = drift_series("alcohol", "psi", binning, reference, counts, np.zeros((1, 6)), windows, ["(all rows)"],
                          version="v1.0.0", threshold=0.2)  # fmt: skip
    html, text = shown(series)
    safe(html)
    assert "Drift of alcohol over time (psi) [fail]" in text and "1 of 6" in text
    worst = text.split("Worst cells")[1].splitlines()[2]
    assert "18:04:00 UTC - 18:05:00 UTC" in worst  # the shifted window first


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rich_project(tmp_path_factory)


def test_a_readable_diff_is_the_diffs_card_with_the_distributions_listed(repo: Path) -> None:
    d = readable_diff("wine@v1.0.0", "wine@v1.1.0", repo)
    html, text = shown(d)
    safe(html)
    assert "Reference distributions" in text and d.distributions[0].name in text
    assert len(html) < 60_000  # a card, not a dump of every bin


def test_gates_over_time_put_rollbacks_on_their_own_strip_and_count_labelled_rows_in_whole_ticks() -> None:
    from rollbackkit.widgets.gates_time import gates_figure, whole_step

    def evaluation(i: int) -> GateEvaluation:
        errors = GateSeen("errors", "error_rate", "rollback", "pass", 0.0, {"max": 0.05}, 200)
        accuracy = GateSeen("accuracy", "label_metric", "rollback", "pass", 0.9, {"min": 0.8}, 200, 7 * i, 200,
                            200 - 7 * i)  # fmt: skip
        return GateEvaluation(T0 + timedelta(seconds=30 * i), "wine#prod#2", "v1.1.0", "canary", "pass", 200,
                              (errors, accuracy))  # fmt: skip

    mark = RollbackMark(T0 + timedelta(minutes=5), "v1.0.0", "v1.1.0", "errors above 0.05", False)
    figure = gates_figure(GateHistory("wine", "prod", tuple(evaluation(i) for i in range(28)), (mark,)))
    rolled = next(t for t in figure.data if t.name == "rollback")
    gate_axes = {t.yaxis for t in figure.data if t.name in ("value", "bound", "labelled rows")}
    assert rolled.yaxis not in gate_axes and rolled.y == (0.5,)  # not a point at y=0 of the error rate's plot
    assert figure.layout.annotations[0].text == "rollbacks"
    assert len(figure.layout.shapes) == 2  # the line through each gate's plot
    labelled = next(t for t in figure.data if t.name == "labelled rows")
    axis = figure.layout["yaxis" + labelled.yaxis[1:]]
    assert axis.dtick == whole_step(189) == 50 and axis.tick0 == 0  # 0, 50, 100...: never 148.7
    assert [whole_step(n) for n in (3, 9, 40, 240, 1900)] == [1, 2, 10, 50, 500]
