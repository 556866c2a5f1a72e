"""Drift over time: counts binned where the log lives (DuckDB file, PostgreSQL store), the metric of
each window against a direct numpy/scipy computation on that window's raw rows, the public
``drift_over_time`` on real projects (the demo's churn, a wine classifier with string classes,
NaN and nullable inputs), and the panel (line, heatmap, a clicked cell's histogram)."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit.analysis.drift_series import (
    bin_counts,
    bin_sums,
    categorical_binning,
    drift_series,
    metric_value,
    numeric_binning,
)
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog
from tests.postgres import PgCluster

ENV = "prod"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REQUESTS = 24
"""Requests logged per bundle, one minute apart, 20 rows each, drifting upward over time."""


def _inputs(k: int, rng: np.random.Generator) -> pd.DataFrame:
    """Request ``k``'s rows: a float drifting with k (NaN sprinkled), nullable Int64, boolean and a category."""
    income = rng.normal(k / 6, 1.0, 20)
    income[k % 4] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "visits": pd.array([None if i % 7 == 0 else i + k for i in range(20)], dtype="Int64"),
            "member": pd.array([None if i % 9 == 0 else (i + k) % 3 == 0 for i in range(20)], dtype="boolean"),
            "plan": pd.Categorical(rng.choice(["gold", "basic", "trial"], 20, p=[0.2, 0.5 - k / 80, 0.3 + k / 80])),
        }
    )


def _outputs(k: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"churn": rng.choice(["yes", "no"], 20, p=[0.2 + k / 60, 0.8 - k / 60]), "p": rng.random(20)})


