"""Drift over time of an input feature on a PostgreSQL store, counted in SQL as the primary output is.

One day's traffic is logged twice, in a DuckDB log and in a real PostgreSQL store (tests/postgres.py):
typed inputs (float with NaN and infinities, Int64 with NA, nullable boolean, string with NA, a
category with values the reference never saw), two input signatures (one lacks a feature), two
versions. Every ``binned`` question the drift panels ask gives the same answer from the store's SQL,
from the old count beside the blobs, and from the DuckDB log; after the first read no input blob
leaves the store, and the kept columns go with their blobs when the log is pruned.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

import rollbackkit.serving.postgres.binned as binned
from rollbackkit.analysis.drift_series import categorical_binning, numeric_binning
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.log import PredictionLog

from .postgres import PgCluster

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
ENV = "prod"


def _request(k: int, rng: np.random.Generator) -> pd.DataFrame:
    n = 40
    income = rng.normal(50_000 + 800 * k, 9_000, n)
    income[::9], income[4], income[5] = np.nan, np.inf, -np.inf
    frame = pd.DataFrame(
        {
            "income": income,
            "calls": pd.array([None if i % 7 == 0 else int(i % 5) for i in range(n)], dtype="Int64"),
            "promo": pd.array([None if i % 6 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
            "region": pd.array(
                [None if i % 10 == 0 else ["north", "south", "west"][i % 3] for i in range(n)], "string"
            ),
            "plan": pd.Categorical(rng.choice(["basic", "gold", "trial", "student"], n, p=[0.4, 0.3, 0.2, 0.1])),
        }
    )
    return frame.drop(columns=["promo"]) if k % 4 == 3 else frame  # another signature, without promo


@pytest.fixture(scope="module")
def logs(postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str, str]]:
    """The same 16 requests in a DuckDB log and in a store (its URL too)."""
    url = postgres.create_database(f"rk_pgdrift_{uuid.uuid4().hex[:8]}")
    duck = PredictionLog(tmp_path_factory.mktemp("pgdrift") / "predictions.duckdb")
    store = PostgresLog(open_store(url), flush_interval=0.05, replica="r1")
    name, rng = "pgdrift", np.random.default_rng(21)
    for log in (duck, store):
        log.start()
    for k in range(16):
        inputs = _request(k, rng)
        outputs = pd.DataFrame({"churn": rng.choice(["yes", "no"], len(inputs)), "p": rng.random(len(inputs))})
        version = "v1.0.0" if k < 10 else "v1.1.0"
        meta = {
            "request_id": f"q{k:03d}", "time": START + timedelta(minutes=10 * k), "env": ENV, "name": name,
            "version": version, "bundle_id": f"b-{version}", "slot": "live", "deployment": f"{name}@{version}",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        for log in (duck, store):
            log.record(meta, inputs, outputs)
    yield duck, store, name, url
    duck.close()
    store.close()


REFERENCE = _request(0, np.random.default_rng(5))
QUESTIONS: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("income", list(numeric_binning(REFERENCE["income"]).edges), {}),
    ("income", list(numeric_binning(REFERENCE["income"]).edges), {"by": "region"}),
    ("income", list(numeric_binning(REFERENCE["income"]).edges), {"by": "version", "windows": 5}),
    ("plan", list(categorical_binning(REFERENCE["plan"].astype(object)[lambda s: s != "student"]).categories), {}),
    ("promo", ["True", "False"], {"by": "calls"}),
    ("calls", ["0", "1", "2"], {"by": "promo"}),
    ("calls", [0.5, 1.5, 2.5], {}),
    ("churn", ["yes", "no"], {"by": "region", "output": True}),
    ("primary_output", [0.25, 0.5, 0.75], {"by": "plan"}),
]


def _ask(log: Any, name: str, column: str, edges: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    return log.binned(name, ENV, column, edges, **{"windows": 4, **options})


def _same(one: dict[str, Any], other: dict[str, Any]) -> None:
    for key in ("slices", "counts", "n", "missing", "start", "end", "others"):
        assert one.get(key) == other.get(key), key
    unseen, theirs = one.get("unseen") or [], other.get("unseen") or []  # the unseen categories' rows and PSI terms
    assert [cell[:3] for cell in unseen] == [cell[:3] for cell in theirs]
    np.testing.assert_allclose([c[3] for c in unseen], [c[3] for c in theirs], rtol=0, atol=1e-12)
    if one.get("sums") is not None:
        np.testing.assert_allclose(np.asarray(one["sums"]), np.asarray(other["sums"]), rtol=1e-12)


def test_every_feature_question_is_counted_in_the_store_as_beside_the_blobs_and_in_duckdb(
    logs: tuple[Any, Any, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    duck, store, name, url = logs
    in_sql = [_ask(store, name, column, edges, options) for column, edges, options in QUESTIONS]
    with psycopg.connect(url) as con:
        kept = con.execute('SELECT DISTINCT "column", kind FROM rollbackkit.log_input_values').fetchall()
    assert sorted(kept) == [  # each feature read, as numbers or texts (calls as both)
        ("calls", "n"),
        ("calls", "t"),
        ("income", "n"),
        ("plan", "t"),
        ("promo", "t"),
        ("region", "t"),
    ]

    read = type(store)._blobs
    asked: list[int] = []

    def blobs(self: Any, cur: Any, pointers: Any) -> Any:
        asked.append(pointers.num_rows)
        return read(self, cur, pointers)

    with monkeypatch.context() as patched:  # read again: every feature from the kept columns, in SQL
        patched.setattr(type(store), "_blobs", blobs)
        again = [_ask(store, name, column, edges, options) for column, edges, options in QUESTIONS]
    assert asked and max(asked) <= 2  # only each signature's newest blob (its column names), never the range's
    with monkeypatch.context() as patched:  # the count before: every blob decoded in this process
        patched.setattr(binned, "sql_groups", lambda *args: None)
        beside = [_ask(store, name, column, edges, options) for column, edges, options in QUESTIONS]
    on_duckdb = [_ask(duck, name, column, edges, options) for column, edges, options in QUESTIONS]
    for question, sql, second, old, file in zip(QUESTIONS, in_sql, again, beside, on_duckdb, strict=True):
        assert sum(map(sum, sql["n"])) + sum(map(sum, sql["missing"])) == 640, question
        _same(sql, second)
        _same(sql, old)
        _same(sql, file)
    assert in_sql[3]["unseen"] and in_sql[3]["others"] == []  # plan's student: summed in SQL and beside the blobs
    promo = in_sql[4]
    assert sum(map(sum, promo["missing"])) > 160  # the requests without promo count as missing, never dropped


def test_the_kept_columns_go_with_their_blobs_when_the_log_is_pruned(logs: tuple[Any, Any, str, str]) -> None:
    _, store, name, url = logs
    _ask(store, name, "income", [1.0, 2.0], {})
    assert store.prune(days=1) > 0
    with psycopg.connect(url) as con:
        left = con.execute("SELECT count(*) FROM rollbackkit.log_input_values").fetchone()
    assert left == (0,)
