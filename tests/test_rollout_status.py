"""A rollout's place in ``/status`` reads back whole, and a client reads servers older and newer than it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rollbackkit.serving.rollout import BakeClock, Rollout
from rollbackkit.serving.status import GateStatus, ServerStatus

STEPS = st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True).map(lambda s: (*sorted(s), 100))


@st.composite
def rollouts(draw: st.DrawFn) -> Rollout:
    steps = draw(st.one_of(st.just(()), STEPS))
    step = draw(st.integers(1, len(steps))) if steps else None
    return Rollout(
        version=draw(st.text(min_size=1, max_size=12)),
        deployment=draw(st.text(max_size=20)),
        role=draw(st.sampled_from(["canary", "shadow", "live"])),
        percent=steps[step - 1] if steps and step else draw(st.one_of(st.none(), st.integers(1, 100))),
        steps=steps,
        step=step,
        bake_s=draw(st.one_of(st.none(), st.floats(0, 1e6))),
        baked_s=round(draw(st.floats(0, 1e6)), 3),
        state=draw(st.sampled_from(["baking", "holding", "paused", "advancing", "rolled-back"])),
        paused=draw(st.one_of(st.none(), st.text(max_size=40))),
        since=draw(st.one_of(st.none(), st.just("2026-11-30T16:00:00+00:00"))),
    )


@given(rollouts())
def test_a_rollout_reads_back_from_its_json(rollout: Rollout) -> None:
    assert Rollout.from_dict(rollout.to_dict()) == rollout
    said = GateStatus.from_dict({"decision": "inconclusive", "rollout": rollout.to_dict(), "paused": rollout.paused})
    assert said.rollout == rollout and GateStatus.from_dict(said.to_dict()) == said
    assert rollout.words().startswith(rollout.role)


def test_a_client_reads_an_older_server_and_a_newer_one() -> None:
    older = {"version": "m@v1.0.0", "n": 40, "decision": "warn", "gates": []}  # before rollouts: no keys for them
    assert GateStatus.from_dict(older) == GateStatus("warn", version="m@v1.0.0", n=40, gates=[])
    assert "rollout" not in GateStatus.from_dict(older).to_dict()
    newer = {"decision": "inconclusive", "rollout": {"version": "v2", "state": "rewinding", "surge": 3}}
    assert GateStatus.from_dict(newer).rollout == Rollout("v2", "", "canary", state="holding")
    status = {"name": "m", "env": "prod", "live": None, "standby": None, "canary": None, "since": "", "generation": 1}
    assert ServerStatus.from_dict({**status, "gates": None, "log": None}).shadow is None  # no shadow key at all
    slot = {"version": "v2", "bundle_id": "b", "slot": "green", "deployment": "m#prod#3", "percent": 50}
    shadow = ServerStatus.from_dict({**status, "shadow": {**slot, "mirrored": 7, "dropped": 1, "failed": 0}})
    assert shadow.shadow is not None and (shadow.shadow.mirrored, shadow.shadow.dropped) == (7, 1)


def test_the_bake_counts_only_passing_evaluations_without_a_break() -> None:
    clock = BakeClock()
    assert clock.observe("t", True, started=100.0, now=103.0) == 3.0  # passing from the first look: since it began
    assert clock.observe("t", False, started=100.0, now=105.0) == 0.0  # no traffic: the clock stops
    assert clock.observe("t", True, started=100.0, now=109.0) == 0.0  # traffic again: the bake starts over
    assert clock.observe("t", True, started=100.0, now=111.5) == 2.5
    clock.keep_only({"u"})
    assert clock.observe("t", True, started=110.0, now=111.0) == 1.0  # forgotten: a fresh deployment


def test_an_inconclusive_evaluation_pauses_the_bake_and_a_warning_restarts_it() -> None:
    clock, bake = BakeClock(), 10.0
    assert clock.observe("t", "pass", started=0.0, now=6.0) == 6.0  # 0.6 of the bake
    assert clock.observe("t", "pause", started=0.0, now=7.0) == 6.0  # inconclusive: the baked time is kept
    assert clock.observe("t", "pass", started=0.0, now=9.0) == 6.0  # the pause itself never counts
    assert clock.observe("t", "pass", started=0.0, now=14.0) == 11.0 >= bake  # 0.6 + 0.5 of the bake: baked
    assert clock.observe("t", "reset", started=0.0, now=15.0) == 0.0  # a warning: from the start again
    assert clock.observe("t", "pass", started=0.0, now=16.0) == 0.0
    restarted = BakeClock()  # resumed after a restart: no start to count from, the first pass is 0
    assert restarted.observe("u", "pass", started=None, now=500.0) == 0.0
    assert restarted.observe("u", "pass", started=None, now=503.0) == 3.0


def test_a_pass_over_rows_already_judged_adds_no_bake_time() -> None:
    clock = BakeClock()
    assert clock.observe("t", "pass", started=0.0, now=2.0) == 2.0
    assert clock.observe("t", "hold", started=0.0, now=50.0) == 2.0  # the same rows again: no time counted
    assert clock.observe("t", "hold", started=0.0, now=90.0) == 2.0  # however long the silence lasts
    assert clock.observe("t", "pass", started=0.0, now=91.0) == 91.0  # new rows passed: the gates held throughout


def test_a_gate_report_carries_the_watchdog_errors_and_the_promotion() -> None:
    newer = {"decision": "inconclusive", "paused": "evaluation failed: ValueError: boom", "promoted": "m#prod#7"}
    said = GateStatus.from_dict({**newer, "watchdog_errors": 3, "last_watchdog_error": "ValueError: boom"})
    assert (said.watchdog_errors, said.last_watchdog_error, said.promoted) == (3, "ValueError: boom", "m#prod#7")
    assert GateStatus.from_dict(said.to_dict()) == said
    older = GateStatus.from_dict({"decision": "pass", "n": 3, "gates": []})  # a server before the count
    assert older.watchdog_errors is None and "watchdog_errors" not in older.to_dict()
