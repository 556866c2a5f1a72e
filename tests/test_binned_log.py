"""The log side of drift over time: reads leave the log file as it was, the binned answer's bounds,
the request-level input join (equal to the row join, also where a request's rows differ), and the
per-cell sums of values in both logs (DuckDB file, PostgreSQL store)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic
import pytest

from rollbackkit.analysis.drift_series import Binning, bin_index
from rollbackkit.errors import InvalidInput
from rollbackkit.serving.bodies import BinnedBody
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog import binning
from rollbackkit.serving.predlog.log import PredictionLog

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EDGES = [float(e) for e in np.linspace(-2.0, 2.0, 9)]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_the_log_without_a_server_leaves_its_file_as_it_was(logged: Path) -> None:
    from rollbackkit import drift_over_time, gate_history, logged_window, preview_rollback

    path = logged / ".rollbackkit" / "local" / "predictions.duckdb"
    before = _sha(path)
    assert len(logged_window(logged, "churn", "prod", "v1.0.0")) > 0
    gate_history(logged, "churn", "prod")
    assert drift_over_time(logged, "churn", "prod", windows=4).n.sum() > 0
    preview_rollback(logged, "churn", "prod", to_version="v1.0.0", sample=200)
    PredictionLog(path).close()
    assert _sha(path) == before
    log = PredictionLog(path)  # a writer still opens it and writes
    try:
        meta = {
            "request_id": "after-reads", "time": datetime.now(UTC), "env": "prod", "name": "churn",
            "version": "v1.0.0", "bundle_id": "b", "slot": "live", "deployment": "churn@v1.0.0",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        log.record(meta, pd.DataFrame({"x": [1.0]}), pd.DataFrame({"p": [0.5]}))
        assert log.flush() == 1
    finally:
        log.close()
    assert _sha(path) != before


def test_a_binned_request_is_bounded_in_edges_and_cells() -> None:
    with pytest.raises(InvalidInput, match="258 edges or categories is too many"):
        binning.BinRequest.of("m", "prod", "x", list(range(258)), None, None, 24, None, None, False)
    with pytest.raises(InvalidInput, match=r"1000 windows x 258 bins x 13 slices is 3,354,000 cells") as cells:
        binning.BinRequest.of("m", "prod", "x", list(range(257)), None, None, 1000, "plan", None, False)
    assert "\n" not in str(cells.value.message) and "1,000,000" in cells.value.hint
    assert (
        binning.BinRequest.of("m", "prod", "x", list(range(257)), None, None, 200, "plan", None, False).windows == 200
    )
    with pytest.raises(pydantic.ValidationError, match="at most 257"):
        BinnedBody.model_validate({"column": "x", "edges": [float(e) for e in range(300)]})


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def several_rows(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A log (each backend) of 16 requests of 12 rows: a float with NaN, infinities and values past
    the edges; the primary output ``p`` as well."""
    if request.param == "duckdb":
        log: Any = PredictionLog(tmp_path_factory.mktemp("binned") / "predictions.duckdb")
    else:
        database = request.getfixturevalue("postgres").create_database(f"rk_binned_{uuid.uuid4().hex[:8]}")
        log = PostgresLog(open_store(database), flush_interval=0.05)
    log.start()
    name, rng = f"m-{uuid.uuid4().hex[:6]}", np.random.default_rng(11)
    for k in range(16):
        x = rng.normal(k / 8, 1.5, 12)
        x[k % 12], x[(k + 3) % 12] = np.nan, [np.inf, -np.inf][k % 2]
        version = "v1.0.0" if k < 10 else "v1.1.0"
        meta = {
            "request_id": f"r{k:03d}", "time": START + timedelta(minutes=k), "env": "prod", "name": name,
            "version": version, "bundle_id": f"b-{version}", "slot": "live", "deployment": f"{name}@{version}",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        log.record(meta, pd.DataFrame({"x": x, "plan": rng.choice(["a", "b"], 12)}), pd.DataFrame({"p": x * 0.5}))
    log.flush()
    yield log, name
    log.close()


def _expected(values: np.ndarray) -> tuple[list[int], list[float]]:
    b = Binning("numeric", edges=tuple(EDGES))
    index = bin_index(values, b)
    finite = np.isfinite(values) & (index >= 0)
    counts = np.bincount(index[index >= 0], minlength=b.n_bins)
    return counts.tolist(), np.bincount(index[finite], weights=values[finite], minlength=b.n_bins).tolist()


def test_sums_per_cell_in_both_logs_place_the_outer_mass_at_its_mean(several_rows: tuple[Any, str]) -> None:
    log, name = several_rows
    raw = log.query("SELECT primary_output FROM predictions WHERE name = ?", [name])["primary_output"]
    for column, values in (("x", raw.to_numpy(dtype="float64") * 2), ("primary_output", raw.to_numpy(dtype="float64"))):
        answer = log.binned(name, "prod", column, EDGES, windows=1)
        counts, sums = _expected(values)
        assert answer["counts"][0][0] == counts and answer["sums"][0][0] == pytest.approx(sums, abs=1e-9)
        finer = log.binned(name, "prod", column, EDGES, windows=4, by="version")
        assert np.sum(finer["sums"], axis=(0, 1)) == pytest.approx(sums, abs=1e-9)
    labels = log.binned(name, "prod", "plan", ["a", "b"], windows=2)
    assert labels["sums"] is None and sum(map(sum, labels["n"])) == 16 * 12


def test_the_request_level_join_counts_as_the_row_join_where_rows_differ(
    several_rows: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, name = several_rows
    if not isinstance(log, PredictionLog):
        pytest.skip("the store joins input features in the caller")
    with log._tx() as con:  # requests whose rows differ: a later row, another version, one row missing
        con.execute("UPDATE predictions SET time = time + INTERVAL 7 SECOND WHERE request_id = 'r002' AND \"row\" = 5")
        con.execute("UPDATE predictions SET version = 'v1.1.0' WHERE request_id = 'r004' AND \"row\" > 8")
        con.execute("UPDATE predictions SET error = 'boom' WHERE request_id = 'r006' AND \"row\" = 3")
    calls: list[dict[str, Any]] = [
        dict(column="x", edges=EDGES, windows=5),
        dict(column="x", edges=EDGES, windows=3, by="version"),
        dict(column="x", edges=EDGES, windows=3, versions=["v1.0.0"]),
        dict(column="plan", edges=["a", "b"], windows=7, by="deployment"),
        dict(column="x", edges=EDGES, windows=2, by="plan"),
    ]
    fast = [log.binned(name, "prod", **c) for c in calls]
    row_join = binning.source_sql
    monkeypatch.setattr(binning, "source_sql", lambda *a, **k: row_join(*a, per_request=False))
    slow = [log.binned(name, "prod", **c) for c in calls]
    for a, b in zip(fast, slow, strict=True):
        assert {k: v for k, v in a.items() if k != "sums"} == {k: v for k, v in b.items() if k != "sums"}
        assert a["sums"] is None or np.allclose(a["sums"], b["sums"])
    assert sum(map(sum, fast[0]["n"])) + sum(map(sum, fast[0]["missing"])) == 16 * 12 - 1
    assert sum(map(sum, fast[2]["n"])) + sum(map(sum, fast[2]["missing"])) == 10 * 12 - 3 - 1
