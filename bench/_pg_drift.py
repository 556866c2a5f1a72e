"""Drift over time on a PostgreSQL store, side by side with the DuckDB log (bench/widgets.py's PG section).

The store holds what :func:`bench._drift_log.log_file` writes in DuckDB: ``rows`` rows over one
day in requests of 100 rows, two versions, an ``income`` feature drifting upward, written straight
into the store's tables (rows by ``generate_series``; one Arrow input blob per committed batch of
:data:`BATCH` rows, as a replica's writer commits them, each with nine more numeric features and a
``plan`` category, so a blob weighs what a real one does; and, as the writer keeps them in each
commit, every column as its kept array). Both logs answer ``binned`` for the same request (240
windows, the reference's edges), as ``drift_over_time`` asks it. Then the same read on batches
written before the writer kept the arrays (the first read decodes every blob once).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BATCH = 1000
"""Rows per committed batch (one input blob each)."""

SIGNATURE = "inputs_bench"


def store_log(url: str, rows: int) -> None:
    """The store at ``url`` filled with ``rows`` logged rows and their input blobs."""
    import psycopg

    from rollbackkit.serving.postgres.encode import inputs_blob
    from rollbackkit.serving.postgres.store import open_store
    from rollbackkit.serving.postgres.values import copy_rows, frame_rows

    open_store(url)  # the schema
    step_us = 86_400_000_000 // rows
    rng = np.random.default_rng(7)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SET search_path TO rollbackkit")
        con.execute(
            'INSERT INTO predictions (request_id, "row", time, env, name, version, inputs_table, outputs, '
            "primary_output, latency_ms, status, replica, inputs_batch, input_at) "
            "SELECT 'r' || (i / 100), (i % 100)::int, TIMESTAMPTZ '2026-03-01 00:00:00+00' + "
            f"make_interval(secs => (i / 100) * {step_us * 100} / 1e6), 'prod', 'churn', "
            f"CASE WHEN i < {rows * 4 // 5} THEN 'v1.0.0' ELSE 'v1.1.0' END, '{SIGNATURE}', '{{}}', "
            f"(random() + random() + random()) / 3 + i * {0.2 / rows}, 1.0, 'ok', 'r0', "
            f"'b' || (i / {BATCH}), (i % {BATCH})::int FROM generate_series(0::bigint, {rows - 1}) AS t(i)"
        )
        batches = -(-rows // BATCH)
        for chunk in range(0, batches, 200):  # blobs, then their kept columns (they refer to the blobs)
            kept: list[Any] = []
            with con.cursor().copy("COPY log_inputs (batch_id, signature, arrow) FROM STDIN") as copy:
                for batch in range(chunk, min(chunk + 200, batches)):
                    first = batch * BATCH
                    n = min(BATCH, rows - first)
                    at = np.arange(first, first + n)
                    frame = pd.DataFrame(
                        {"income": 50_000 + 10_000 * (rng.random(n) - 0.5) + at * (5000 / rows)}
                        | {f"x{k}": rng.normal(0, 1, n) for k in range(9)}
                        | {"plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n))}
                    )
                    blob = inputs_blob(frame)
                    copy.write_row((f"b{batch}", SIGNATURE, blob))
                    kept += frame_rows(frame, f"b{batch}", SIGNATURE, blob)
            with con.cursor() as cur:
                copy_rows(cur, kept)
        con.execute("ANALYZE")


def fields(reference: Any) -> dict[str, Any]:
    """``binned``'s request for ``income`` as ``drift_over_time`` sends it (240 fine windows)."""
    from rollbackkit.analysis.drift_series import numeric_binning
    from rollbackkit.ops.drift_series import FINE_WINDOWS

    edges = numeric_binning(reference).edges
    return {"column": "income", "edges": list(edges), "start": None, "end": None, "windows": FINE_WINDOWS,
            "by": None, "versions": None, "output": False}  # fmt: skip


def _primary() -> dict[str, Any]:
    """The same request for the primary output (counted in SQL before this change too): the store's floor."""
    from rollbackkit.analysis.drift_series import numeric_binning

    rng = np.random.default_rng(4)
    edges = numeric_binning((rng.random(100_000) + rng.random(100_000) + rng.random(100_000)) / 3).edges
    return {**fields([0.0, 1.0]), "column": "primary_output", "edges": list(edges)}