@pytest.fixture(scope="module")
def store_database(postgres: PgCluster) -> str:
    return postgres.create_database(f"rk_drift_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def drifting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str, list]]:
    """A log (each backend) holding 24 drifting requests of two versions; the raw rows kept beside it."""
    if request.param == "duckdb":
        log: Any = PredictionLog(tmp_path_factory.mktemp("drift") / "predictions.duckdb")
    else:
        log = PostgresLog(open_store(request.getfixturevalue("store_database")), flush_interval=0.05)
    log.start()
    name, rng, raw = f"churn-{uuid.uuid4().hex[:6]}", np.random.default_rng(7), []
    for k in range(REQUESTS):
        inputs, outputs = _inputs(k, rng), _outputs(k, rng)
        version = "v1.0.0" if k < 16 else "v1.1.0"
        when = START + timedelta(minutes=k, microseconds=k)
        meta = {
            "request_id": f"r{k:03d}", "time": when, "env": ENV, "name": name, "version": version,
            "bundle_id": f"b-{version}", "slot": "live", "deployment": f"{name}@{version}", "latency_ms": 1.0,
            "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        log.record(meta, inputs, outputs)
        raw.append((when, version, inputs, outputs))
    failed = {**meta, "request_id": "failed", "error": "boom"}  # a failed request is never counted
    log.record(failed, _inputs(0, rng), None)
    yield log, name, raw
    log.close()


def _direct(raw: list, windows: int, pick: Any) -> list[pd.Series]:
    """Per window, the raw values ``pick(inputs, outputs)`` of the requests in it (the log's window rule)."""
    first, last = raw[0][0], raw[-1][0]
    span = (last - first) // timedelta(microseconds=1)
    out: list[list[pd.Series]] = [[] for _ in range(windows)]
    for when, _, inputs, outputs in raw:
        w = min((when - first) // timedelta(microseconds=1) * windows // span, windows - 1)
        out[w].append(pick(inputs, outputs))
    return [pd.concat(parts, ignore_index=True) for parts in out]


def test_a_windows_psi_js_and_tail_are_the_gates_own_on_that_windows_rows_in_both_logs(
    drifting: tuple[Any, str, list],
) -> None:
    from rollbackkit.analysis.drift import categorical_drift, numeric_drift

    log, name, raw = drifting
    income = np.random.default_rng(1).normal(1.0, 1.0, 3000)
    binning = numeric_binning(income)
    answer = log.binned(name, ENV, "income", list(binning.edges), windows=6)
    reference, _ = bin_counts(income, binning)
    for w, values in enumerate(_direct(raw, 6, lambda i, o: i["income"])):
        counts, missing = bin_counts(values, binning)
        assert answer["counts"][0][w] == counts.tolist() and answer["missing"][0][w] == missing == 1 * 4
        gate = numeric_drift(income, values)  # the gate's metrics on the window's raw rows
        cell = np.array(answer["counts"][0][w])
        assert metric_value("psi", binning, reference, cell) == pytest.approx(gate.psi, rel=1e-9)
        assert metric_value("js", binning, reference, cell) == pytest.approx(gate.js, rel=1e-9)
        assert metric_value("tail", binning, reference, cell) == pytest.approx(sum(gate.tail_share.values()))
    member = pd.Series([True, False, None, False, True, False], dtype="boolean")  # missing is a category
    plans = categorical_binning(member)
    answer = log.binned(name, ENV, "member", list(plans.categories), windows=3)
    ref_counts, ref_missing = bin_counts(member, plans)
    for w, values in enumerate(_direct(raw, 3, lambda i, o: i["member"])):
        gate = categorical_drift(member, values)
        got = metric_value(
            "psi", plans, ref_counts, np.array(answer["counts"][0][w]), ref_missing=ref_missing,
            missing=answer["missing"][0][w],
        )  # fmt: skip
        assert got == pytest.approx(gate.psi, rel=1e-9)


def test_wasserstein_from_bin_sums_follows_scipy_on_the_raw_values_far_beyond_the_reference() -> None:
    from scipy.stats import wasserstein_distance

    from rollbackkit.analysis.drift_series import bin_sums

    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 5000)
    binning = numeric_binning(reference)
    ref_counts, ref_sums = bin_counts(reference, binning)[0], bin_sums(reference, binning)
    for current in (rng.normal(3, 1, 2000), rng.normal(10, 1, 2000), rng.normal(0, 3, 2000), rng.normal(0, 1, 2000)):
        counts, sums = bin_counts(current, binning)[0], bin_sums(current, binning)
        got = metric_value("wasserstein", binning, ref_counts, counts, ref_sums=ref_sums, sums=sums)
        assert got == pytest.approx(wasserstein_distance(reference, current), rel=0.1, abs=0.05)


def test_noise_windows_stay_under_the_gate_line_and_low_n_cells_are_marked() -> None:
    rng = np.random.default_rng(11)
    reference = rng.normal(0, 1, 4000)
    binning = numeric_binning(reference)
    ref_counts, _ = bin_counts(reference, binning)
    windows = [(START + timedelta(minutes=k), START + timedelta(minutes=k + 1)) for k in range(40)]
    sizes = [15] * 20 + [400] * 20
    counts = np.array([[bin_counts(rng.normal(0, 1, n), binning)[0] for n in sizes]])
    series = drift_series("x", "psi", binning, ref_counts, counts, np.zeros((1, 40)), windows, ["(all rows)"])
    assert series.min_rows == 100 and series.low_n[0].tolist() == [True] * 20 + [False] * 20
    assert np.median(series.values[0, 20:]) < 0.05  # no drift: far under a 0.25 gate on the gate's bins
    merged = series.by_rows(24)
    assert len(merged.windows) == 24 or (merged.n.sum(axis=0) >= series.min_rows).all()
    assert (merged.n.sum(axis=0) >= series.min_rows).all() and "; none under 100)" in merged.notes[-1]
    assert int(merged.counts.sum()) == int(counts.sum()) and merged.windows[-1][1] == windows[-1][1]


def test_nullable_integer_boolean_and_category_columns_by_version_in_both_logs(drifting: tuple[Any, str, list]) -> None:
    log, name, raw = drifting
    visits = numeric_binning(pd.array([1, 5, 9, 30], dtype="Int64"), bins=5)
    answer = log.binned(name, ENV, "visits", list(visits.edges), windows=3)
    for w, values in enumerate(_direct(raw, 3, lambda i, o: i["visits"])):
        counts, missing = bin_counts(values, visits)
        assert answer["counts"][0][w] == counts.tolist() and answer["missing"][0][w] == missing > 0
    plans = categorical_binning(pd.Categorical(["basic", "gold", "gold"]))
    answer = log.binned(name, ENV, "plan", list(plans.categories), windows=3, by="member")
    assert answer["slices"] == ["(missing)", "False", "True"]  # a boolean spelled as the labels and the preview do
    for w, frame in enumerate(_direct(raw, 3, lambda i, o: i[["plan", "member"]])):
        for s, member in enumerate([None, False, True]):
            part = frame[frame["member"].isna()] if member is None else frame[frame["member"] == member]
            counts, _ = bin_counts(part["plan"], plans)
            assert answer["counts"][s][w] == counts.tolist()  # trial lands in (other)
    labels = categorical_binning(["no", "yes", "no"])
    answer = log.binned(name, ENV, "churn", list(labels.categories), windows=2, by="version", output=True)
    assert answer["slices"] == ["v1.0.0", "v1.1.0"]
    assert sum(map(sum, answer["n"])) == REQUESTS * 20  # the failed request is not counted
    primary = log.binned(name, ENV, "primary_output", [0.0, 0.5, 1.0], windows=2, versions=["v1.1.0"])
    assert sum(primary["n"][0]) == 8 * 20


def test_unknown_column_and_empty_range_in_both_logs(drifting: tuple[Any, str, list]) -> None:
    log, name, _ = drifting
    with pytest.raises(InvalidInput, match=r"no input column 'incme'.*income, member, plan, visits"):
        log.binned(name, ENV, "incme", [0.0, 1.0])
    with pytest.raises(InvalidInput, match=r"slice column \(by\) 'region'"):
        log.binned(name, ENV, "income", [0.0, 1.0], by="region")
    nothing = log.binned("nobody", ENV, "primary_output", [0.0, 1.0])
    assert nothing["slices"] == [] and nothing["counts"] == []


def test_series_metric_per_window_and_categorical_refusal() -> None:
    binning = categorical_binning(["a", "b", "b", True])
    assert binning.categories == ("b", "True", "a")  # most rows first, ties by text
    with pytest.raises(InvalidInput, match="needs a numeric column"):
        drift_series("plan", "wasserstein", binning, np.array([1, 2, 1, 0]), np.zeros((1, 1, 4)), np.zeros((1, 1)),
                     [(START, START)], ["(all rows)"])  # fmt: skip
    series = drift_series(
        "plan", "psi", binning, np.array([1, 2, 1, 0]), np.array([[[0, 0, 0, 0], [1, 2, 1, 0]]]), np.array([[3, 0]]),
        [(START, START), (START, START)], ["(all rows)"],
    )  # fmt: skip
    assert np.isnan(series.values[0, 0]) and series.values[0, 1] == pytest.approx(0.0)
    assert series.frame()["missing"].tolist() == [3, 0]


# ----------------------------------------------------------------------------- on real projects
@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, pd.DataFrame]:
    """``model@v1.0.0`` (wine, INTEGER classes 0/1/2) live in prod with 1,200 logged rows whose first
    feature drifts upward in the second half."""
    from rollbackkit.serving.environment import ServingEnvironment
    from tests.story import Case, build_project
    from tests.test_matrix import pipeline

    case = Case("wine-integer-classes", "wine", "int")
    root = tmp_path_factory.mktemp("drift-wine")
    repo, live = build_project(root, lambda X, y, n: pipeline(case, list(X.columns[:6]), n).fit(X, y), case)
    live = live.iloc[:1200].copy()
    first = live.columns[0]
    live.loc[600:, first] = live.loc[600:, first] * 1.5
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()
        for i in range(0, 1200, 100):
            environment.predict(live.iloc[i : i + 100], key=f"k{i}")
    finally:
        log.close()
    return repo, live


def test_drift_over_time_on_a_wine_classifier_rises_where_the_feature_drifts(wine: tuple[Path, pd.DataFrame]) -> None:
    import rollbackkit

    repo, live = wine
    first = str(live.columns[0])
    series = rollbackkit.drift_over_time(repo, "model", "prod", first, windows=2)
    assert series.slices == ["(all rows)"] and series.version == "v1.0.0"
    assert int(series.n.sum()) + int(series.missing.sum()) == 1200
    assert int(series.missing.sum()) == int(live[first].isna().sum())  # NaN counted as missing, not binned
    assert series.values[0, 1] > series.values[0, 0] + 0.2
    labels = rollbackkit.drift_over_time(repo, "model", "prod", windows=3, by="plan")  # integer classes
    assert labels.kind == "categorical" and set(labels.binning.categories) <= {"0", "1", "2"}  # by class shares
    assert "(missing)" in labels.slices and np.isfinite(labels.values).any()
    visits = rollbackkit.drift_over_time(repo, "model", "prod", "visits", metric="tail", windows=3)  # Int64
    assert visits.kind == "numeric" and (visits.missing > 0).all()
    promo = rollbackkit.drift_over_time(repo, "model", "prod", "promo", metric="js", windows=3)  # boolean
    assert promo.binning.categories and set(promo.binning.categories) <= {"True", "False"}
    with pytest.raises(InvalidInput, match="needs a numeric column"):
        rollbackkit.drift_over_time(repo, "model", "prod", "plan", metric="wasserstein")
    with pytest.raises(InvalidInput, match=f"no input feature or primary output 'incme'.*{first}"):
        rollbackkit.drift_over_time(repo, "model", "prod", "incme")
    with pytest.raises(InvalidInput, match="Nothing was logged"):
        rollbackkit.drift_over_time(repo, "model", "prod", since="2030-01-01T00:00:00+00:00")


def test_each_slice_is_compared_with_the_same_slice_of_the_reference(wine: tuple[Path, pd.DataFrame]) -> None:
    import rollbackkit
    from rollbackkit.analysis.drift_formulas import bin_shares, psi, psi_edges
    from rollbackkit.registry.assignments import resolve
    from rollbackkit.registry.contents import describe
    from rollbackkit.registry.repository import Repository

    repo, live = wine
    first = str(live.columns[0])
    series = rollbackkit.drift_over_time(repo, "model", "prod", first, windows=1, by="plan")
    registry = Repository(repo)
    ref = describe(registry, resolve(registry, "model@v1.0.0")).reference_part("input")
    assert series.per_slice_reference and series.compared_with == "the same slice of the reference"
    deciles = psi_edges(np.sort(ref[first].dropna().to_numpy()))  # one set of bins for every slice
    for i, plan in enumerate(series.slices):
        if plan.startswith("("):
            continue
        a, b = (np.sort(f.loc[f["plan"] == plan, first].dropna().to_numpy()) for f in (ref, live))
        assert series.values[i, 0] == pytest.approx(psi(bin_shares(a, deciles), bin_shares(b, deciles)), rel=1e-9)
    from scipy.stats import wasserstein_distance

    far = rollbackkit.drift_over_time(repo, "model", "prod", first, metric="wasserstein", windows=1)
    assert far.sums is not None and not any("caps" in note for note in far.notes)  # the log's per-bin sums
    raw = wasserstein_distance(ref[first].dropna(), live[first].dropna())  # scipy on the raw values
    assert far.values[0, 0] == pytest.approx(raw, rel=0.1)
    by_version = rollbackkit.drift_over_time(repo, "model", "prod", first, windows=1, by="version")
    assert not by_version.per_slice_reference and "vs the whole reference" in by_version.notes[0]


def test_naive_times_are_local_and_since_alone_runs_up_to_now(wine: tuple[Path, pd.DataFrame], new_york: None) -> None:
    import rollbackkit
    from rollbackkit.ops.drift_series import _iso

    assert _iso(datetime(2026, 3, 1, 7, 0), "since") == "2026-03-01T12:00:00+00:00"  # a notebook's local clock
    assert _iso("2026-03-01T07:00:00", "since") == "2026-03-01T12:00:00+00:00"
    assert _iso(pd.Timestamp("2026-03-01 13:00", tz="UTC"), "since") == "2026-03-01T13:00:00+00:00"
    since = datetime.now() - timedelta(days=2)  # naive local, as datetime.now() gives it
    series = rollbackkit.drift_over_time(wine[0], "model", "prod", windows=4, since=since)
    assert abs(series.windows[0][0] - (datetime.now(UTC) - timedelta(days=2))) < timedelta(minutes=1)
    assert abs(series.windows[-1][1] - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_running_server_counts_its_log_for_the_notebook(
    wine: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rollbackkit
    from tests.servers import TOKEN, running_server

    repo, live = wine
    first = str(live.columns[0])
    direct = rollbackkit.drift_over_time(repo, "model", "prod", first, windows=4, by="region")
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)
    with running_server(repo, "model", "prod") as server:  # it holds the log file: the counts come from it
        served = rollbackkit.drift_over_time(repo, "model", "prod", first, windows=4, by="region", server=server.url)
    assert served.slices == direct.slices and (served.counts == direct.counts).all()
    np.testing.assert_allclose(served.values, direct.values)


def test_panel_draws_line_heatmap_and_the_clicked_cell_under_the_point_cap(logged: Path) -> None:
    from rollbackkit.widgets import DriftOverTimePanel
    from rollbackkit.widgets._common import MAX_POINTS, points_in

    auto = DriftOverTimePanel(logged, "churn", "prod")  # default windows: each with enough rows
    assert auto.series is not None and (auto.series.n.sum(axis=0) >= auto.series.min_rows).all()
    assert " each; " in auto.notes.value and auto.heatmap.data[0].zmin == 0 and auto.line.layout.uirevision
    panel = DriftOverTimePanel(logged, "churn", "prod", windows=300, by="version")
    assert panel.series is not None and "rollbackkit-error" not in panel.message.value
    assert set(panel.series.slices) == {"v1.0.0", "v1.1.0"}
    assert [t.name for t in panel.line.data] == panel.series.slices
    assert points_in(panel.line) + points_in(panel.heatmap) + points_in(panel.detail_figure) <= MAX_POINTS
    low = panel.series.low_n[1]
    assert low.any() and list(panel.line.data[1].marker.symbol) == ["circle-open" if x else "circle" for x in low]
    shown = panel.heatmap.data[0].z  # low-n cells masked (blank), their n in the hover
    assert all(v is None or np.isnan(v) for v, x in zip(shown[1], low, strict=True) if x)
    assert len(panel.heatmap.data) == 1 and panel.heatmap.layout.xaxis.title.text == "time (UTC)"
    assert "vs the whole reference" in panel.heatmap.layout.title.text and "fewer than" in panel.notes.value
    window = int(np.flatnonzero(panel.series.n[1] > 0)[0])
    panel._clicked(panel.line.data[0], SimpleNamespace(point_inds=[window]))  # a point of v1.0.0's line
    assert panel.selected == (0, window)
    panel._clicked(panel.heatmap.data[0], SimpleNamespace(point_inds=[[1, window]]))  # a heatmap cell: row, column
    assert panel.selected == (1, window)
    _, cur = panel.series.shares(1, window)
    drawn = panel.detail_figure.data[1]
    assert list(drawn.customdata if panel.series.kind == "numeric" else drawn.y) == pytest.approx(list(cur))
    assert "v1.1.0" in panel.detail_title.value and re.search(
        r"\d\d:\d\d:\d\d to \d\d:\d\d:\d\d UTC", panel.detail_title.value
    )
    panel.view.value = "ECDF"
    if panel.series.kind == "numeric":
        assert panel.detail_figure.data[0].y[-1] == pytest.approx(1.0)
    for bad in (0, 5000):
        refused = DriftOverTimePanel(logged, "churn", "prod", windows=bad)
        assert refused.series is None and refused.message.value.count("rollbackkit-error") == 1
        assert "out of range" in refused.message.value
    broken = DriftOverTimePanel(logged, "churn", "prod", "no_such_column")
    assert broken.series is None and "Known columns" in broken.message.value and "Traceback" not in broken.message.value
    assert not broken.line.data
    nowhere = DriftOverTimePanel(logged, "churn", "nowhere")
    assert nowhere.series is None and nowhere.message.value.count("rollbackkit-error") == 1
    assert "Traceback" not in nowhere.message.value


def test_a_long_series_is_merged_to_draw_and_its_metrics_recomputed_from_counts() -> None:
    from rollbackkit.widgets._common import MAX_POINTS, points_in
    from rollbackkit.widgets.drift_time import drawable, drift_time_figure

    rng = np.random.default_rng(5)
    binning = numeric_binning(rng.normal(0, 1, 2000), bins=8)
    reference, _ = bin_counts(rng.normal(0, 1, 2000), binning)
    counts = rng.integers(0, 50, (13, 1000, binning.n_bins))
    windows = [(START + timedelta(minutes=k), START + timedelta(minutes=k + 1)) for k in range(1000)]
    series = drift_series(
        "x", "psi", binning, reference, counts, np.zeros((13, 1000)), windows, [f"s{i}" for i in range(13)]
    )
    assert points_in(drift_time_figure(series)) <= MAX_POINTS
    shown = drawable(series)
    step = -(-1000 // len(shown.windows))
    assert shown.windows[0] == (windows[0][0], windows[step - 1][1]) and shown.windows[-1][1] == windows[-1][1]
    merged = counts[4, :step].sum(axis=0)
    assert shown.values[4, 0] == pytest.approx(metric_value("psi", binning, reference, merged))
    assert "merged" in shown.notes[-1]


def test_a_version_registered_without_a_reference_is_one_line(
    wine: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rollbackkit
    from rollbackkit.bundle.model import BundleDescription

    monkeypatch.setattr(BundleDescription, "reference_part", lambda self, part: pd.DataFrame())
    with pytest.raises(InvalidInput, match=r"model@v1.0.0 has no reference profile for .*register") as caught:
        rollbackkit.drift_over_time(wine[0], "model", "prod")
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------- drawn where they are
def _drawn_cells(trace: Any) -> list[tuple[Any, Any]]:
    """Each heatmap column's span as plotly draws it: ``x`` as edges when it has one more value
    than the columns, else as centres (cells reaching halfway to their neighbours)."""
    x, columns = list(trace.x), len(trace.z[0])
    if len(x) == columns + 1:
        return list(itertools.pairwise(x))
    mids = [a + (b - a) / 2 for a, b in itertools.pairwise(x)]
    return list(zip([x[0] - (mids[0] - x[0]), *mids], [*mids, x[-1] + (x[-1] - mids[-1])], strict=True))


def test_a_drift_beginning_mid_range_is_drawn_from_its_window_never_before() -> None:
    from rollbackkit.widgets.drift_time import heatmap_trace, line_traces

    rng = np.random.default_rng(11)
    binning = numeric_binning(rng.normal(0, 1, 4000))
    reference, _ = bin_counts(rng.normal(0, 1, 4000), binning)
    fine = [(START + timedelta(seconds=15 * k), START + timedelta(seconds=15 * (k + 1))) for k in range(240)]
    onset = START + timedelta(minutes=36, seconds=10)  # mid-range, inside a fine window
    shifted = [3.0 if end > onset else 0.0 for _, end in fine]  # a fine window holding a drifted row
    counts = np.array([[bin_counts(rng.normal(mu, 1, 30), binning)[0] for mu in shifted]])
    series = drift_series("x", "psi", binning, reference, counts, np.zeros((1, 240)), fine, ["(all rows)"])
    merged = series.by_rows(24)
    first = int(np.flatnonzero(merged.values[0] > 1.0)[0])
    start, end = merged.windows[first]
    assert start <= onset < end  # the merged window that holds the onset
    cells = _drawn_cells(heatmap_trace(merged))
    assert cells[first][0] >= start and cells[first][1] <= end  # the dark cell spans its window only
    assert cells[-1][1] <= fine[-1][1]  # and nothing is drawn past the data's end
    assert all(a < b for a, b in cells) and cells[0][0] >= fine[0][0]
    point = line_traces(merged)[0].x[first]  # the line's point stands at its window's middle
    assert start < point < end and "to" in line_traces(merged)[0].text[first]


def test_values_far_above_the_reference_are_drawn_where_they_are_not_as_a_spike() -> None:
    from rollbackkit.widgets.drift_time import detail_traces

    rng = np.random.default_rng(12)
    reference = rng.normal(13.0, 0.8, 3000)  # an alcohol-like reference: p99 about 14.9
    binning = numeric_binning(reference)
    drifted = rng.uniform(13.8, 16.8, 400)  # mostly above the reference's p99
    counts, sums = bin_counts(drifted, binning)[0], bin_sums(drifted, binning)
    series = drift_series(
        "alcohol", "psi", binning, bin_counts(reference, binning)[0], counts[None, None], np.zeros((1, 1)),
        [(START, START + timedelta(minutes=5))], ["(all rows)"], sums=sums[None, None],
        ref_sums=bin_sums(reference, binning),
    )  # fmt: skip
    ref_bar, bar = detail_traces(series, 0, 0, ecdf=False)
    above = drifted[drifted > binning.edges[-1]]
    left, right = bar.x[-1] - bar.width[-1] / 2, bar.x[-1] + bar.width[-1] / 2
    assert left == pytest.approx(binning.edges[-1])  # from the reference's p99 ...
    assert bar.x[-1] == pytest.approx(above.mean(), rel=1e-6) and right > above.mean()  # ... to where they are
    assert bar.y[-1] * bar.width[-1] == pytest.approx(len(above) / len(drifted))  # the share, spread not piled
    assert "above the reference's p99" in bar.text[-1] and ref_bar.x[-1] < bar.x[-1]
    ecdf = detail_traces(series, 0, 0, ecdf=True)[1]
    assert ecdf.x[-1] == pytest.approx(right) and ecdf.y[-1] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def canary(wine: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the wine project with ``model@v1.2.0`` as a 50% canary: its model reads one more
    feature, ``coupon`` (only it has it), under V2_GATES' region slice gate (psi max 0.5); 400 rows
    logged while it runs."""
    from rollbackkit import Registry
    from rollbackkit.serving.environment import ServingEnvironment
    from tests.conftest import copy_project
    from tests.story import PREPROCESS, V2_GATES, Case, widened
    from tests.test_matrix import pipeline

    root = tmp_path_factory.mktemp("drift-canary")
    repo = copy_project(wine[0], root)
    case, rng = Case("wine-integer-classes", "wine", "int"), np.random.default_rng(13)
    train, held = (widened(case, n, seed=s).assign(coupon=rng.normal(5, 1, n)) for n, s in ((600, 21), (300, 22)))
    features = root / "features.py"
    features.write_text(PREPROCESS)
    namespace: dict[str, Any] = {}
    exec(PREPROCESS, namespace)
    X = namespace["preprocess"](train.drop(columns=["target"]))
    model = pipeline(case, [*X.columns[:6], "coupon"], 10).fit(X, train["target"])
    Registry(repo).register(
        "model", model, train, target="target", version="v1.2.0", validation_data=held, preprocess=features,
        gates=V2_GATES,
    )  # fmt: skip
    live = wine[1].iloc[:400].assign(coupon=rng.normal(7, 1, 400))  # the canary's new feature drifts
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()
        environment.deploy("v1.2.0", canary=50, reason="try coupon")
        for i in range(0, 400, 25):
            environment.predict(live.iloc[i : i + 25], key=f"c{i}")
    finally:
        log.close()
    return repo


def test_a_canary_is_measured_against_its_own_reference_and_its_own_gate(canary: Path) -> None:
    import rollbackkit
    from rollbackkit.widgets import DriftOverTimePanel

    repo = canary
    with pytest.raises(InvalidInput, match="no input feature or primary output 'coupon'"):
        rollbackkit.drift_over_time(repo, "model", "prod", "coupon")  # the default stays what serves: v1.0.0
    own = rollbackkit.drift_over_time(repo, "model", "prod", "coupon", version="v1.2.0", windows=2)
    by_version = rollbackkit.drift_over_time(repo, "model", "prod", windows=1, by="version")
    canary_rows = int(by_version.n[by_version.slices.index("v1.2.0")].sum())
    assert own.version == "v1.2.0" and 0 < int(own.n.sum()) == canary_rows  # its rows only
    assert np.nanmax(own.values) > 1.0  # coupon moved from 5 to 7: against ITS reference
    listed = rollbackkit.drift_over_time(repo, "model", "prod", "coupon", versions=["v1.2.0"], windows=2)
    np.testing.assert_allclose(listed.values, own.values)
    region = rollbackkit.drift_over_time(repo, "model", "prod", version="v1.2.0", by="region", windows=2)
    serving = rollbackkit.drift_over_time(repo, "model", "prod", by="region", windows=2)
    assert region.threshold == 0.5 and serving.version == "v1.0.0" and serving.threshold != 0.5
    panel = DriftOverTimePanel(repo, "model", "prod", by="region", version="v1.2.0", windows=2)
    assert panel.series is not None and panel.line.layout.shapes[0].y0 == 0.5  # the gate that fires
    assert "v1.2.0" in panel.line.layout.title.text
