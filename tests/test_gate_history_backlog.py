"""A gate history whose writer cannot keep up: the store blocks (a long backfill holds the log).

The watchdog never waits; past 256 waiting evaluations only repeats of an unchanged decision
are dropped (each counted in /status's gate_history_dropped, no background failure), so every pass->rollback step that
explains a rollback still reaches the log, in order, and the counts add up.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from rollbackkit.serving import gate_history
from rollbackkit.serving.background import Background
from rollbackkit.serving.gate_history import PENDING, GateEvaluation, GateRecorder, GateSeen, decided
from rollbackkit.serving.predlog.log import PredictionLog

START = datetime(2026, 11, 2, tzinfo=UTC)


def _judged(i: int, decision: str, version: str = "v1.1.0") -> GateEvaluation:
    status = "fail" if decision == "rollback" else "pass"
    value = 0.61 if status == "fail" else 0.9 - (i % 7) / 100
    seen = GateSeen("accuracy", "label_metric", "rollback", status, value, {"min": 0.8}, 200, 150, 200, 50)
    return GateEvaluation(
        START + timedelta(seconds=5 * i), f"model#prod#{version}", version, "canary", decision, 200, (seen,)
    )


def _steps(evaluations: list[GateEvaluation]) -> list[tuple[str, ...]]:
    """The sequence of decisions with every repeat collapsed: what a drop must never change."""
    return [key for key, _ in itertools.groupby(decided(e) for e in evaluations)]


class BlockedStore:
    """A real DuckDB log whose writes wait until released (the writer cannot keep up)."""

    def __init__(self, log: PredictionLog) -> None:
        self.log, self.entered, self.go = log, threading.Event(), threading.Event()

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        self.entered.set()
        assert self.go.wait(30)
        self.log.record_gates(name, env, evaluation)


def _recorder(tmp_path: Path) -> tuple[GateRecorder, BlockedStore, Background, PredictionLog]:
    log = PredictionLog(tmp_path / "predictions.duckdb")
    store, background = BlockedStore(log), Background()
    environment = SimpleNamespace(
        log=store, name="model", env="prod", background=background, background_failed=background.failed
    )
    return GateRecorder(environment), store, background, log


def test_a_blocked_store_drops_only_repeats_and_every_decision_change_reaches_the_log(tmp_path: Path) -> None:
    # a night of canaries: long passing runs, a warn blip, a breach that rolls back, a new version
    plan = ["pass"] * 400 + ["warn"] + ["pass"] * 300 + ["rollback"] * 3 + ["inconclusive"] * 200
    plan += ["pass", "rollback", "pass", "rollback"] + ["pass"] * 300
    evaluations = [_judged(i, d) for i, d in enumerate(plan)]
    evaluations += [_judged(len(plan) + i, "pass", "v1.2.0") for i in range(200)]
    recorder, store, background, log = _recorder(tmp_path)
    try:
        recorder.record(evaluations[0])
        assert store.entered.wait(10)  # the writer is stuck on the first
        began = time.monotonic()
        for evaluation in evaluations[1:]:
            recorder.record(evaluation)
        assert time.monotonic() - began < 2.0  # the watchdog never waits on the store
        store.go.set()
        assert recorder.flush(60.0)
        kept = log.gate_history("model", "prod")
    finally:
        log.close()
    written = len(evaluations) - recorder.dropped
    assert recorder.dropped > 1000 and recorder.changes_dropped == 0
    assert sum(e.evaluations for e in kept) == written  # every written evaluation is in a row: none uncounted
    assert _steps(list(kept)) == _steps(evaluations)  # every change of decision, in order
    breach = next(e for e in kept if e.decision == "rollback")
    assert breach.first == evaluations[701].time and breach.gates[0].status == "fail"  # the step's own time
    assert kept[-1].time == evaluations[-1].time  # the newest is never dropped
    said = background.status()  # /status (and /metrics) count each one apart: trimmed repeats are no failure
    assert said["gate_history_dropped"]["repeat"] == recorder.dropped and said["failures"] == 0


def test_a_flapping_decision_behind_a_blocked_store_keeps_every_change(tmp_path: Path) -> None:
    evaluations = [_judged(i, "rollback" if i % 2 else "pass") for i in range(PENDING * 3)]
    recorder, store, background, log = _recorder(tmp_path)
    try:
        for evaluation in evaluations:
            recorder.record(evaluation)
        assert store.entered.wait(10)
        store.go.set()
        assert recorder.flush(60.0)
        kept = log.gate_history("model", "prod")
    finally:
        log.close()
    assert recorder.dropped == 0 and background.status()["failures"] == 0
    assert [e.decision for e in kept] == [e.decision for e in evaluations]  # nothing dropped, nothing merged


def test_past_the_memory_bound_the_oldest_change_is_dropped_and_counted_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_history, "CHANGES_LIMIT", PENDING + 40)  # a store away for hours, in small
    evaluations = [_judged(i, "rollback" if i % 2 else "pass") for i in range(PENDING + 60)]
    recorder, store, background, log = _recorder(tmp_path)
    try:
        recorder.record(evaluations[0])
        assert store.entered.wait(10)  # the writer holds the first one
        for evaluation in evaluations[1:]:
            recorder.record(evaluation)
        store.go.set()
        assert recorder.flush(60.0)
        kept = log.gate_history("model", "prod")
    finally:
        log.close()
    # 315 waited for room for 296: the oldest change went, which made the next one a repeat (dropped as one)
    assert (recorder.dropped, recorder.changes_dropped) == (9, 10)
    assert background.status()["failures"] == 10  # the lost changes; the trimmed repeats are no failure
    assert background.history_dropped == {"repeat": 9, "change": 10, "write_failed": 0, "not_built": 0}
    assert f"a decision change dropped: {PENDING + 40} changes wait for the writer" in str(background.last_failure)
    assert len(kept) == len(evaluations) - 19 and kept[-1].time == evaluations[-1].time  # the oldest went