def timed(log: Any, request: dict[str, Any], runs: int = 3) -> dict[str, Any]:
    """Median, min and max wall seconds of ``runs`` ``binned`` answers (the first one too: blobs uncached)."""
    from rollbackkit.serving.log_operations import log_binned

    seconds, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = log_binned(log, "churn", "prod", request)
        seconds.append(time.perf_counter() - started)
    assert answer is not None
    counted = int(np.asarray(answer["counts"]).sum() + np.asarray(answer["missing"]).sum())
    return {"first_s": seconds[0], "median_s": float(np.median(seconds)), "min_s": min(seconds),
            "max_s": max(seconds), "rows_counted": counted, "counts": answer["counts"]}  # fmt: skip


def compare(work: Path, rows: int) -> dict[str, Any]:
    """``binned`` for an input feature on the store and on the DuckDB log of the same shape."""
    from bench._drift_log import log_file
    from rollbackkit.serving.postgres.log import PostgresLog
    from rollbackkit.serving.postgres.store import open_store
    from rollbackkit.serving.predlog.log import PredictionLog
    from tests.postgres import start_cluster

    reference = 50_000 + 10_000 * (np.random.default_rng(3).random(100_000) - 0.5)
    request = fields(reference)
    path = work / "predictions.duckdb"
    log_file(path, rows)
    duck = PredictionLog(path)
    try:
        on_duckdb = timed(duck, request)
    finally:
        duck.close()
    cluster = start_cluster(work / "pg")
    try:
        url = cluster.create_database("drift")
        started = time.perf_counter()
        store_log(url, rows)
        generated = time.perf_counter() - started
        store = PostgresLog(open_store(url, migrate=False), replica="bench")
        try:
            on_store = timed(store, request)  # the first run keeps the column (decoding each blob once)
            primary = timed(store, _primary())
            primary.pop("counts")
            print({"in_sql": {k: v for k, v in on_store.items() if k != "counts"}, "primary": primary}, flush=True)
            beside = _beside_blobs(store, request, 3 if rows <= 1_000_000 else 2)  # blobs cached: the fairest "before"
            kept_mb = _kept_mb(url)
            old = _old_batches(store, url, request)
        finally:
            store.close()
    finally:
        cluster.stop(remove=True)
    on_store_windows = np.asarray(on_store["counts"]).sum(axis=(0, 2)).tolist()
    besides = beside.pop("counts")
    same = np.asarray(on_store.pop("counts")) == np.asarray(besides) if besides is not None else np.array([False])
    duck_windows = np.asarray(on_duckdb.pop("counts")).sum(axis=(0, 2)).tolist()
    return {
        "rows": rows,
        "batch_rows": BATCH,
        "store_generated_s": generated,
        "postgres_in_sql": on_store,
        "postgres_beside_blobs": beside,
        "postgres_first_read_old_batches": old,
        "postgres_primary_output": primary,
        "duckdb_log": on_duckdb,
        "input_values_mb": kept_mb,
        "sql_counts_equal_beside_blobs": bool(same.all()),
        "rows_per_window_equal_duckdb": on_store_windows == duck_windows,
    }


def _beside_blobs(store: Any, request: dict[str, Any], runs: int) -> dict[str, Any]:
    """The count before it moved into SQL: every blob of the range fetched and decoded here."""
    import rollbackkit.serving.postgres.binned as binned
    from rollbackkit.errors import RollbackkitError

    kept = binned.sql_groups
    binned.sql_groups = lambda *args: None  # type: ignore[assignment]
    try:
        return timed(store, request, runs)
    except RollbackkitError as exc:  # at 10M rows: the store ends a transaction idle while Python decodes
        return {"failed": exc.message, "counts": None}
    finally:
        binned.sql_groups = kept


def _kept_mb(url: str) -> float:
    """The size of the store's kept input columns (``log_input_values``, its TOAST included)."""
    import psycopg

    with psycopg.connect(url) as con:
        found = con.execute("SELECT pg_total_relation_size('rollbackkit.log_input_values')").fetchone()
    return round(int(found[0]) / 2**20, 1) if found else 0.0


def _old_batches(store: Any, url: str, request: dict[str, Any]) -> dict[str, Any]:
    """The first read of batches written before the writer kept their columns (it keeps them),
    and the read after it, as on a store upgraded in place."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("TRUNCATE rollbackkit.log_input_values")
    first = timed(store, request, 1)
    again = timed(store, request, 1)
    return {"first_s": first["first_s"], "then_s": again["first_s"]}
