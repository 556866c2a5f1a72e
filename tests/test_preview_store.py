"""The preview's sample from the shared PostgreSQL store: the latest answered rows, failures left out
before the limit, and requests logged under different column sets kept apart, as the DuckDB file does.

A real PostgreSQL (tests/postgres.py) and a DuckDB file are fed the same requests: string class
labels with NaN and nullable inputs; the newest requests failed; one client stopped sending two
columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollbackkit.ops.preview_groups import SchemaGroup, group_lines, schema_masks
from rollbackkit.ops.preview_parts import split
from rollbackkit.serving.log_operations import log_operation
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.wire import decode_frame
from tests.postgres import PgCluster

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INPUTS = pd.DataFrame(
    {
        "income": [52_000.5, np.nan, 61_250.25],
        "visits": pd.array([3, None, 7], dtype="Int64"),
        "city": pd.array(["Lyon", None, "Graz"], dtype="string"),
        "member": pd.array([True, None, False], dtype="boolean"),
    }
)
ANSWERS = pd.DataFrame({"churn": ["yes", "no", "yes"], "proba_yes": [0.91, 0.12, 0.77]})


@pytest.fixture(scope="module")
def logs(postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A DuckDB file and a fresh store database, fed the same requests by each test."""
    url = postgres.create_database(f"rk_preview_{uuid.uuid4().hex[:8]}")
    pair = (PredictionLog(Path(tmp_path_factory.mktemp("duck")) / "predictions.duckdb"), PostgresLog(open_store(url)))
    for log in pair:
        log.start()
    yield pair
    for log in pair:
        log.close()


def _record(log: Any, name: str, i: int, inputs: pd.DataFrame, error: str | None = None) -> None:
    meta = {
        "request_id": f"r{i:03d}", "time": START + timedelta(seconds=i), "env": "prod", "name": name,
        "version": "v1.1.0", "bundle_id": "b", "slot": "blue", "deployment": f"{name}#prod#2",
        "latency_ms": 1.0, "error": error, "primary": "churn", "key": None,
    }  # fmt: skip
    log.record(meta, inputs, None if error else ANSWERS.head(len(inputs)))


def _sample(log: Any, name: str, limit: int) -> pd.DataFrame:
    """What a preview reads: the admin API's ``window`` call over the open log."""
    answer = log_operation(None, log, "window", name, "prod", "v1.1.0", limit=limit, deployment=f"{name}#prod#2")  # type: ignore[arg-type]
    return decode_frame(answer)


def test_the_store_gives_the_preview_the_latest_answered_rows_per_column_set(logs: tuple[Any, Any]) -> None:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    for log in logs:
        for i in range(4):  # three requests with every column, one without visits and member
            _record(log, name, i, INPUTS if i != 2 else INPUTS[["income", "city"]])
        for i in range(4, 7):  # the newest requests failed
            _record(log, name, i, INPUTS, error="ValueError: boom")
    duck, store = (_sample(log, name, limit=50) for log in logs)
    latest = [_sample(log, name, limit=4) for log in logs]  # failures left out before the limit, not after
    assert [sample["request_id"].tolist() for sample in latest] == [["r002", "r003", "r003", "r003"]] * 2
    assert all(sample["error"].isna().all() for sample in latest)
    assert store.loc[store["request_id"] == "r002", ["visits", "member"]].isna().all().all()
    assert len(store) == len(duck) == 12 and store["error"].isna().all()
    pd.testing.assert_frame_equal(store, duck)
    inputs = store[["income", "visits", "city", "member"]]
    groups = [(columns, int(mask.sum())) for columns, mask in schema_masks(inputs, store["request_id"])]
    assert groups == [(["income", "visits", "city", "member"], 9), (["income", "city"], 3)]


def test_a_missing_value_of_a_column_the_serving_version_requires_is_not_a_missing_column() -> None:
    """One-row requests with NaN: the served version required every column, so they were all sent."""
    ids = pd.Series(["a", "b", "c"])
    assert [columns for columns, _ in schema_masks(INPUTS, ids)] == [list(INPUTS.columns), []]  # b: all empty
    required = frozenset(INPUTS.columns)
    assert [(columns, int(mask.sum())) for columns, mask in schema_masks(INPUTS, ids, required)] == [
        (list(INPUTS.columns), 3)
    ]
    narrower = frozenset({"income", "city"})  # visits and member were optional: b sent neither
    groups = [(columns, int(mask.sum())) for columns, mask in schema_masks(INPUTS, ids, narrower)]
    assert groups == [(list(INPUTS.columns), 2), (["income", "city"], 1)]


def test_a_column_sent_empty_is_a_column_sent_in_both_logs(logs: tuple[Any, Any]) -> None:
    """One-row requests: r100 sent every column (visits empty), r101 and r102 did not send visits
    nor member. The log recorded each request's columns: r100 is grouped with r103, not with r101."""
    name = f"churn-{uuid.uuid4().hex[:6]}"
    one = INPUTS.iloc[[0]].assign(visits=pd.array([None], dtype="Int64"))
    for log in logs:
        for i, frame in enumerate([one, INPUTS.iloc[[1]][["income", "city"]], INPUTS.iloc[[2]][["income", "city"]]]):
            _record(log, name, 100 + i, frame.reset_index(drop=True))
        _record(log, name, 103, INPUTS.iloc[[2]].reset_index(drop=True))
    served = type("Served", (), {"schema": type("Schema", (), {"output": type("Out", (), {"columns": list(ANSWERS)})})})
    for log in logs:
        sample = split(_sample(log, name, limit=10), served)  # type: ignore[arg-type]
        groups = [(c, sample.requests[m].tolist()) for c, m in schema_masks(sample.inputs, None, sent=sample.sent)]
        assert groups == [(list(INPUTS.columns), ["r100", "r103"]), (["income", "city"], ["r101", "r102"])]


def test_a_preview_lists_eight_column_sets_then_one_line() -> None:
    groups = [SchemaGroup(["a"], 10 - k, [f"x{k}"], refused="no" if k % 2 else None) for k in range(11)]
    lines = group_lines(groups)
    assert len(lines) == 9 and lines[-1] == ("3 more column sets (3 rows, 1 refused)", True)
    assert lines[1] == ("9 row(s) logged without x1: refused (no)", True) and not lines[0][1]
