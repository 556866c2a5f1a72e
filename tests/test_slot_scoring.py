"""Before a rollback, the preview scores the live sample with the version a warm slot still holds.

The server's slot passed its golden-sample warm-up in the serving process, so the on-call's
notebook asks it (``POST /admin/score``, :func:`rollbackkit.ops.slot_scoring.score_in_slot`)
rather than loading the bundle with whatever libraries the kernel has. The answers must be
the bundle's own, on the rows real tables have (string classes; NaN, ``Int64``, ``boolean``,
``string``, ``category``, a datetime), while live requests keep being served; nothing is
logged and no traffic moves; a version no slot holds is None (the caller loads the bundle).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.bundle.compat import check
from rollbackkit.errors import IncompatibleInput, InvalidInput
from rollbackkit.ops.slot_scoring import SlotScores, score_in_slot
from rollbackkit.serving.in_flight import InFlight
from rollbackkit.serving.router import Router
from rollbackkit.serving.scoring import _scored
from rollbackkit.serving.wire import encode_frame

from .asyncs import run_async
from .servers import TOKEN, Server, running_server
from .story import SEGMENT, Case, build_project, records, wait

CASE = Case("wine-string-classes", "wine", "names")


def _fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> Any:
    """Impute the numbers, encode the plan and segment, boosted trees (the datetime unused)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), [*X.columns[:6], "visits", "promo"]),
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan", SEGMENT]),
        ]
    )
    return make_pipeline(encode, HistGradientBoostingClassifier(max_iter=rounds, random_state=0)).fit(X, y)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, isolated_home: Path
) -> Iterator[tuple[Path, pd.DataFrame, Server]]:
    """v1.0.0 served 200 rows, then v1.1.0 took all traffic: v1.0.0 is the warm standby."""
    repo, live = build_project(tmp_path_factory.mktemp("slot-scoring"), _fit, CASE)
    with running_server(repo, "model", "prod", watchdog=600) as server:
        for i in range(0, 200, 50):
            assert server.predict(records(live.iloc[i : i + 50])).status_code == 200
        deployed = server.admin("deploy", {"version": "v1.1.0", "reason": "more rounds"})
        assert deployed.status_code == 200, deployed.text
        yield repo, live, server


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook's process has the server's admin token."""
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)


def _loaded(repo: Path, version: str, frame: pd.DataFrame) -> pd.DataFrame:
    """What the loaded bundle predicts for ``frame`` by the serving rule (the check without value domains)."""
    bundle = Registry(repo).load(f"model@{version}")
    return bundle.predict(frame, adaptation=check(bundle.schema, frame, domain=False).adaptation)


def test_a_warm_slot_answers_what_the_loaded_bundle_predicts(served: tuple[Path, pd.DataFrame, Server]) -> None:
    repo, live, server = served
    sample = live.iloc[1000:2200].reset_index(drop=True)
    assert sample.isna().any().sum() >= 4  # NaN, NA in Int64, boolean and string columns
    answers = {}
    for version, role in (("v1.0.0", "standby"), ("v1.1.0", "live")):
        scores = score_in_slot(repo, server.url, "model", "prod", version, sample)
        assert isinstance(scores, SlotScores), version
        assert (scores.version, scores.role, scores.n, scores.batches) == (version, role, 1200, 3)
        assert f"warm {role} slot" in scores.where
        expected = _loaded(repo, version, sample)
        pd.testing.assert_frame_equal(scores.outputs, expected.reset_index(drop=True))
        assert isinstance(scores.outputs["prediction"].iloc[0], str)
        answers[version] = scores.outputs
    assert not answers["v1.0.0"].equals(answers["v1.1.0"])  # two models, two answers


def test_live_requests_are_served_while_a_slot_scores_ten_thousand_rows(
    served: tuple[Path, pd.DataFrame, Server],
) -> None:
    repo, live, server = served
    one = [records(live.iloc[[i]]) for i in range(40)]

    def timed(body: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        assert server.predict(body).status_code == 200
        return time.perf_counter() - started

    before = [timed(one[i]) for i in range(30)]
    big = pd.concat([live] * 3, ignore_index=True).iloc[:10_000]
    done: list[SlotScores | None] = []
    scoring = threading.Thread(target=lambda: done.append(score_in_slot(repo, None, "model", "prod", "v1.0.0", big)))
    scoring.start()
    during: list[float] = []  # requests sent while the slot scores
    while scoring.is_alive():
        during.append(timed(one[len(during) % 40]))
    scoring.join()
    assert done and done[0] is not None and (done[0].n, done[0].batches) == (10_000, 20)
    p99_before, p99_during = np.quantile(before, 0.99), np.quantile(during, 0.99)
    assert len(during) >= 3 and p99_during < max(5 * p99_before, p99_before + 0.5), (p99_before, p99_during, during)


def test_each_batch_waits_for_the_live_request_being_scored(served: tuple[Path, pd.DataFrame, Server]) -> None:
    repo, live, _ = served
    router = Router()
    slot = router.load(Registry(repo).load("model@v1.0.0"))
    env = SimpleNamespace(router=router, in_flight=InFlight())
    calls: list[tuple[float, bool]] = []
    score = router.score

    def watched(slot: Any, frame: pd.DataFrame, **options: Any) -> Any:
        calls.append((time.monotonic(), env.in_flight.busy()))
        return score(slot, frame, **options)

    router.score = watched  # type: ignore[method-assign]
    entered, ended = threading.Event(), []

    def live_request() -> None:
        with env.in_flight:
            entered.set()
            time.sleep(0.3)
            ended.append(time.monotonic())

    request = threading.Thread(target=live_request)
    request.start()
    entered.wait(5)
    outputs, batches, _ = _scored(env, slot, live.iloc[:1200])  # type: ignore[arg-type]
    request.join()
    assert (len(outputs), batches, len(calls)) == (1200, 3, 3)
    assert calls[0][0] >= ended[0] and not any(busy for _, busy in calls)


def test_scoring_in_a_slot_logs_nothing_and_moves_no_traffic(served: tuple[Path, pd.DataFrame, Server]) -> None:
    repo, live, server = served

    def logged() -> tuple[int, ...]:
        return tuple(server.admin("affected", {"version": v}).json()["rows"] for v in ("v1.0.0", "v1.1.0"))

    def settled() -> tuple[int, ...] | None:  # earlier requests' rows may still be on their way to the log
        first = logged()
        time.sleep(0.7)
        return first if logged() == first else None

    rows = wait(settled, 30, "the log to settle")
    state = server.status()
    scores = score_in_slot(repo, server.url, "model", "prod", "v1.0.0", live.iloc[:2000])
    assert scores is not None and scores.n == 2000
    time.sleep(1.0)  # beyond the writer's flush interval
    assert logged() == rows
    after = server.status()
    assert after["generation"] == state["generation"] and after["since"] == state["since"]
    assert (after["live"]["version"], after["standby"]["version"]) == ("v1.1.0", "v1.0.0")


def test_a_version_no_slot_holds_is_none_and_the_server_says_what_they_hold(
    served: tuple[Path, pd.DataFrame, Server],
) -> None:
    repo, live, server = served
    assert score_in_slot(repo, server.url, "model", "prod", "v0.9.0", live.iloc[:10]) is None
    answer = server.admin("score", _body("v0.9.0", live.iloc[:10]))
    assert answer.status_code == 404
    assert answer.json()["slots"] == {"live": "v1.1.0", "standby": "v1.0.0"}
    assert "v0.9.0" in answer.json()["error"] and "\n" not in answer.text


def test_scoring_needs_the_admin_token(served: tuple[Path, pd.DataFrame, Server]) -> None:
    _, live, server = served
    body = _body("v1.0.0", live.iloc[:5])
    assert server.admin("score", body, token=None).status_code == 401
    assert server.admin("score", body, token="wrong-token-of-length").status_code == 403
    assert server.admin("score", body, token=TOKEN).status_code == 200


def test_a_bad_body_is_one_line(served: tuple[Path, pd.DataFrame, Server]) -> None:
    repo, live, server = served
    rows = live.iloc[:5]
    bad = {
        "not a frame": ({**_body("v1.0.0", rows), "frame": {"rows": 1}}, 400, "frame"),
        "bad version": (_body("1.0", rows), 400, "version"),
        "bad name": ({**_body("v1.0.0", rows), "name": "Model X"}, 400, "name"),
        "other env": ({**_body("v1.0.0", rows), "env": "staging"}, 400, "staging"),
        "unknown field": ({**_body("v1.0.0", rows), "key": "u1"}, 400, "key"),
        "too many rows": ({**_body("v1.0.0", rows), "frame": {**encode_frame(rows), "rows": 10_001}}, 413, "10,001"),
        "missing columns": (_body("v1.0.0", rows.drop(columns=["plan", SEGMENT])), 422, "plan"),
    }
    for what, (body, status, mentions) in bad.items():
        answer = server.admin("score", body)
        assert answer.status_code == status, (what, answer.text)
        assert mentions in answer.json()["error"] and answer.json()["hint"], (what, answer.text)
        assert "\n" not in answer.text and "Traceback" not in answer.text, what
    with pytest.raises(IncompatibleInput, match="plan"):
        score_in_slot(repo, server.url, "model", "prod", "v1.0.0", rows.drop(columns=["plan"]))
    with pytest.raises(InvalidInput, match="10,000"):
        score_in_slot(repo, server.url, "model", "prod", "v1.0.0", pd.concat([live] * 3).iloc[:10_001])
    assert httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]["/admin/score"]["post"]


def test_a_model_failing_on_the_rows_is_a_500_counted_in_status_and_metrics(
    served_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app in this process (the churn project, v1.0.0 live): its model raises on /admin/score."""

    from rollbackkit.serving.app import create_app
    from rollbackkit.serving.environment import ServingEnvironment

    from .conftest import copy_project, live_records

    env = ServingEnvironment(copy_project(served_template, tmp_path), "churn", "prod")
    env.start()
    app = create_app(env, TOKEN)

    def call(method: str, path: str, **options: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://in") as client:
                return await client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, **options)

        return run_async(go())

    try:
        slot = env.router.state.slot(env.router.state.live)
        assert slot is not None

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the model's own failure")

        monkeypatch.setattr(slot.bundle, "predict", broken)
        rows = pd.DataFrame(live_records(5, seed=3))
        body = {"name": "churn", "env": "prod", "version": "v1.0.0", "frame": encode_frame(rows)}
        answer = call("POST", "/admin/score", json=body)
        assert answer.status_code == 500 and "the model's own failure" in answer.json()["error"], answer.text
        said = call("GET", "/status").json()["background"]
        assert said["failures"] == 1 and said["last_failure"].startswith("admin/score: churn@v1.0.0 failed")
        metrics = call("GET", "/metrics").text
        counted = re.findall(r"^rollbackkit_background_failures(?:_total)?(?:{[^}]*})? (\S+)$", metrics, re.M)
        assert [float(c) for c in counted] == [1.0], metrics
    finally:
        env.stop()


def _body(version: str, rows: pd.DataFrame) -> dict[str, Any]:
    return {"name": "model", "env": "prod", "version": version, "frame": encode_frame(rows)}
