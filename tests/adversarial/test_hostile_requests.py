"""Hostile requests against one real server with a prediction log.

Every case sends one request a careless or hostile client could send, beside good traffic,
and asserts: the status (a 4xx with one line, never a 500), that a refused request is
counted as the client's error (``client_errors`` in ``/status``) and never as the model's
(the error-rate gate sees no error, the live version is never rolled back), and that every
good acknowledged row is in the log exactly once.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import copy_project, live_records
from ..servers import Server, running_server

GOOD = live_records(400, seed=77)
ROW = GOOD[0]


def rows(n: int, **changes: Any) -> list[dict[str, Any]]:
    """``n`` good records with ``changes`` applied to each (a ``_DROP`` value removes the key)."""
    out = []
    for record in GOOD[:n]:
        record = {**record, **changes}
        out.append({k: v for k, v in record.items() if v is not _DROP})
    return out


_DROP = object()


@dataclass
class Target:
    """The module's server, the generation it must keep, and every good row acknowledged."""

    server: Server
    repo: Path
    generation: int = 0
    good: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, body: Any = None, content: bytes | None = None) -> httpx.Response:
        if content is not None:
            headers = {"content-type": "application/json"}
            return httpx.post(f"{self.server.url}/predict", content=content, headers=headers, timeout=60)
        return httpx.post(f"{self.server.url}/predict", json=body, timeout=60)

    def accepted(self, answer: httpx.Response) -> None:
        """Remember an acknowledged request: its rows must be in the log once."""
        assert answer.status_code == 200, answer.text
        body = answer.json()
        with self.lock:
            self.good[body["request_id"]] = len(body["predictions"])

    def good_request(self, n: int = 1, seed: int = 0) -> None:
        self.accepted(self.server.predict(live_records(n, seed=seed)))


