"""Requests whose category columns hold different categories are one input signature: one part of their batch.

A batch of iris requests, each with only the species it holds as categories (some missing), and
ordered size grades in two orders, is written as ONE batch with one inputs blob (it used to hit the
``log_inputs`` key and be split into single requests); every value reads back as scored, and the
drift counts equal the DuckDB log's. Any such batch keeps one part per signature, values exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from rollbackkit.serving.postgres import rows
from rollbackkit.serving.postgres.encode import inputs_frame
from rollbackkit.serving.postgres.log import PostgresLog
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.predlog.batches import Pending
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.schema import inputs_table

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
GRADES = [["small", "large"], ["large", "small"], ["small", "medium", "large"]]


def _meta(k: int) -> dict[str, Any]:
    return {
        "request_id": f"q{k}", "time": START + timedelta(minutes=k), "env": "prod", "name": "iris",
        "version": "v1", "bundle_id": "b-v1", "slot": "live", "deployment": "iris@v1", "latency_ms": 1.0,
        "error": None, "primary": "p", "key": None,
    }  # fmt: skip


def _requests() -> list[pd.DataFrame]:
    """Six iris requests: species as categories of only the species each holds (one missing), and
    size grades, ordered, in two orders and over two sets."""
    iris = load_iris(as_frame=True).frame
    species = pd.Series(load_iris().target_names[iris["target"]])
    out = []
    for k, at in enumerate(([0, 1], [50, 51, 52], [100, 149], [0, 50], [101], [2, 102, 53])):
        kinds = species.iloc[at].tolist()
        kinds[0] = None if k in (1, 4) else kinds[0]
        grades = GRADES[k % 3]
        out.append(
            pd.DataFrame(
                {
                    "petal": iris["petal length (cm)"].iloc[at].to_numpy(),
                    "species": pd.Categorical(kinds),
                    "size": pd.Categorical([grades[(k + i) % 2] for i in range(len(at))], grades, ordered=True),
                    "seen": pd.array([None if i else k for i in range(len(at))], dtype="Int64"),
                }
            )
        )
    return out


def test_a_batch_of_differing_categories_is_written_as_one_batch_and_reads_back_as_scored(
    store_url: str, tmp_path: Path
) -> None:
    log = PostgresLog(open_store(store_url), flush_interval=60, replica="r1")  # one flush: one batch
    duck = PredictionLog(tmp_path / "predictions.duckdb")
    requests = _requests()
    for k, inputs in enumerate(requests):
        outputs = pd.DataFrame({"p": np.arange(len(inputs), dtype=float)})
        log.record(_meta(k), inputs, outputs)
        duck.record(_meta(k), inputs, outputs)
    assert log.flush()
    duck.flush()
    with psycopg.connect(store_url) as con:
        batches = con.execute("SELECT rows FROM rollbackkit.log_batches").fetchall()
        blobs = con.execute("SELECT signature FROM rollbackkit.log_inputs").fetchall()
    assert batches == [(sum(map(len, requests)),)]
    assert blobs == [(inputs_table(requests[0]),)]
    assert log.status()["write_errors"] == 0

    keys = log.query('SELECT * FROM predictions ORDER BY request_id, "row"')
    back = log.inputs(keys)
    scored = pd.concat([r.astype(object) for r in requests], ignore_index=True)
    pd.testing.assert_frame_equal(back.astype(object), scored)
    assert isinstance(back["species"].dtype, pd.CategoricalDtype)
    for column, edges in (("species", ["setosa", "virginica"]), ("size", ["small", "large"]), ("petal", [1.5, 4.5])):
        mine, theirs = (x.binned("iris", "prod", column, edges, windows=2) for x in (log, duck))
        for key in ("slices", "counts", "n", "missing", "others", "unseen"):
            assert mine.get(key) == theirs.get(key), (column, key)
    log.close()
    duck.close()


_KINDS = st.one_of(  # categories of one type a request; str and int ones in one batch cannot be united
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=4),
    st.lists(st.sampled_from([1, 2, None]), min_size=1, max_size=4),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_KINDS, st.sampled_from([None, *map(tuple, GRADES)])), min_size=2, max_size=6))
def test_any_batch_keeps_one_part_per_signature_and_every_value(requests: list[tuple[list[Any], Any]]) -> None:
    pending = []
    for k, (kinds, grades) in enumerate(requests):
        graded = [None if grades is None else grades[(k + i) % len(grades)] for i in range(len(kinds))]
        size = pd.Categorical(graded, list(grades or ["x"]), ordered=grades is not None)
        inputs = pd.DataFrame({"kind": pd.Categorical(kinds), "size": size, "n": np.arange(len(kinds), dtype=float)})
        pending.append(Pending(_meta(k), inputs, None))
    parts = rows.parts(pending, "b1", "r1")
    placed = [item for part in parts for item in part.items]
    assert sorted(map(id, placed)) == sorted(map(id, pending))  # every request in exactly one part: none lost
    types = {p.inputs["kind"].cat.categories.inferred_type for p in pending if len(p.inputs["kind"].cat.categories)}
    if len(types) <= 1:  # categories of one type: united, one part per signature
        assert len(parts) == len({inputs_table(p.inputs) for p in pending})
    for part in parts:
        assert part.signature == inputs_table(part.items[0].inputs)
        back = inputs_frame(part.blob)
        scored = pd.concat([item.inputs.astype(object) for item in part.items], ignore_index=True)
        pd.testing.assert_frame_equal(back.astype(object), scored)
