"""The on-call sees the gate history's losses by name, apart from other background failures.

A real server whose log refuses every gate-history write (its ``gate_evaluations`` table was
left by a newer release with a column this one does not fill: a downgrade) still judges the
canary and shows the report; ``/status`` and ``/metrics`` count each lost evaluation as
``write_failed``, while the harmless trimming of repeats (``repeat``) stays at 0.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import httpx

from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.background import HISTORY_DROPS, Background
from rollbackkit.serving.gate_history import GATE_COLUMNS, PENDING, GateEvaluation, GateRecorder, GateSeen

from .conftest import Data
from .servers import running_server
from .story import records, wait


def _dropped(metrics: str) -> dict[str, float]:
    """``rollbackkit_gate_history_dropped_total`` by reason, as scraped."""
    found = re.findall(r'^rollbackkit_gate_history_dropped_total\{[^}]*reason="(\w+)"[^}]*\} (\S+)$', metrics, re.M)
    return {reason: float(value) for reason, value in found}


def test_a_gate_history_the_log_refuses_is_counted_by_name_and_the_gates_still_judge(
    two_versions: Path, data: Data
) -> None:
    repo = two_versions
    deploy(repo, "cancer@v1.0.0", "prod", reason="first release")
    log = repo / ".rollbackkit" / "local" / "predictions.duckdb"
    log.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(log)) as con:  # a newer release's table: a column this release does not write
        con.execute(f"CREATE TABLE gate_evaluations ({GATE_COLUMNS}, reviewer VARCHAR NOT NULL)")
    inputs = data.X.sample(frac=1.0, random_state=4)

    with running_server(repo, "cancer", "prod", watchdog=0.5) as server:
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert _dropped(metrics) == dict.fromkeys(HISTORY_DROPS, 0.0)  # born at 0: increase() sees the first
        assert server.admin("deploy", {"version": "v1.1.0", "canary": 50, "reason": "try v2"}).status_code == 200
        for i in range(0, 300, 50):
            assert server.predict(records(inputs.iloc[i : i + 50]), key=f"user-{i}").status_code == 200

        def lost() -> dict | None:
            said = server.status()
            counted = said["background"]["gate_history_dropped"]
            judged = (said.get("gates") or {}).get("version", "").endswith("v1.1.0")
            return said if counted["write_failed"] >= 2 and judged else None

        said = wait(lost, 60, "gate history writes that fail, counted by name")
        background = said["background"]
        assert background["gate_history_dropped"]["repeat"] == 0  # nothing waited: no repeat trimmed
        assert background["failures"] >= background["gate_history_dropped"]["write_failed"]  # also a failure
        assert "gate history not recorded" in background["last_failure"] and "reviewer" in background["last_failure"]
        report = said["gates"]  # the gate report itself still works: the canary is judged
        assert report["decision"] in {"pass", "warn", "inconclusive", "rollback"} and report["gates"]

        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        scraped = _dropped(metrics)
        assert scraped["write_failed"] >= 2 and scraped["repeat"] == scraped["change"] == scraped["not_built"] == 0
        assert re.search(r'^rollbackkit_gate_decision\{[^}]*version="v1\.1\.0"[^}]*\} 1\.0$', metrics, re.M)
        lines = [line for line in metrics.splitlines() if line.startswith("rollbackkit_gate_history_dropped_total")]
        assert len(lines) == 4 and all('model="cancer"' in line and 'env="prod"' in line for line in lines), lines
        assert server.predict(records(inputs.iloc[:5])).status_code == 200  # serving goes on


def test_a_failure_streak_among_repeats_behind_a_blocked_writer_is_never_trimmed() -> None:
    # a warn run whose auc starts failing (1 of 3, 2 of 3) while the writer is stuck: the streak
    # steps explain a later rollback, so only evaluations with the very same run signature may go
    go, written = threading.Event(), []

    class Blocked:
        def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
            assert go.wait(30)
            written.append(evaluation)

    background = Background()
    recorder = GateRecorder(
        SimpleNamespace(log=Blocked(), name="m", env="prod", background=background, background_failed=background.failed)
    )
    start = datetime(2026, 11, 2, tzinfo=UTC)

    def seen(i: int, failing: str | None) -> GateEvaluation:
        auc = GateSeen("auc", "label_metric", "rollback", "fail" if failing else "pass", 0.5, {}, 10, failing=failing)
        return GateEvaluation(start + timedelta(seconds=i), "d", "v1.1.0", "canary", "warn", 10, (auc,))

    streak = [seen(0, None), seen(1, None), seen(2, None), seen(3, "1 of 3"), seen(4, "2 of 3")]
    evaluations = streak + [seen(i, None) for i in range(5, PENDING + 6)]
    for evaluation in evaluations:
        recorder.record(evaluation)
    go.set()
    assert recorder.flush(10)
    assert [e.gates[0].failing for e in written if e.gates[0].failing] == ["1 of 3", "2 of 3"]
    assert background.history_dropped["repeat"] > 0 and background.failures == 0  # only true repeats went