@pytest.fixture(scope="module")
def target(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """v1.1.0 (error-rate gate: at most 5% errors over 100 rows) live over v1.0.0, the
    rollback target a failed gate would go to; the watchdog evaluates every 0.2 s."""
    repo = copy_project(served_template, tmp_path_factory.mktemp("hostile"))
    with running_server(repo, "churn", "prod", watchdog=0.2) as server:
        deployed = server.admin("deploy", {"version": "v1.1.0", "reason": "the version hostile clients aim at"})
        assert deployed.status_code == 200, deployed.text
        target = Target(server, repo, generation=server.status()["generation"])
        for i in range(4):  # a window the gates judge steadily (min_samples is 100; PSI is noisy on fewer)
            target.good_request(250, seed=300 + i)
        yield target
        status = server.status()
        assert status["generation"] == target.generation, status["gates"]  # never rolled back
    _assert_logged_once(repo, target.good)


def _assert_logged_once(repo: Path, good: dict[str, int]) -> None:
    """Every acknowledged request's rows, exactly once, and no error row at all."""
    import duckdb

    with duckdb.connect(str(repo / ".rollbackkit" / "local" / "predictions.duckdb"), read_only=True) as con:
        logged = con.execute(
            'SELECT request_id, count(*), count(DISTINCT "row"), count(error) FROM ('
            "SELECT * FROM predictions UNION ALL SELECT * FROM predictions_staging) GROUP BY request_id"
        ).fetchall()
    by_id = {r[0]: r[1:] for r in logged}
    assert {rid: by_id.get(rid, (0, 0, 0))[:2] for rid in good} == {rid: (n, n) for rid, n in good.items()}
    assert sum(r[2] for r in by_id.values()) == 0  # no refused request became an error row


def _breaches(repo: Path) -> list[str]:
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    return [line for line in journal.read_text().splitlines() if "gate-breach" in line]


def _base(**changes: Any) -> dict[str, Any]:
    return {"records": rows(1, **changes)}


# (case id, body or raw bytes, allowed statuses). 422: the version refuses it (counted as the
# client's error); 400: the body is refused before any version sees it; 200: accepted
# correctly (its rows are logged like any other).
BIG = 2**64 + 1
CASES: list[tuple[str, Any, set[int]]] = [
    ("missing-column-300-rows", {"records": rows(300, tenure_months=_DROP)}, {422}),
    ("missing-column-1-row", _base(tenure_months=_DROP), {422}),
    ("only-unknown-columns", {"records": [{"x": 1}]}, {422}),
    ("text-in-a-number", _base(age="old"), {422}),
    ("list-in-a-number", _base(age=[1, 2]), {422}),
    ("object-in-a-number", _base(age={"a": 1}), {422}),
    ("bool-in-a-number", _base(age=True), {200, 422}),
    ("number-in-a-category", _base(plan=7), {422}),
    ("bool-in-a-category", _base(plan=True), {422}),
    ("list-in-a-category", _base(plan=["pro"]), {200, 422}),  # read as the text "['pro']": an unseen category
    ("unseen-category", _base(plan="platinum-ultra"), {200, 422}),
    ("empty-category", _base(plan=""), {200, 422}),
    ("null-number", _base(age=None), {200, 422}),
    ("null-category", _base(plan=None), {200, 422}),
    ("all-null", {"records": [dict.fromkeys(ROW)]}, {200, 422}),
    ("int-above-2-63", _base(age=2**63 + 5), {400, 422}),
    ("int-above-2-64", _base(age=BIG), {400, 422}),
    ("int-below-minus-2-63", _base(age=-(2**63) - 5), {400, 422}),
    ("float-1e308", _base(monthly_charges=1e308), {200, 422}),
    ("negative-float-huge", _base(monthly_charges=-1e308), {200, 422}),
    # A model that scores infinity may (the log stores it exactly); one that raises makes it a 422.
    ("infinity-literal", json.dumps(_base(monthly_charges=math.inf)).encode(), {200, 400, 422}),
    ("nan-literal", json.dumps(_base(monthly_charges=math.nan)).encode(), {200, 400, 422}),
    ("300-rows-one-text-number", {"records": rows(299) + rows(1, age="x")}, {422}),
    ("300-rows-one-infinity", json.dumps({"records": rows(299) + rows(1, age=math.inf)}).encode(), {400, 422}),
    (
        "300-rows-one-float-infinity",
        json.dumps({"records": rows(299) + rows(1, discount_pct=-math.inf)}).encode(),
        {200, 400, 422},
    ),
    ("extra-empty-column-name", _base(**{"": 1}), {422}),
    ("extra-blank-column-name", _base(**{"   ": 1}), {422}),
    ("extra-nul-in-column-name", _base(**{"a\x00b": 1}), {400, 422}),
    ("column-repeated-in-other-case", _base(AGE=30), {422}),
    ("extra-column-named-row", _base(row=1), {422}),
    ("extra-column-named-request_id", _base(request_id="x"), {422}),
    ("extra-column-named-ROW", _base(ROW=1), {422}),
    ("extra-column-with-quotes", _base(**{"we\"ird'name": 1}), {200}),
    ("extra-column-unicode", _base(**{"überschuß ✓": "ja"}), {200}),
    ("extra-column-long-name", _base(**{"x" * 5000: 1}), {200, 422}),
    ("extra-column-huge-int", _base(extra_big=BIG), {200}),  # an unused column: logged as text
    ("extra-column-nested", _base(extra_nested={"a": [1, {"b": None}]}), {200}),
    ("extra-column-mixed-types", {"records": rows(3) + rows(1, extra_mixed="text") + rows(1, extra_mixed=5)}, {200}),
    ("extra-200-columns", _base(**{f"junk_{i}": i for i in range(200)}), {200}),
    ("columns-data-duplicate-names", {"columns": ["age", "age"], "data": [[1, 2]]}, {400, 422}),
    ("columns-data-one-short-row", {"columns": list(ROW), "data": [list(ROW.values())[:-1]]}, {400}),
    ("columns-data-good", {"columns": list(ROW), "data": [list(ROW.values())]}, {200}),
    ("empty-records", {"records": []}, {400}),
    ("records-not-objects", {"records": [[1, 2, 3]]}, {400}),
    ("lone-surrogate-value", b'{"records": [{"plan": "\\ud800"}]}', {400, 422}),
    ("lone-surrogate-column", b'{"records": [{"\\ud800": 1}]}', {400, 422}),
    ("key-is-an-object", {"records": rows(1), "key": {"a": 1}}, {200, 400}),
    ("key-very-long", {"records": rows(1), "key": "k" * 10_000}, {200}),
    ("not-json", b"{records: nope", {400}),
    ("deeply-nested", b'{"records": [{"age": ' + b"[" * 5000 + b"]" * 5000 + b"}]}", {400, 422}),
    ("big-good-request", {"records": rows(400)}, {200}),
]


@pytest.mark.parametrize(("body", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_request_fails_alone_and_never_counts_against_the_model(
    target: Target, body: Any, allowed: set[int]
) -> None:
    server = target.server
    before = server.status()["live"]
    answer = target.post(content=body) if isinstance(body, bytes) else target.post(body)
    target.good_request(seed=len(target.good))  # a good client beside it

    assert answer.status_code in allowed, answer.text
    if answer.status_code == 200:
        target.accepted(answer)
    else:
        error = answer.json()["error"]
        assert error and "\n" not in error and "Traceback" not in error, error
    status = server.status()
    live = status["live"]
    assert (live["version"], status["generation"]) == ("v1.1.0", target.generation), _breaches(target.repo)
    assert live["client_errors"] == before["client_errors"] + (answer.status_code == 422)
    if answer.status_code != 422:  # a 400 never reached the version, a 200 was scored: no error row
        return
    gates = server.admin("gates", {"version": "v1.1.0"})
    assert gates.status_code == 200, gates.text
    errors = next(g for g in gates.json()["gates"] if g["name"] == "errors")
    assert errors["status"] == "pass" and errors["evidence"]["errors"] == 0, errors


def test_hostile_requests_beside_twenty_concurrent_good_ones_lose_no_good_row(target: Target) -> None:
    """The load probe: good and hostile requests at once; every good row is acknowledged
    and logged once (checked by request id when the module's server stops)."""
    hostile = [c[1] for c in CASES if c[2] != {200}]
    before = target.server.status()["log"]

    def good(i: int) -> None:
        target.good_request(n=1 + i % 3, seed=1000 + i)

    def bad(body: Any) -> int:
        answer = target.post(content=body) if isinstance(body, bytes) else target.post(body)
        if answer.status_code == 200:  # accepted correctly: logged like any other
            target.accepted(answer)
        return answer.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        goods = [pool.submit(good, i) for i in range(20)]
        bads = [pool.submit(bad, body) for body in hostile * 2]
        for future in goods:
            future.result()
        statuses = [future.result() for future in bads]
    assert all(400 <= s < 500 or s == 200 for s in statuses), statuses
    time.sleep(1.5)  # the writer commits every 0.5 s
    log = target.server.status()["log"]
    assert (log["dropped"], log["unwritten"]) == (before["dropped"], before["unwritten"]), log


def test_the_log_holds_every_good_row_so_far(target: Target) -> None:
    """Counted through the server (the request-level check runs when the server stops)."""
    window = target.server.admin("window", {"version": "v1.1.0"})
    assert window.status_code == 200, window.text
    from rollbackkit.serving.wire import decode_frame

    frame = decode_frame(window.json())
    with target.lock:
        expected = sum(target.good.values())
    assert len(frame) == expected
    assert frame["error"].isna().all()


def test_an_unscoreable_request_never_rolls_back_and_after_a_restart_nothing_rolls_back_onto_a_rejected_version(
    served: Path,
) -> None:
    """Defect: one 300-row request a version cannot score (a 422) was logged as 300 errors
    of the live version, whose error-rate gate then rolled it back; after a restart the
    same request rolled "back" onto the version that had just been rolled back from."""
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame

    unscoreable = {"records": rows(300, tenure_months=_DROP)}
    with running_server(served, "churn", "prod", watchdog=0.2) as server:
        assert server.admin("deploy", {"version": "v1.1.0", "reason": "boosted"}).status_code == 200
        for seed in (1, 2):
            assert server.predict(live_records(200, seed=seed)).status_code == 200
        refused = server.predict(unscoreable["records"])
        assert refused.status_code == 422 and refused.json()["columns"] == ["tenure_months"], refused.text
        time.sleep(1.5)  # seven watchdog evaluations
        status = server.status()
        assert status["live"]["version"] == "v1.1.0" and status["live"]["client_errors"] == 1, status
        assert status["gates"]["decision"] == "pass", status["gates"]
        assert _breaches(served) == []
        # A person rolls v1.1.0 back (for reasons of their own): the history remembers it.
        back = server.admin("rollback", {"reason": "the probe", "actor": "Ada Oncall"})
        assert back.status_code == 200 and back.json()["assignment"]["version"] == "v1.0.0", back.text

    drifted = churn_frame(600, seed=5)
    drifted["support_calls"] += 6
    drifted["contract"] = "month-to-month"
    with running_server(served, "churn", "prod", watchdog=0.2) as server:  # a restart
        generation = server.status()["generation"]
        assert server.predict(unscoreable["records"]).status_code == 422
        assert server.predict(drifted[ALL_FEATURES].to_dict(orient="records")).status_code == 200
        deadline = time.monotonic() + 30
        while not _breaches(served) and time.monotonic() < deadline:  # v1.0.0 now genuinely fails a gate
            time.sleep(0.2)
        status = server.status()
        assert (status["live"]["version"], status["generation"]) == ("v1.0.0", generation), status
        assert status["live"]["client_errors"] == 1
        errors = next(g for g in status["gates"]["gates"] if g["kind"] == "error_rate")
        assert errors["evidence"]["errors"] == 0, errors
    breach = json.loads(_breaches(served)[-1])
    assert (breach["version"], breach["rolled_back"]) == ("v1.0.0", False), breach
    assert "v1.1.0" in breach["reason"], breach  # the version rolled back from, remembered across the restart


def test_refused_requests_leak_no_memory_and_the_verdict_cache_stays_bounded(served: Path) -> None:
    """Defect: a cached IncompatibleInput was re-raised for every refused request; its
    traceback kept each request's frame alive (about 2.3 MB a request, 2.6 GB per 1,000)."""
    import gc

    import pandas as pd

    from rollbackkit.errors import IncompatibleInput
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.router import _CACHE_SIZE

    def rss() -> int:
        gc.collect()
        fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
        return int(fields[0]) * 1024

    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    refused = pd.DataFrame(rows(300, tenure_months=_DROP))

    def refuse(frame: pd.DataFrame) -> None:
        with pytest.raises(IncompatibleInput) as caught:
            environment.predict(frame)
        assert caught.value.__traceback__ is not None  # a fresh exception each time

    for _ in range(20):
        refuse(refused.copy())
    before = rss()
    for _ in range(1000):
        refuse(refused.copy())  # each request its own 300 x 51 frame (about 120 kB of floats)
    assert rss() - before < 30 * 2**20
    assert environment.status()["live"]["client_errors"] == 1020

    one = refused.head(1)
    for i in range(2 * _CACHE_SIZE):  # a client sending random column names
        refuse(one.assign(**{f"random_{i}": 1}))
    assert len(environment.router._adaptations) <= _CACHE_SIZE


def test_a_model_that_fails_on_a_compatible_request_is_still_the_models_error(served: Path) -> None:
    """The other side of the line: a failure on values the version was trained on counts
    against the slot that scored it (and its gate), a failure on values far outside them
    is the client's (a 422, counted apart)."""
    import pandas as pd

    from rollbackkit.errors import IncompatibleInput
    from rollbackkit.serving.environment import ServingEnvironment

    environment = ServingEnvironment(served, "churn", "prod")  # no log: the in-memory window
    environment.start()
    slot = environment.router.route()
    preprocess = slot.bundle.preprocess

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        if (frame["age"] == 42).any():
            raise RuntimeError("the model broke")
        return preprocess(frame)

    slot.bundle.preprocess = broken
    frame = pd.DataFrame(rows(20))
    environment.predict(frame)
    with pytest.raises(RuntimeError):  # age 42 was trained on: the model's error
        environment.predict(frame.assign(age=42))
    with pytest.raises(IncompatibleInput, match="age: out_of_range"):  # age 42 beside an age of 10**6
        environment.predict(frame.assign(age=[42] + [10**6] * 19))
    window = environment.window(slot)
    assert window["error"].fillna("").tolist() == [""] * 20 + ["RuntimeError"] * 20
    assert environment.status()["live"]["client_errors"] == 1


def test_a_canarys_model_errors_count_against_the_canary_not_the_live_version(served: Path) -> None:
    """Before, every failed request was kept against the live slot, whichever slot failed."""
    import pandas as pd

    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.routing_state import in_canary

    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    environment.deploy("v1.1.0", canary=50, reason="a canary that breaks")
    state = environment.router.state
    live, canary = state.slot(state.live), state.slot(state.canary)
    assert live is not None and canary is not None

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("the canary broke")

    canary.bundle.preprocess = broken
    key = next(k for k in (f"user-{i}" for i in range(100)) if in_canary(k, 50))
    with pytest.raises(RuntimeError):
        environment.predict(pd.DataFrame(rows(5)), key=key)
    assert environment.window(canary)["error"].tolist() == ["RuntimeError"] * 5
    assert environment.window(live).empty


def test_refused_rows_an_older_server_logged_are_left_out_of_every_gate(served: Path) -> None:
    """A log written before the fix holds refused requests as ``IncompatibleInput`` error
    rows: after an upgrade they must neither fail the error-rate gate nor fill its sample."""
    import pandas as pd

    from rollbackkit import Registry
    from rollbackkit.analysis.gates import evaluate
    from rollbackkit.serving.environment import ServingEnvironment

    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    slot = environment.router.route()
    for seed in range(3):
        environment.predict(pd.DataFrame(live_records(100, seed=seed)))
    scored = environment.window(slot)
    refused = scored.head(300).assign(error="IncompatibleInput", latency_ms=float("nan"))
    bundle = Registry(served).describe("churn@v1.0.0")
    report = evaluate(bundle, pd.concat([scored, refused], ignore_index=True)).to_dict()
    errors = next(g for g in report["gates"] if g["kind"] == "error_rate")
    assert (errors["status"], errors["evidence"]) == ("pass", {"errors": 0, "n": 300}), errors
    failed = evaluate(bundle, pd.concat([scored, refused.assign(error="RuntimeError")], ignore_index=True))
    assert next(g for g in failed.to_dict()["gates"] if g["kind"] == "error_rate")["status"] == "fail"
