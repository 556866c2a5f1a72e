"""The drift-over-time benchmark's data: a registered ``churn`` project whose prediction log holds
millions of rows, written straight into the log's own tables by DuckDB (seconds, not a server's hours)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench._common import new_project

__all__ = ["drift_project", "log_file"]


def log_file(path: Path, rows: int) -> None:
    """A prediction log of ``rows`` rows over one day (requests of 100 rows, each request's rows at one
    time as a server logs them; two versions, the output drifting upward), and an inputs table with
    one feature: written straight into the log's own tables by DuckDB."""
    import duckdb

    from rollbackkit.serving.predlog.log import PredictionLog
    from rollbackkit.serving.predlog.schema import FIELDS, quote

    PredictionLog(path).close()  # the log's schema
    step_us = 86_400_000_000 // rows
    values = {
        "request_id": "'r' || CAST(i // 100 AS VARCHAR)",
        "row": "CAST(i % 100 AS INTEGER)",
        "time": f"TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_microseconds(i // 100 * {step_us * 100})",
        "env": "'prod'",
        "name": "'churn'",
        "version": f"CASE WHEN i < {rows * 4 // 5} THEN 'v1.0.0' ELSE 'v1.1.0' END",
        "inputs_table": "'inputs_bench'",
        "outputs": "'{}'",
        "primary_output": f"(random() + random() + random()) / 3 + i * {0.2 / rows}",
        "latency_ms": "1.0",
        "status": "'ok'",
    }
    select = ", ".join(values.get(name, "NULL") for name in FIELDS)
    con = duckdb.connect(str(path))
    try:
        columns = ", ".join(quote(name) for name in FIELDS)
        con.execute(f"INSERT INTO predictions ({columns}) SELECT {select} FROM range({rows}) t(i)")
        con.execute(
            "CREATE TABLE inputs_bench AS SELECT 'r' || CAST(i // 100 AS VARCHAR) AS request_id, "
            f'CAST(i % 100 AS INTEGER) AS "row", 50000 + 10000 * (random() - 0.5) + i * {5000 / rows} AS income '
            f"FROM range({rows}) t(i)"
        )
    finally:
        con.close()


def drift_project(root: Path, rows: int) -> Path:
    """A registered project (``churn``: a regressor on ``income``, v1.0.0 serving in prod) whose
    prediction log is :func:`log_file`'s ``rows`` rows: what a user's drift over time reads."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from rollbackkit import Registry
    from rollbackkit.ops.traffic import deploy
    from rollbackkit.project import ProjectPaths

    root = new_project(root)
    rng = np.random.default_rng(4)
    income = rng.normal(50_000, 2900, 5000)
    frame = pd.DataFrame({"income": income, "y": (income - 50_000) / 17_000 + 0.5 + rng.normal(0, 0.01, 5000)})
    model = LinearRegression().fit(frame[["income"]], frame["y"])
    registry = Registry(root)
    for version in ("v1.0.0", "v1.1.0"):
        registry.register("churn", model, frame, target="y", version=version)
    deploy(root, "churn@v1.0.0", "prod", reason="bench")
    log = ProjectPaths(root).prediction_log
    log.unlink(missing_ok=True)
    log_file(log, rows)
    return root
