"""The typed orchestration results: ``to_dict`` gives back the JSON ``from_dict`` read, key for
key and in order (so ``--json`` output keeps its shape), and ``from_dict`` reads ``to_dict``."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit.analysis.gates import GateResult
from rollbackkit.bundle.compat import Adaptation, Finding
from rollbackkit.errors import ServerError, UnknownAnswer
from rollbackkit.ops.assignment_results import AssignmentResult, Preflight
from rollbackkit.ops.log_results import AffectedRows, BackfillResult, PredictionShares, SideEffects, TableRows
from rollbackkit.ops.server_answers import from_server
from rollbackkit.ops.situation_result import Situation
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.status import GateStatus, LogStatus, ServerStatus, SlotStatus

text = st.text(max_size=12)
maybe_text = st.none() | text
count = st.integers(min_value=0, max_value=10**9)
number = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_scalar = st.none() | st.booleans() | count | number | text

assignments = st.builds(
    Assignment,
    name=text,
    env=text,
    version=text,
    tag=text,
    time=text,
    action=st.sampled_from(["deploy", "canary", "promote", "rollback", "auto-rollback"]),
    reason=text,
    incident=text,
    actor=text,
    forced=st.booleans(),
    gates=text,
    canary_percent=st.none() | st.integers(1, 100),
    number=count,
    timestamp=st.just(0),  # not part of the JSON
)
findings = st.builds(
    Finding, column=text, kind=text, detail=text, severity=st.sampled_from(["incompatible", "adapt", "warning"])
)
adaptations = st.builds(
    Adaptation, drop=st.lists(text, max_size=3), reorder=st.booleans(), casts=st.dictionaries(text, text, max_size=2)
)
preflights = st.builds(Preflight, verdict=st.just("skipped")) | st.builds(
    Preflight,
    verdict=st.sampled_from(["compatible", "adaptable", "incompatible"]),
    target=maybe_text,
    consumer=maybe_text,
    findings=st.lists(findings, max_size=3),
    adaptation=st.none() | adaptations,
    parity=st.none() | st.dictionaries(text, json_scalar, max_size=3),
)
gate_results = st.builds(
    GateResult,
    name=text,
    kind=text,
    severity=st.sampled_from(["rollback", "warn"]),
    status=st.sampled_from(["pass", "fail", "insufficient"]),
    observed=st.none() | number,
    threshold=st.dictionaries(text, number, max_size=2),
    evidence=st.dictionaries(text, json_scalar, max_size=3),
)
gate_statuses = st.builds(
    GateStatus,
    decision=st.sampled_from(["rollback", "warn", "pass", "insufficient"]),
    version=maybe_text,
    slot=maybe_text,
    n=st.none() | count,
    gates=st.none() | st.lists(gate_results, max_size=3),
    reason=maybe_text,
    rollback=maybe_text,
)
slots = st.builds(
    SlotStatus,
    version=text,
    bundle_id=text,
    slot=st.sampled_from(["blue", "green"]),
    deployment=text,
    percent=st.none() | st.integers(1, 100),
    client_errors=st.none() | count,
)
logs = st.builds(
    LogStatus,
    write_errors=count,
    last_write_error=maybe_text,
    unwritten=count,
    sink_errors=count,
    process=st.none() | count,
    alive=st.none() | st.booleans(),
    restarts=st.none() | count,
    dropped=st.none() | count,
)
statuses = st.builds(
    ServerStatus,
    name=text,
    env=text,
    live=st.none() | slots,
    standby=st.none() | slots,
    canary=st.none() | slots,
    since=text,
    generation=count,
    gates=st.none() | gate_statuses,
    log=st.none() | logs,
    refused=st.none() | st.dictionaries(text, count, max_size=3),
)
affected_rows = st.builds(
    AffectedRows,
    name=text,
    env=text,
    version=text,
    rows=count,
    quarantined=count,
    backfilled=count,
    first=maybe_text,
    last=maybe_text,
    tables=st.lists(st.builds(TableRows, table=text, rows=count), max_size=3),
    sample=st.none() | st.lists(st.dictionaries(text, json_scalar, max_size=3), max_size=2),
)
backfills = st.builds(BackfillResult, rescored=count, already_done=count, failed=st.just(0)) | st.builds(
    BackfillResult,
    rescored=count,
    already_done=count,
    failed=st.integers(1, 100),
    errors=st.lists(text, max_size=5),
)
RESULTS = st.one_of(
    preflights,
    gate_statuses,
    statuses,
    affected_rows,
    backfills,
    st.builds(
        AssignmentResult,
        via=text,
        assignment=assignments,
        status=st.none() | statuses,
        preflight=st.none() | preflights,
        shift_ms=st.none() | number,
        restored=maybe_text,
    ),
    st.builds(
        Situation,
        name=text,
        env=text,
        serving=maybe_text,
        canary=maybe_text,
        server=maybe_text,
        status=st.none() | statuses,
        history=st.lists(assignments, max_size=3),
    ),
    st.builds(
        SideEffects,
        version=maybe_text,
        logged=st.booleans(),
        affected=st.none() | affected_rows,
        backfill=st.none() | backfills,
        note=maybe_text,
    ),
)


@settings(max_examples=300, deadline=None)
@given(RESULTS)
def test_every_result_round_trips_through_its_json(result: Any) -> None:
    printed = json.dumps(result.to_dict(), indent=2)
    again = type(result).from_dict(json.loads(printed))
    assert again == result
    assert json.dumps(again.to_dict(), indent=2) == printed


SERVER_DEPLOY = {
    "via": "http://127.0.0.1:8000",
    "assignment": {
        "name": "churn",
        "env": "prod",
        "version": "v1.1.0",
        "tag": "churn#prod#2",
        "time": "2026-11-30T10:00:00+00:00",
        "action": "canary",
        "reason": "try v2",
        "incident": "",
        "actor": "ops",
        "forced": False,
        "gates": "",
        "canary_percent": 30,
        "number": 2,
    },
    "status": {
        "name": "churn",
        "env": "prod",
        "live": {"version": "v1.0.0", "bundle_id": "sha256:ab", "slot": "blue", "deployment": "churn#prod#1"},
        "standby": None,
        "canary": {
            "version": "v1.1.0",
            "bundle_id": "sha256:cd",
            "slot": "green",
            "deployment": "churn#prod#2",
            "percent": 30,
            "client_errors": 0,
        },
        "since": "2026-11-30T10:00:00+00:00",
        "generation": 2,
        "gates": {
            "version": "v1.0.0",
            "slot": "blue",
            "n": 400,
            "decision": "pass",
            "gates": [
                {
                    "name": "p99",
                    "kind": "latency",
                    "severity": "rollback",
                    "status": "pass",
                    "observed": 3.5,
                    "threshold": {"p99_ms": 50.0},
                    "evidence": {"n": 400},
                }
            ],
        },
        "log": {
            "process": 123,
            "alive": True,
            "restarts": 0,
            "dropped": 0,
            "write_errors": 0,
            "last_write_error": None,
            "unwritten": 0,
            "sink_errors": 0,
        },
        "refused": {"bad_predict_bodies": 0, "bad_admin_bodies": 0, "unauthorised": 0},
    },
    "preflight": {
        "target": "churn@v1.1.0",
        "consumer": "churn@v1.0.0",
        "verdict": "adaptable",
        "findings": [{"column": "x", "kind": "extra_column", "detail": "dropped", "severity": "adapt", "count": 0}],
        "adaptation": {"drop": ["x"], "reorder": False, "casts": {}},
        "parity": None,
    },
    "shift_ms": 0.412,
}


def test_a_server_answer_prints_back_unchanged() -> None:
    """The shapes a server sends today (key order included) survive the typed result."""
    result = AssignmentResult.from_dict(SERVER_DEPLOY)
    assert result.assignment.tag == "churn#prod#2" and result.status is not None
    assert result.status.canary is not None and result.status.canary.percent == 30
    assert json.dumps(result.to_dict()) == json.dumps(SERVER_DEPLOY)
    status = SERVER_DEPLOY["status"]
    assert isinstance(status, dict)
    assert json.dumps(ServerStatus.from_dict(status).to_dict()) == json.dumps(status)
    insufficient = {"decision": "insufficient", "reason": "no prediction log yet"}
    assert GateStatus.from_dict(insufficient).to_dict() == insufficient


shares = st.builds(
    PredictionShares,
    kind=st.just("numeric"),
    column=text,
    n=count,
    psi=number,
    bins=st.lists(number, max_size=3),
    reference=st.lists(number, max_size=3),
    current=st.lists(number, max_size=3),
    edges=st.lists(number, max_size=4),
) | st.builds(
    PredictionShares,
    kind=st.just("categorical"),
    column=text,
    n=count,
    psi=number,
    bins=st.lists(text, max_size=3),
    reference=st.lists(number, max_size=3),
    current=st.lists(number, max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(shares)
def test_prediction_shares_round_trip(result: PredictionShares) -> None:
    printed = json.dumps(result.to_dict(), indent=2)
    assert PredictionShares.from_dict(json.loads(printed)) == result


def test_a_newer_server_s_extra_keys_are_read_past_not_refused() -> None:
    """A server upgraded before its clients may add keys: the client reads what it knows."""
    newer = json.loads(json.dumps(SERVER_DEPLOY))
    newer["replica"] = "r2"
    newer["assignment"]["signed_by"] = "ci"
    newer["status"]["region"] = "eu"
    newer["status"]["live"]["warm"] = True
    result = AssignmentResult.from_dict(newer)
    assert result.assignment.tag == "churn#prod#2" and result.status is not None
    assert json.dumps(result.to_dict()) == json.dumps(newer)  # --json prints what the server said
    status = ServerStatus.from_dict(newer["status"])
    assert status.live is not None and status.to_dict()["region"] == "eu"
    built = AssignmentResult(via=result.via, assignment=result.assignment)
    assert "replica" not in built.to_dict()
    missing = {k: v for k, v in SERVER_DEPLOY.items() if k != "assignment"}
    for done, says in ((False, "answered deploy in a shape"), (True, "did the deploy, but answered")):
        try:
            from_server(AssignmentResult.from_dict, missing, "http://127.0.0.1:1", "deploy", done=done)
        except UnknownAnswer as exc:
            assert says in exc.message and "does not know" in exc.message and exc.hint
            assert isinstance(exc, ServerError)
        else:
            raise AssertionError("a deploy answer without its assignment was accepted")
