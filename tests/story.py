"""The on-call's whole story against a real server, shared by the model-kind and flavor tests.

Given a project with ``model@v1.0.0`` serving prod and ``model@v1.1.0`` registered with a
segment-drift slice gate (:data:`V2_GATES`), and live inputs with a :data:`SEGMENT`
column: serve with the prediction log, start a canary, degrade one segment, let the
watchdog roll back, list the affected rows the runbook backfilled, check parity, diff the
versions and verify the audit trail. Every step goes through the CLI and the HTTP API.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from .conftest import run_cli
from .servers import TOKEN, running_server

SEGMENT = "region"
BAD_SEGMENT = "west"
ROWS_PER_REQUEST = 50
V2_GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "segment-drift", "kind": "slice", "by": SEGMENT, "metric": "psi", "max": 0.5},
    ],
}


def degraded(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """The bad segment's numeric inputs drift far out of range (an upstream unit change)."""
    frame = frame.copy()
    bad = frame[SEGMENT] == BAD_SEGMENT
    frame.loc[bad, numeric] = frame.loc[bad, numeric] * 25
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON records as a feature pipeline sends them: nulls as null, datetimes as ISO text."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def send(url: str, frame: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    answers = []
    for i in range(0, len(frame), ROWS_PER_REQUEST):
        body = {"records": records(frame.iloc[i : i + ROWS_PER_REQUEST]), "key": f"{prefix}-{i}"}
        response = httpx.post(f"{url}/predict", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def cli(repo: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", cwd=repo, env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN})
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return json.loads(result.stdout)


def wait(condition: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def whole_story(
    repo: Path, live: pd.DataFrame, numeric: list[str], answer_type: type, diff_mentions: list[str]
) -> None:
    """Canary, degrade, watchdog rollback, backfill, parity, diff, audit (see the module docstring).

    Args:
        repo: The project (``model@v1.0.0`` on prod, ``model@v1.1.0`` registered with ``V2_GATES``).
        live: At least 3,500 rows of live inputs (no target) with the ``SEGMENT`` column.
        numeric: The numeric input columns the degradation scales in the bad segment.
        answer_type: The Python type of an answer's ``prediction``.
        diff_mentions: What ``rollbackkit diff v1 v2`` must name (e.g. a changed parameter).
    """
    healthy, during = live.iloc[:1000], degraded(live.iloc[1000:3500], numeric)
    features = repo.parent / "live.parquet"
    healthy.to_parquet(features)  # the typed sample preflight checks: NaN, NA, category, datetime

    with running_server(repo, "model", "prod", watchdog=1.0, runbook=True) as server:
        answers = send(server.url, healthy, "healthy")
        first = answers[0]["predictions"][0]
        assert isinstance(first["prediction"], answer_type), first

        canary = cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--canary", "50", "--features", str(features))
        assert canary["preflight"]["verdict"] in {"compatible", "adaptable"}, canary["preflight"]
        answers = send(server.url, during, "during")
        assert {a["version"] for a in answers} == {"v1.0.0", "v1.1.0"}

        def rolled_back() -> dict[str, Any] | None:
            last = cli(repo, "history", "model", "--env", "prod")["assignments"][-1]
            return last if last["action"] == "auto-rollback" else None

        rollback = wait(rolled_back, 90, "the watchdog's automatic rollback")
        assert rollback["version"] == "v1.0.0" and "segment-drift" in rollback["reason"], rollback
        assert rollback["actor"] == "watchdog"
        assert server.status()["live"]["version"] == "v1.0.0"

        runbooks = wait(
            lambda: [r for r in cli(repo, "runbook", "list")["runbooks"] if r["template"] == "rollback"],
            120,
            "the rollback runbook the watchdog started",
        )
        assert runbooks[-1]["status"] == "ok", runbooks[-1]
        record = cli(repo, "runbook", "show", runbooks[-1]["notebook"])
        canary_rows = sum(len(a["predictions"]) for a in answers if a["version"] == "v1.1.0")
        assert record["results"]["side_effects"]["backfill"]["rescored"] == canary_rows > 0, record["results"]

        affected = cli(repo, "affected", "model", "--env", "prod", "--version", "v1.1.0")
        assert affected["rows"] == affected["backfilled"] == canary_rows, affected
        assert {row["status"] for row in affected["sample"]} == {"backfilled"}
        again = cli(repo, "backfill", "model", "--env", "prod", "--version", "v1.1.0")
        assert again == {"rescored": 0, "already_done": canary_rows, "failed": 0}

    parity = cli(repo, "parity", "model@v1.1.0")
    assert parity["ok"], parity
    diff = run_cli("diff", "model@v1.0.0", "model@v1.1.0", cwd=repo)
    assert diff.returncode == 0, diff.stderr
    for mention in [*diff_mentions, "segment-drift"]:
        assert mention in diff.stdout, (mention, diff.stdout)
    audit = cli(repo, "audit", "verify")
    assert audit["ok"], audit
