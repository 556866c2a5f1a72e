"""Shadow: the candidate scores a mirror of live requests off the request path.

The live answers stay the same byte for byte, the shadow's rows go to ``predictions_shadow``
only (with the live row's request id, row, key and time), a full queue drops and counts, a
failing or refusing shadow is counted and never reaches the client, and a shadow is
promoted to a canary or to live. In-process environments with a real prediction log, on a
string-label classifier and a regressor built from scikit-learn's bundled datasets, and
the churn project; one real server for the admin API.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, churn_frame
from rollbackkit.errors import InvalidInput, RoutingError
from rollbackkit.registry.assignments import Deployments
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.mirrored import Mirrored
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.shadow import Mirror
from rollbackkit.serving.wire import json_records, records_frame

from .conftest import copy_project
from .servers import running_server
from .story import Case
from .test_matrix import template

CASES = [
    Case("binary-string-labels", "breast_cancer", "names"),
    Case("regressor", "diabetes", "float", regressor=True),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Each case's project (``model@v1.0.0`` serving prod, ``v1.1.0`` registered), built once."""
    return {case.name: template(case, tmp_path_factory) for case in CASES}  # built once per run, copied per test


def _log(repo: Path) -> PredictionLog:
    return PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")


def _count(log: PredictionLog, sql: str) -> int:
    return int(log.query(f"SELECT count(*) AS n FROM {sql}")["n"][0])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_live_answers_are_byte_for_byte_unchanged_and_shadow_rows_stay_out_of_production(
    case: Case, built: dict[str, tuple[Path, pd.DataFrame]], tmp_path: Path
) -> None:
    template, live = built[case.name]
    repo = copy_project(template, tmp_path)
    frames = [live.iloc[i : i + 25] for i in range(0, 500, 25)]
    log = _log(repo)
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()

        def answers(prefix: str) -> list[bytes]:
            return [
                json.dumps(
                    json_records(environment.predict(f, key=f"user-{i}", request_id=f"{prefix}-{i}").outputs)
                ).encode()
                for i, f in enumerate(frames)
            ]

        before = answers("before")
        shadow_tag = environment.deploy("v1.1.0", shadow=100, reason="shadow v2")["assignment"]["tag"]
        during = answers("during")
        assert environment.mirror.drain(120)
        assert during == before  # the client never sees the shadow
        status = environment.status()
        assert status["live"]["version"] == "v1.0.0" and status["canary"] is None
        assert {k: status["shadow"][k] for k in ("version", "percent", "mirrored", "dropped", "failed")} == {
            "version": "v1.1.0",
            "percent": 100,
            "mirrored": len(frames),
            "dropped": 0,
            "failed": 0,
        }
        state = environment.router.state
        shadow_window = environment.window(state.slot(state.shadow))
        assert len(shadow_window) == 500 and set(shadow_window["request_id"].str[:7]) == {"during-"}
        answer = case.answer_type()
        assert all(isinstance(p, answer) for p in shadow_window["prediction"])  # typed as the live answers
        environment.stop()

        # the shadow's rows: in predictions_shadow only, with the live row's keys
        columns = 'request_id, "row", "key", "time"'
        shadow_rows = log.query(f"SELECT {columns}, deployment, version FROM predictions_shadow")
        assert set(shadow_rows["deployment"]) == {shadow_tag} and set(shadow_rows["version"]) == {"v1.1.0"}
        paired = log.query(f"SELECT {columns} FROM predictions WHERE request_id LIKE 'during-%'")
        as_set = lambda f: set(f.itertuples(index=False, name=None))  # noqa: E731
        assert len(paired) == 500 and as_set(shadow_rows[paired.columns]) == as_set(paired)
        assert _count(log, "predictions WHERE version = 'v1.1.0'") == 0
        assert _count(log, "predictions_staging WHERE version = 'v1.1.0'") == 0
        assert set(log.production("model")["version"]) == {"v1.0.0"}
    finally:
        log.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_batch_of_mirrored_requests_is_scored_together_and_a_refused_one_costs_only_itself(
    case: Case, built: dict[str, tuple[Path, pd.DataFrame]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve JSON requests gather into one batch: one is scored alone to time the shadow, eleven
    in one call, with the answers the shadow gives each alone. Twelve more in one call, one of
    them carrying a value a million times the largest seen in training, which v1.1.0's model
    cannot take (live's copes): the call fails and each request is scored alone, eleven are
    logged, one failure is counted; live answered all."""
    template, live = built[case.name]
    repo = copy_project(template, tmp_path)
    log = _log(repo)
    try:
        environment = ServingEnvironment(repo, "model", "prod", log=log)
        environment.start()
        environment.deploy("v1.1.0", shadow=100, reason="shadow v2")
        state = environment.router.state
        shadow = state.slot(state.shadow)
        assert shadow is not None
        batches: list[int] = []

        def together(requests: Sequence[Mirrored]) -> list[bool]:
            batches.append(len(requests))
            return environment._score_shadows(requests)

        mirror = Mirror(environment._score_shadow, score_many=together, linger=120, batch=12, timed_every=3600)
        environment.mirror = mirror
        first, trained = live.columns[0], shadow.bundle.predict
        far = float(live[first].abs().max()) * 1e6

        def fussy(frame: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
            if (frame[first].abs() >= far).any():
                raise ValueError("Input contains a value too large")
            return trained(frame, **kwargs)

        monkeypatch.setattr(shadow.bundle, "predict", fussy)
        sent = json.loads(json.dumps(json_records(live.iloc[:36]), default=lambda t: t.isoformat()))
        frames = [records_frame(sent[i : i + 3]) for i in range(0, 36, 3)]
        refused = [*frames[:4], records_frame([sent[12], {**sent[13], first: far}, sent[14]]), *frames[5:]]
        for prefix, requests in (("a", frames), ("b", refused)):
            for i, frame in enumerate(requests):
                answer = environment.predict(frame, request_id=f"{prefix}{i:02}", untyped=True)
                assert answer.version == "v1.0.0"
            assert environment.mirror.drain(120)
        counted = mirror.status()
        assert batches == [11, 12]  # the first request alone (timed once an hour), the others in one call
        assert (counted.mirrored, counted.failed, counted.dropped) == (23, 1, 0)
        assert counted.last_error is not None and "IncompatibleInput" in counted.last_error
        logged = environment.window(shadow).sort_values(["request_id", "row"])
        assert set(logged["request_id"]) == {f"{p}{i:02}" for p in "ab" for i in range(12)} - {"b04"}
        alone = [environment.router.score(shadow, f, untyped=True).outputs["prediction"].tolist() for f in frames]
        answers = {r: rows["prediction"].tolist() for r, rows in logged.groupby("request_id")}
        assert answers == {f"{p}{i:02}": alone[i] for p in "ab" for i in range(12) if f"{p}{i:02}" != "b04"}
        timed = logged.groupby("request_id")["latency_ms"].first().notna()
        assert timed[timed.index.str[0] == "a"].tolist() == [True] + [False] * 11  # a batch's rows keep none
        assert timed[timed.index.str[0] == "b"].all()  # the failed batch's requests, each scored alone
        assert _count(log, "predictions WHERE version = 'v1.1.0'") == 0
        environment.stop()
    finally:
        log.close()


def _churn(served: Path, shadow: int = 100) -> tuple[ServingEnvironment, pd.DataFrame]:
    environment = ServingEnvironment(served, "churn", "prod")  # no log: the shadow's rows go to its window
    environment.start()
    environment.deploy("v1.1.0", shadow=shadow, reason="shadow v2")
    return environment, churn_frame(400, seed=5)[ALL_FEATURES]


def test_a_full_queue_drops_and_counts_and_the_client_never_waits(served: Path) -> None:
    environment, live = _churn(served)
    gate = threading.Event()
    score = environment._score_shadow

    def slow(request: Mirrored) -> bool:
        gate.wait(60)  # a shadow far slower than live
        return score(request)

    environment.mirror = Mirror(slow, capacity=3)
    started = time.perf_counter()
    for i in range(12):
        assert environment.predict(live.iloc[i * 10 : i * 10 + 10], key=f"k{i}", request_id=f"r{i}").version == "v1.0.0"
    assert time.perf_counter() - started < 30  # nobody waited for the shadow's minute
    gate.set()
    assert environment.mirror.drain(60)
    shadow = environment.status()["shadow"]
    assert shadow["dropped"] >= 8 and shadow["mirrored"] + shadow["dropped"] == 12 and shadow["failed"] == 0
    window = environment.window(environment.router.state.slot(environment.router.state.shadow))
    assert len(window) == 10 * shadow["mirrored"]
    assert all(window["key"] == "k" + window["request_id"].str[1:])  # each row keeps its live request's keys
    assert set(window["row"]) == set(range(10)) and str(window["time"].dt.tz) == "UTC"

    # rows are bounded too: the queue holds the live requests' own frames
    gate.clear()
    mark = datetime.now(UTC).isoformat()
    environment.mirror = Mirror(slow, capacity=1000, rows=25)
    for i in range(12):
        environment.predict(live.iloc[i * 10 : i * 10 + 10], key=f"k{i}", request_id=f"again-{i}")
    gate.set()
    assert environment.mirror.drain(60)
    counted = environment.mirror.status()
    assert counted.dropped >= 9 and counted.mirrored + counted.dropped == 12 and counted.queued == 0
    slot = environment.router.state.slot(environment.router.state.shadow)
    since = environment.window(slot, since=mark)  # the rows at or after a time (a watchdog's "same minutes")
    assert len(since) == 10 * counted.mirrored and set(since["request_id"].str[:6]) == {"again-"}
    with pytest.raises(InvalidInput, match="is not a time"):
        environment.window(slot, since="yesterday")
    environment.stop()


def test_the_shadow_waits_while_a_live_request_is_being_scored(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow live request (its model waits on an event) holds the mirror back: a request mirrored
    meanwhile stays queued well past the linger; once the live request is answered, both are scored."""
    environment, live = _churn(served)
    state = environment.router.state
    serving, shadow = state.slot(state.live), state.slot(state.shadow)
    assert serving is not None and shadow is not None
    entered, release = threading.Event(), threading.Event()
    answer = serving.bundle.predict

    def held(frame: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        if len(frame) == 7:  # the slow request; the others are answered at once
            entered.set()
            release.wait(60)
        return answer(frame, **kwargs)

    monkeypatch.setattr(serving.bundle, "predict", held)
    slow = threading.Thread(target=environment.predict, args=(live.iloc[:7],), kwargs={"request_id": "slow"})
    slow.start()
    try:
        assert entered.wait(60)
        assert environment.predict(live.iloc[10:20], request_id="quick").version == "v1.0.0"
        time.sleep(shadow_linger := 5 * environment.mirror._linger)
        counted = environment.mirror.status()
        assert (counted.mirrored, counted.queued, counted.failed) == (0, 1, 0), shadow_linger
        assert environment.window(shadow).empty
    finally:
        release.set()
        slow.join(60)
    assert environment.mirror.drain(60)
    counted = environment.mirror.status()
    assert (counted.mirrored, counted.queued, counted.failed, counted.dropped) == (2, 0, 0, 0)
    assert sorted(set(environment.window(shadow)["request_id"])) == ["quick", "slow"]
    environment.stop()


def test_a_failing_or_refusing_shadow_is_counted_never_raised(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environment, live = _churn(served)
    state = environment.router.state
    shadow, serving = state.slot(state.shadow), state.slot(state.live)
    assert shadow is not None and serving is not None

    # v1.1.0 needs the five new features; the live v1.0.0 does not: the shadow refuses, live answers
    old_pipeline = churn_frame(50, seed=6)[BASE_FEATURES]
    for i in range(5):
        assert environment.predict(old_pipeline.iloc[i * 10 : i * 10 + 10]).version == "v1.0.0"
    assert environment.mirror.drain(60)
    status = environment.status()
    assert status["shadow"]["failed"] == 5 and "IncompatibleInput" in status["shadow"]["last_error"]
    assert status["live"]["client_errors"] == 0  # the shadow's refusal is not the client's error

    def broken(*args: object, **kwargs: object) -> pd.DataFrame:
        raise RuntimeError("the shadow's model crashed")

    monkeypatch.setattr(shadow.bundle, "predict", broken)
    for i in range(3):
        assert environment.predict(live.iloc[i * 10 : i * 10 + 10]).version == "v1.0.0"
    assert environment.mirror.drain(60)
    status = environment.status()
    assert status["shadow"]["failed"] == 8 and status["mirror"]["failed"] == 8
    assert status["shadow"]["last_error"] == "RuntimeError: the shadow's model crashed"
    window = environment.window(shadow)
    assert len(window) == 30 and set(window["error"]) == {"RuntimeError"}  # the shadow's own error-rate evidence
    assert len(environment.window(serving)) == 80 and environment.window(serving)["error"].isna().all()
    environment.stop()


def test_a_shadow_is_promoted_to_a_canary_or_to_live_and_a_rollback_cancels_it(served: Path) -> None:
    environment, live = _churn(served, shadow=50)
    with pytest.raises(RoutingError, match="A shadow is running"):
        environment.deploy("v1.1.0", canary=10)
    with pytest.raises(RoutingError, match="No canary is running") as no_canary:
        environment.promote()
    assert "--from-shadow" in no_canary.value.hint
    canary = environment.promote(from_shadow=True, canary=20, reason="agreement held")
    assert (canary["assignment"]["action"], canary["assignment"]["canary_percent"]) == ("canary", 20)
    assert canary["status"]["shadow"] is None and canary["status"]["canary"]["percent"] == 20
    mirrored = environment.status()["mirror"]["mirrored"]
    environment.predict(live.head(10))
    assert environment.mirror.drain(30) and environment.status()["mirror"]["mirrored"] == mirrored
    environment.rollback(reason="back to the shadow test")
    environment.stop()

    again, _ = _churn(served, shadow=30)  # a restart resumes the shadow at its share
    again.stop()
    resumed = ServingEnvironment(served, "churn", "prod")
    resumed.start()
    assert resumed.status()["shadow"]["percent"] == 30 and resumed.status()["shadow"]["version"] == "v1.1.0"
    full = resumed.promote(from_shadow=True, reason="straight to live")
    assert full["assignment"]["action"] == "promote"
    assert full["status"]["live"]["version"] == "v1.1.0" and full["status"]["standby"]["version"] == "v1.0.0"
    assert resumed.status()["shadow"] is None
    resumed.stop()

    cancelled, _ = _churn_again(served)
    back = cancelled.rollback(reason="shadow disagreed")
    assert back["assignment"]["version"] == "v1.1.0" and back["status"]["shadow"] is None
    assert Deployments(cancelled.registry).state("churn", "prod").shadow is None
    cancelled.stop()


def _churn_again(served: Path) -> tuple[ServingEnvironment, pd.DataFrame]:
    """v1.1.0 serving, v1.0.0 as its shadow."""
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.0.0", shadow=100, reason="compare with the old one")
    return environment, churn_frame(50, seed=8)[ALL_FEATURES]


def test_the_admin_api_starts_a_shadow_and_steps_and_status_shows_them(served: Path) -> None:
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        started = server.admin("deploy", {"version": "v1.1.0", "shadow": 50, "reason": "shadow v2"})
        assert started.status_code == 200, started.text
        assert started.json()["assignment"]["action"] == "shadow"
        answers = [
            server.predict(r) for r in [churn_frame(5, seed=s)[ALL_FEATURES].to_dict("records") for s in range(20)]
        ]
        assert {a.json()["version"] for a in answers} == {"v1.0.0"}
        deadline = time.monotonic() + 60
        while server.status()["shadow"]["mirrored"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        shadow = server.status()["shadow"]
        assert (shadow["version"], shadow["percent"], shadow["failed"]) == ("v1.1.0", 50, 0)
        assert 0 < shadow["mirrored"] + shadow["dropped"] < 20  # about half the requests, by request id
        refused = server.admin("deploy", {"version": "v1.1.0", "canary": 10})
        assert refused.status_code == 409 and "shadow is running" in refused.json()["error"]
        promoted = server.admin("promote", {"from_shadow": True, "canary": 10})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["status"]["canary"]["percent"] == 10 and promoted.json()["status"]["shadow"] is None
        assert server.admin("rollback", {"reason": "try steps instead"}).status_code == 200

        bad = server.admin("deploy", {"version": "v1.1.0", "steps": [5, 50]})
        assert bad.status_code == 400 and "last step must be 100" in bad.json()["error"]
        stepped = server.admin("deploy", {"version": "v1.1.0", "steps": [5, 25, 50, 100], "bake": "10m"})
        assert stepped.status_code == 200, stepped.text
        assignment = stepped.json()["assignment"]
        assert (assignment["canary_percent"], assignment["steps"], assignment["bake_s"]) == (5, [5, 25, 50, 100], 600)
        assert server.status()["canary"]["percent"] == 5


def test_a_batch_whose_rows_fail_to_be_kept_midway_never_scores_a_kept_request_twice() -> None:
    """Keeping the third request's rows fails after the batch call: the first two stay kept (not
    scored again), the third counts as failed, the last two are scored one by one."""
    from datetime import UTC, datetime

    from rollbackkit.serving.mirrored import KeepFailed

    alone: list[str] = []

    def one(request: Mirrored) -> bool:
        alone.append(request.request_id)
        return True

    def batch(requests: Sequence[Mirrored]) -> list[bool]:
        raise KeepFailed(2, OSError("the log's disk is full"))

    mirror = Mirror(one, score_many=batch)
    frame = pd.DataFrame({"x": [1.0]})
    group = [Mirrored(None, frame, False, f"r{i}", datetime.now(UTC), None) for i in range(5)]  # type: ignore[arg-type]
    mirror._many(group)
    counted = mirror.status()
    assert alone == ["r3", "r4"]  # r0 and r1 were kept by the batch: never scored (and logged) twice
    assert (counted.mirrored, counted.failed) == (4, 1)
    assert counted.last_error is not None and "OSError: the log's disk is full" in counted.last_error
    mirror.stop()
