"""The PostgreSQL log writer's cost of a batch, with and without its input columns kept (bench/widgets.py's PG section).

The writer's own code (``rows.parts``: building a batch on its thread; ``rows.write``: the batch's
transaction) on a real store, for a busy commit (200 requests of 100 rows: 20,000 rows) and a quiet
one (20 one-row requests), each request with 14 typed inputs (floats, Int64 with gaps, nullable
boolean, string with gaps, a category). "Without" is the writer before it kept the columns
(``frame_rows`` giving nothing); the figures are medians over the batches.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PLANS = ["basic", "plus", "pro"]

SHAPES = {"busy_20000_rows": (200, 100, 12), "quiet_20_rows": (20, 1, 60)}
"""Per shape: requests per batch, rows per request, batches timed."""


def _request(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"income": rng.normal(50_000, 9_000, n)}
        | {f"x{k}": rng.normal(0, 1, n) for k in range(9)}
        | {
            "calls": pd.array([None if v == 0 else int(v) for v in rng.integers(0, 6, n)], dtype="Int64"),
            "promo": pd.array([None if v == 2 else bool(v) for v in rng.integers(0, 3, n)], dtype="boolean"),
            "region": pd.array([None if v == "" else v for v in rng.choice(["north", "south", ""], n)], "string"),
            "plan": pd.Categorical(rng.choice(PLANS, n), categories=PLANS),
        }
    )


def _batch(rng: np.random.Generator, requests: int, size: int) -> list[Any]:
    from rollbackkit.serving.predlog.batches import Pending

    items = []
    for _ in range(requests):
        meta = {
            "request_id": uuid.uuid4().hex, "time": datetime.now(UTC), "env": "prod", "name": "churn",
            "version": "v1.0.0", "bundle_id": "b1", "slot": "live", "deployment": "churn@v1.0.0",
            "latency_ms": 1.0, "error": None, "primary": "p", "key": None,
        }  # fmt: skip
        items.append(Pending(meta, _request(rng, size), pd.DataFrame({"p": rng.random(size)})))
    return items


def _timed_batches(url: str, requests: int, size: int, batches: int) -> dict[str, float]:
    import psycopg

    from rollbackkit.serving.postgres import rows

    rng = np.random.default_rng(11)
    build, commit = [], []
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SET search_path TO rollbackkit")
        for _ in range(batches):
            items, batch_id = _batch(rng, requests, size), uuid.uuid4().hex
            started = time.perf_counter()
            parts = rows.parts(items, batch_id, "bench")
            built = time.perf_counter()
            with con.transaction():
                rows.write(con, batch_id, requests * size, "bench", parts)
            build.append(built - started)
            commit.append(time.perf_counter() - built)
    return {"build_ms": 1000 * float(np.median(build)), "commit_ms": 1000 * float(np.median(commit))}


def write_cost(work: Path) -> dict[str, Any]:
    """Per shape: the batch's build and commit milliseconds with the columns kept and without."""
    from rollbackkit.serving.postgres import rows
    from rollbackkit.serving.postgres.store import open_store
    from tests.postgres import start_cluster

    cluster = start_cluster(work / "pgw")
    out: dict[str, Any] = {}
    try:
        url = cluster.create_database("writes")
        open_store(url)  # the schema
        keep = rows.frame_rows
        for shape, (requests, size, batches) in SHAPES.items():
            rows.frame_rows = lambda *args: []  # type: ignore[assignment]  # the writer before
            try:
                before = _timed_batches(url, requests, size, batches)
            finally:
                rows.frame_rows = keep  # type: ignore[assignment]
            after = _timed_batches(url, requests, size, batches)
            total = (after["build_ms"] + after["commit_ms"]) / (before["build_ms"] + before["commit_ms"])
            out[shape] = {"without_columns": before, "with_columns": after, "ratio_total": round(total, 2)}
    finally:
        cluster.stop(remove=True)
    return out
