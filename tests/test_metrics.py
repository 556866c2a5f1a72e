"""``GET /metrics``: what an on-call's Prometheus scrapes from a server, for the models a team has.

A real ``rollbackkit serve`` (string class labels, the prediction log, the watchdog) takes
traffic carrying sentinel feature values and request keys, refuses bad requests, gets labels,
runs a canary that degrades and is rolled back automatically: the scrape shows each step, names
every metric of the contract, and never a sentinel. In-process servers (Starlette's test
client: a socket adds nothing there) do the same for boolean and integer class labels and a
regressor, count client errors apart from model errors and a manual rollback apart from an
automatic one, and show the failing gate's value, bound and status. A log writer that does not
answer never holds a scrape for long, and a stopped one shows its backlog, drops and
unreachability at once; a store that stops answering turns the replicas' picture to unknown.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollbackkit.analysis.gates import GateReport, GateResult
from rollbackkit.serving import metrics_state
from rollbackkit.serving.app import create_app
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.metrics import ServingMetrics
from rollbackkit.serving.metrics_state import READ_BUDGET
from rollbackkit.serving.predlog import process
from rollbackkit.serving.status import TrafficEvent
from rollbackkit.serving.watchdog_telling import failed_names

from .asyncs import run_async
from .servers import TOKEN, running_server
from .story import ROWS_PER_REQUEST, Case, build_project, degraded, records, wait
from .test_matrix import pipeline

FEATURE_SENTINEL = "plan-sentinel-5d1e"  # a feature value (the ``plan`` column)
NUMBER_SENTINEL = 8765.4321  # a numeric feature value
KEY_SENTINEL = "key-sentinel-91b7"  # a request key
STRING_CASE = Case("binary-string-labels", "breast_cancer", "names")
CASES = [
    Case("boolean-labels", "breast_cancer", "bool"),
    Case("integer-labels", "wine", "int"),
    Case("regressor", "diabetes", "float", regressor=True),
]

# every name H5's dashboard and alert rules read (notifications need H2's targets, replicas a store)
CONTRACT_NAMES = [
    "rollbackkit_requests_total",
    "rollbackkit_request_duration_seconds",
    "rollbackkit_rows_scored_total",
    "rollbackkit_refused_requests_total",
    "rollbackkit_traffic_share",
    "rollbackkit_serving_info",
    "rollbackkit_routing_generation",
    "rollbackkit_traffic_changes_total",
    "rollbackkit_rollbacks_total",
    "rollbackkit_gate_value",
    "rollbackkit_gate_threshold",
    "rollbackkit_gate_status",
    "rollbackkit_gate_decision",
    "rollbackkit_gate_report_age_seconds",
    "rollbackkit_watchdog_errors_total",
    "rollbackkit_log_backlog_rows",
    "rollbackkit_log_write_errors_total",
    "rollbackkit_log_writer_restarts_total",
    "rollbackkit_log_dropped_rows_total",
    "rollbackkit_log_sink_errors_total",
    "rollbackkit_log_store_reachable",
    "rollbackkit_background_failures_total",
    "rollbackkit_background_pending",
    "rollbackkit_shadow_mirrored_total",
    "rollbackkit_shadow_dropped_total",
    "rollbackkit_shadow_failed_total",
    "rollbackkit_build_info",
    "process_cpu_seconds_total",
]


# --------------------------------------------------------------------------- reading a scrape
class Scrape:
    """One ``/metrics`` body, parsed by prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        families = list(text_string_to_metric_families(text))
        self.families = {f.name for f in families}  # a histogram's name; a counter's without _total
        self.samples = [s for family in families for s in family.samples]

    def names(self) -> set[str]:
        return self.families | {s.name for s in self.samples}

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of ``name``'s samples with these labels (None: no such sample)."""
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        return sum(found) if found else None

    def number(self, name: str, **labels: str) -> float:
        """:meth:`value`, which must be there."""
        found = self.value(name, **labels)
        assert found is not None, (name, labels)
        return found

    def labels(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


def assert_no_sentinel(text: str, *more: str) -> None:
    for secret in (FEATURE_SENTINEL, str(NUMBER_SENTINEL), KEY_SENTINEL, TOKEN, *more):
        assert secret not in text, secret


def with_sentinels(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["plan"] = pd.array([FEATURE_SENTINEL] * len(frame), dtype="string")
    frame.iloc[0, 0] = NUMBER_SENTINEL
    return frame


def fit(case: Case) -> Any:
    return lambda X, y, rounds: pipeline(case, list(X.columns[:6]), rounds).fit(X, y)


# --------------------------------------------------------------------------- a real server
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    repo, live = build_project(tmp_path_factory.mktemp("metrics-string"), fit(STRING_CASE), STRING_CASE, rounds=(5, 10))
    with running_server(repo, "model", "prod", watchdog=0.3) as server:
        yield server, live


def scrape(url: str, **headers: str) -> Scrape:
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return Scrape(answer.text)


def test_a_real_server_shows_traffic_a_canary_and_its_automatic_rollback(served: Any) -> None:
    server, live = served
    url, bodies = server.url, []
    numeric = list(live.columns[:6])

    first = scrape(url)  # no token
    assert first.value("rollbackkit_traffic_share", version="v1.0.0", role="live", model="model", env="prod") == 1.0
    assert first.value("rollbackkit_build_info") == 1.0

    healthy = with_sentinels(live.iloc[:200])
    for i in range(0, 200, ROWS_PER_REQUEST):
        assert (
            server.predict(records(healthy.iloc[i : i + ROWS_PER_REQUEST]), key=f"{KEY_SENTINEL}-{i}").status_code
            == 200
        )
    missing = records(live.iloc[:3].drop(columns=[numeric[1]]))
    assert server.predict(missing).status_code == 422  # the client's error
    assert httpx.post(f"{url}/predict", content=b"{not json", timeout=10).status_code == 400
    assert server.admin("rollback", {"reason": "x"}, token=None).status_code == 401
    label = {"on": "key", "labels": [{"key": f"{KEY_SENTINEL}-0", "row": 0, "label": "malignant"}]}
    assert server.admin("../labels", label).status_code == 200

    seen = scrape(url)
    bodies.append(seen.text)
    ok = {"version": "v1.0.0", "slot": "blue"}
    assert seen.value("rollbackkit_requests_total", **ok, outcome="ok") == 4
    assert seen.value("rollbackkit_requests_total", **ok, outcome="client_error") == 1
    assert seen.value("rollbackkit_requests_total", **ok, outcome="error") == 0
    assert seen.value("rollbackkit_rows_scored_total", version="v1.0.0") == 200
    assert seen.value("rollbackkit_request_duration_seconds_count", version="v1.0.0") == 4
    assert seen.value("rollbackkit_refused_requests_total", reason="bad_predict_body") == 1
    assert seen.value("rollbackkit_refused_requests_total", reason="unauthorised") == 1
    assert seen.value("rollbackkit_log_write_errors_total") == 0
    assert seen.value("rollbackkit_log_writer_restarts_total") == 0
    assert seen.value("rollbackkit_log_store_reachable") == 1
    assert seen.value("rollbackkit_log_backlog_rows") is not None

    canary = server.admin("deploy", {"version": "v1.1.0", "canary": 30, "force": True})  # the sentinel plan is unseen
    assert canary.status_code == 200, canary.text
    shares = scrape(url)
    assert shares.value("rollbackkit_traffic_share", version="v1.0.0", role="live") == pytest.approx(0.7)
    assert shares.value("rollbackkit_traffic_share", version="v1.1.0", role="canary") == pytest.approx(0.3)
    assert shares.value("rollbackkit_traffic_changes_total", action="canary") == 1
    assert {i["role"] for i in shares.labels("rollbackkit_serving_info")} == {"live", "canary"}

    during = with_sentinels(degraded(live.iloc[200:2200], numeric))
    for i in range(0, len(during), ROWS_PER_REQUEST):
        server.predict(records(during.iloc[i : i + ROWS_PER_REQUEST]), key=f"{KEY_SENTINEL}-d{i}")

    def rolled_back() -> Scrape | None:
        now = scrape(url)
        return now if now.value("rollbackkit_rollbacks_total", kind="automatic") == 1 else None

    after = wait(rolled_back, 60, "the automatic rollback on /metrics", every=0.2)
    bodies.append(after.text)
    automatic = [
        s for s in after.samples if s.name == "rollbackkit_rollbacks_total" and s.labels["kind"] == "automatic"
    ]
    assert [s.labels["reason"] for s in automatic if s.value] == ["segment-drift"]  # the other gates' stay at 0
    assert after.value("rollbackkit_traffic_changes_total", action="auto-rollback") == 1
    assert after.value("rollbackkit_traffic_share", version="v1.0.0", role="live") == 1.0
    assert after.value("rollbackkit_traffic_share", version="v1.1.0", role="canary") is None
    assert after.value("rollbackkit_requests_total", version="v1.1.0", outcome="ok") > 0

    def every_name() -> Scrape | None:  # the live version's gates are reported at the next evaluation
        now = scrape(url)
        return now if set(CONTRACT_NAMES) <= now.names() else None

    try:
        named = wait(every_name, 30, "every contract metric", every=0.2)
    except AssertionError:
        now = scrape(url)
        raise AssertionError(f"missing {sorted(set(CONTRACT_NAMES) - now.names())}: {now.text}") from None
    bodies.append(named.text)
    for sample in named.samples:
        if sample.name.startswith("rollbackkit_"):
            assert sample.labels["model"] == "model" and sample.labels["env"] == "prod", sample
    for body in bodies:
        assert_no_sentinel(body, "malignant", "benign")

    openmetrics = httpx.get(f"{url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=30)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


# --------------------------------------------------------------------------- in-process servers
@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pd.DataFrame]]:
    return {
        case.name: build_project(tmp_path_factory.mktemp(case.name), fit(case), case, rounds=(5, 10)) for case in CASES
    }


class Client:
    """The app in this process, over httpx's ASGI transport (no socket: it adds nothing here)."""

    def __init__(self, env: ServingEnvironment) -> None:
        self.app = create_app(env, TOKEN)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://in") as client:
                return await client.request(method, path, **kwargs)

        return run_async(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def in_process(repo: Path, **options: Any) -> tuple[ServingEnvironment, Client]:
    env = ServingEnvironment(repo, "model", "prod", **options)
    env.start()
    return env, Client(env)


def send(client: Client, frame: pd.DataFrame, prefix: str) -> None:
    for i in range(0, len(frame), ROWS_PER_REQUEST):
        body = {"records": records(frame.iloc[i : i + ROWS_PER_REQUEST]), "key": f"{prefix}-{i}"}
        assert client.post("/predict", json=body).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_kind_of_model_counts_errors_rollbacks_and_gates(
    case: Case, projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, live = projects[case.name]
    numeric = list(live.columns[:6])
    env, client = in_process(repo)
    send(client, with_sentinels(live.iloc[:300]), KEY_SENTINEL)
    assert client.post("/predict", json={"records": records(live.iloc[:2].drop(columns=["plan"]))}).status_code == 422
    slot = env.router.state.slot(env.router.state.live)
    assert slot is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the model's own failure")

    monkeypatch.setattr(slot.bundle, "predict", broken)
    assert client.post("/predict", json={"records": records(live.iloc[:2])}).status_code == 500
    monkeypatch.undo()

    seen = Scrape(client.get("/metrics").text)
    counted = {
        o: seen.value("rollbackkit_requests_total", version="v1.0.0", outcome=o)
        for o in ("ok", "client_error", "error")
    }
    assert counted == {"ok": 6, "client_error": 1, "error": 1}
    assert seen.value("rollbackkit_rows_scored_total", version="v1.0.0") == 300
    assert seen.value("rollbackkit_request_duration_seconds_count", version="v1.0.0") == 7  # ok and model errors

    env.deploy("v1.1.0", canary=40, reason="try it", force=True)  # the sentinel plan is unseen
    shares = Scrape(client.get("/metrics").text)
    assert shares.value("rollbackkit_traffic_share", version="v1.1.0", role="canary") == pytest.approx(0.4)
    assert shares.value("rollbackkit_traffic_share", version="v1.0.0", role="live") == pytest.approx(0.6)
    for gate in ("errors", "segment-drift"):  # at 0 before any: increase() sees the first automatic rollback
        assert shares.value("rollbackkit_rollbacks_total", kind="automatic", reason=gate) == 0
    env.rollback(reason="changed my mind")
    manual = Scrape(client.get("/metrics").text)
    assert manual.value("rollbackkit_rollbacks_total", kind="manual", reason="manual") == 1
    assert manual.value("rollbackkit_traffic_share", role="canary") is None

    env.deploy("v1.1.0", canary=40, reason="again", force=True)
    told: list[TrafficEvent] = []
    env.listeners.append(told.append)
    send(client, with_sentinels(degraded(live.iloc[300:2300], numeric)), f"{KEY_SENTINEL}-d")
    wait(lambda: env.check_gates() is not None, 30, "the watchdog's rollback", every=0.1)
    rolled = [e for e in told if e.action == "auto-rollback"]
    assert [e.failed_gates for e in rolled] == [("segment-drift",)], told  # the names as data, not parsed back
    body = client.get("/metrics").text
    assert_no_sentinel(body)
    after = Scrape(body)
    assert after.value("rollbackkit_rollbacks_total", kind="automatic", reason="segment-drift") == 1
    assert after.value("rollbackkit_rollbacks_total", kind="manual") == 1
    changes = {
        a: after.value("rollbackkit_traffic_changes_total", action=a) for a in ("canary", "rollback", "auto-rollback")
    }
    assert changes == {"canary": 2, "rollback": 1, "auto-rollback": 1}
    gate = {"version": "v1.1.0", "gate": "segment-drift"}
    assert after.value("rollbackkit_gate_status", **gate, status="fail") == 1
    assert (
        sum(
            after.number("rollbackkit_gate_status", **gate, status=s) for s in ("pass", "warn", "inconclusive", "error")
        )
        == 0
    )
    assert after.value("rollbackkit_gate_threshold", **gate) == 0.5
    assert after.number("rollbackkit_gate_value", **gate) > 0.5
    assert after.value("rollbackkit_gate_decision", version="v1.1.0", decision="rollback") == 1
    assert after.value("rollbackkit_gate_decision", version="v1.1.0", decision="pass") == 0
    assert 0 <= after.number("rollbackkit_gate_report_age_seconds") < 30
    env.stop()


def test_two_environments_in_one_process_keep_their_own_metrics(projects: dict[str, tuple[Path, pd.DataFrame]]) -> None:
    (one, live), (other, _) = projects["boolean-labels"], projects["regressor"]
    first, a = in_process(one)
    second, b = in_process(other)
    assert first.metrics is not None and second.metrics is not None
    assert first.metrics.registry is not second.metrics.registry
    send(a, live.iloc[:100], "a")
    assert Scrape(a.get("/metrics").text).value("rollbackkit_requests_total", outcome="ok") == 2
    assert Scrape(b.get("/metrics").text).value("rollbackkit_requests_total", outcome="ok") is None


def test_a_shadow_shows_the_share_it_mirrors_and_what_it_scored(projects: dict[str, tuple[Path, pd.DataFrame]]) -> None:
    repo, live = projects["integer-labels"]
    env, client = in_process(repo)
    env.deploy("v1.1.0", shadow=50, reason="watch it first", force=True)
    send(client, live.iloc[:500], "s")
    assert env.mirror.drain(30)
    seen = Scrape(client.get("/metrics").text)
    assert seen.value("rollbackkit_traffic_share", version="v1.1.0", role="shadow") == 0.5
    assert seen.value("rollbackkit_traffic_share", version="v1.0.0", role="live") == 1.0
    assert seen.value("rollbackkit_traffic_changes_total", action="shadow") == 1
    assert seen.number("rollbackkit_shadow_mirrored_total") > 0
    assert seen.value("rollbackkit_requests_total", version="v1.1.0") is None  # mirrored requests are no traffic
    gone = {"version": "model@v0.9.0", "decision": "rollback", "gates": [{"name": "errors", "status": "fail"}]}
    env.last_report = gone  # a report of a version in no slot any more: its gates are not shown as current
    assert Scrape(client.get("/metrics").text).value("rollbackkit_gate_status") is None
    env.stop()


@dataclass
class _Row:
    """A ``replicas`` table row, as the store lists it."""

    replica: str
    generation: int
    fresh: bool = True
    error: str | None = None


class _Store:
    """The store's replica table and the watchdog's lead, as a replica of a shared store reads them."""

    def list(self, name: str, env: str) -> list[_Row]:
        rows = [_Row("a", 7), _Row("b", 6), _Row("c", 7, fresh=False), _Row("d", 5, error="cannot load v9")]
        return [*rows, _Row("me", 6)]

    def status(self) -> dict[str, Any]:
        return {"leader": "a", "leading": False}


def test_replicas_and_notifications_are_read_from_what_the_server_keeps(
    projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, client = in_process(projects["regressor"][0])
    env.sync = SimpleNamespace(generation=6, failures=2)  # type: ignore[assignment]
    targets = {"oncall": SimpleNamespace(delivered=3, failed=1, retries=4, queued=2, last_error="HTTP 503")}
    notifier = SimpleNamespace(status=lambda: SimpleNamespace(targets=targets))  # H2's NotifyStatus, as read
    for attribute, value in (("replica_table", _Store()), ("leadership", _Store()), ("notifier", notifier)):
        setattr(env, attribute, value)
    seen = Scrape(client.get("/metrics").text)
    states = {
        state: seen.value("rollbackkit_replicas", state=state) for state in ("serving", "lagging", "stale", "error")
    }
    assert states == {"serving": 1, "lagging": 2, "stale": 1, "error": 1}
    assert seen.value("rollbackkit_replica_generation", replica="d") == 5
    assert seen.value("rollbackkit_replica_behind") == 1
    assert seen.value("rollbackkit_watchdog_leader") == 0
    assert seen.value("rollbackkit_sync_failures_total") == 2
    assert seen.value("rollbackkit_notifications_total", target="oncall", outcome="delivered") == 3
    assert seen.value("rollbackkit_notifications_total", target="oncall", outcome="failed") == 1
    assert seen.value("rollbackkit_notification_retries_total", target="oncall") == 4
    assert seen.value("rollbackkit_notifications_queued", target="oncall") == 2
    assert "HTTP 503" not in seen.text and "cannot load" not in seen.text

    def outage(name: str, env: str) -> list[_Row]:
        raise OSError("the store is down")

    monkeypatch.setattr(metrics_state, "STALE_AFTER", 0.5)
    monkeypatch.setattr(env.replica_table, "list", outage)
    seen = wait(lambda: (s := Scrape(client.get("/metrics").text)).value("rollbackkit_replicas", state="unknown")
                and s, 10, "the replicas shown as unknown", every=0.2)  # fmt: skip
    assert seen.value("rollbackkit_replicas", state="unknown") == 5 and seen.value("rollbackkit_replicas") == 5
    assert seen.value("rollbackkit_replica_generation") is None and seen.value("rollbackkit_watchdog_leader") is None
    assert seen.number("rollbackkit_metrics_read_age_seconds", source="replicas") > 0.5


class _StuckLog:
    """A log whose writer does not answer (a long backfill holds it)."""

    def status(self, wait: float = 1.0) -> dict[str, Any]:
        time.sleep(3)
        return {"write_errors": 0, "last_write_error": None, "unwritten": 0, "sink_errors": 0}


def test_a_stuck_log_writer_never_holds_a_scrape(projects: dict[str, tuple[Path, pd.DataFrame]]) -> None:
    env, client = in_process(projects["integer-labels"][0])
    env.log = _StuckLog()  # type: ignore[assignment]
    for expected in (1, 2):  # the second scrape starts no second read while the first still runs
        started = time.monotonic()
        seen = Scrape(client.get("/metrics").text)
        assert time.monotonic() - started < READ_BUDGET + 1.0
        assert seen.value("rollbackkit_metrics_unread_total", source="log") == expected
        assert seen.value("rollbackkit_traffic_share", role="live") == 1.0  # the rest is there
    reads = [t for t in threading.enumerate() if t.name == "rollbackkit-metrics-read"]
    assert len(reads) <= 1


def test_a_stopped_log_writer_shows_its_backlog_and_drops_at_once_then_unreachable(
    projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, live = projects["integer-labels"]
    env, client = in_process(repo)
    monkeypatch.setattr(process, "MAX_PENDING", 50)
    monkeypatch.setattr(metrics_state, "STALE_AFTER", 1.0)
    log = process.LogProcess(tmp_path / "log.duckdb")
    os.kill(log._process.pid, signal.SIGSTOP)  # the writer hangs (a stuck DuckDB, a full pipe)
    try:
        env.log = log  # type: ignore[assignment]
        for _ in range(80):
            log.record({"key": "k"}, live.iloc[:1], None)
        seen = Scrape(client.get("/metrics").text)  # its status read hangs: the server's own counts show
        assert seen.value("rollbackkit_log_backlog_rows") == 50
        assert seen.value("rollbackkit_log_dropped_rows_total") == 30
        gone = wait(lambda: (s := Scrape(client.get("/metrics").text)).value("rollbackkit_log_store_reachable") == 0
                    and s, 10, "the stuck writer shown as unreachable", every=0.2)  # fmt: skip
        assert gone.number("rollbackkit_metrics_unread_total", source="log") >= 1
        assert gone.value("rollbackkit_log_backlog_rows") == 50  # still there, still counted
    finally:
        os.kill(log._process.pid, signal.SIGCONT)
        log.close(wait=5)


def test_one_scrape_renders_at_a_time_the_others_get_its_last_body(
    projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, client = in_process(projects["boolean-labels"][0])
    assert env.metrics is not None
    first = client.get("/metrics")
    monkeypatch.setattr(metrics_state, "READ_BUDGET", 3.0)
    env.log = _StuckLog()  # type: ignore[assignment]
    slow = threading.Thread(target=env.metrics.exposition)
    slow.start()
    wait(lambda: env.metrics is not None and env.metrics._rendering.locked(), 10, "the slow scrape", every=0.01)
    started = time.monotonic()
    cached = client.get("/metrics")  # served at once, on no thread of its own for long
    assert cached.status_code == 200 and time.monotonic() - started < 2.0
    assert cached.text == first.text
    busy = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert busy.status_code == 503 and set(busy.json()) == {"error", "hint"}  # nothing rendered in that format yet
    slow.join()


def test_without_metrics_the_route_is_a_one_line_404(projects: dict[str, tuple[Path, pd.DataFrame]]) -> None:
    repo = projects["boolean-labels"][0]
    env, client = in_process(repo, metrics=False)
    answer = client.get("/metrics")
    assert answer.status_code == 404
    assert set(answer.json()) == {"error", "hint"} and "--no-metrics" in answer.json()["error"]
    assert env.listeners == []
    with running_server(repo, "model", "prod", args=("--no-metrics", "--no-log")) as server:
        refused = httpx.get(f"{server.url}/metrics", timeout=10)
        assert refused.status_code == 404 and "--no-metrics" in refused.json()["error"]
        assert server.predict(records(projects["boolean-labels"][1].iloc[:5])).status_code == 200


def test_the_bench_calls_the_p99_goal_met_only_when_its_whole_interval_is_within_it() -> None:
    from bench.metrics import target_verdict

    def verdict(low: float, high: float, floor: float = 1.0) -> bool | None:
        said = {"p99_ratio": (low + high) / 2, "p99_ratio_90ci": [low, high], "noise_floor_off_vs_off_p99_ratio": floor}
        return target_verdict(said)[0]

    assert verdict(0.77, 1.18) is None  # the committed first run: a point ratio of 0.94 resolves nothing
    assert target_verdict({"p99_ratio": 0.94, "p99_ratio_90ci": [0.77, 1.18], "noise_floor_off_vs_off_p99_ratio": 1.0})[
        1
    ].startswith("not resolved")
    assert verdict(0.97, 1.04) is True and verdict(1.06, 1.3) is False and verdict(0.97, 1.04, floor=1.2) is None


def test_reads_started_and_awaited_from_many_scrapes_at_once_never_fail() -> None:
    """Two Prometheus servers (an HA pair) scrape at once: no scrape may join a read not yet started."""
    reads = metrics_state.BoundedReads()
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            for _ in range(300):
                reads.start("log", lambda: {"ok": True})
                reads.result("log", time.monotonic() + 0.5)
        except BaseException as exc:  # any failure is the finding
            errors.append(exc)

    scrapers = [threading.Thread(target=scrape) for _ in range(8)]
    for thread in scrapers:
        thread.start()
    for thread in scrapers:
        thread.join()
    assert errors == []
    assert reads.result("log", time.monotonic() + 0.5) == {"ok": True}


def test_what_metrics_and_analysis_could_not_answer_shows_in_status_and_in_metrics(
    projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every count an on-call can alert on is in both places: a refused scrape, an /analysis that could not be
    judged (its 503 names the exception's type only: the text can quote a value), a read not answered in time
    and the replica's sync failures."""
    from rollbackkit.errors import MetricsBusy
    from rollbackkit.serving.verdict import Verdicts

    env, client = in_process(projects["integer-labels"][0])
    assert env.metrics is not None
    env.log = _StuckLog()  # type: ignore[assignment]
    env.sync = SimpleNamespace(failures=3, status=lambda: {"replica": "a", "error": None})  # type: ignore[assignment]

    def raising(self: Verdicts, version: str | None = None) -> None:
        raise ValueError("could not convert string to float: 'plan-sentinel-5d1e'")

    monkeypatch.setattr(Verdicts, "verdict", raising)
    failed = client.get("/analysis")
    assert failed.status_code == 503 and set(failed.json()) == {"error", "hint"}
    assert "ValueError" in failed.json()["error"]
    assert_no_sentinel(failed.text)
    assert FEATURE_SENTINEL in capsys.readouterr().err  # the full text: the server's own log

    def busy(accept: str = "") -> tuple[bytes, str]:
        raise MetricsBusy("Another scrape of /metrics is being rendered.", "Scrape again.")

    render = env.metrics.exposition
    monkeypatch.setattr(env.metrics, "exposition", busy)
    assert client.get("/metrics").status_code == 503
    monkeypatch.setattr(env.metrics, "exposition", render)
    seen = Scrape(client.get("/metrics").text)
    assert seen.value("rollbackkit_analysis_unanswered_total", reason="error") == 1
    assert seen.value("rollbackkit_analysis_unanswered_total", reason="waiting") == 0
    assert seen.value("rollbackkit_metrics_refused_total") == 1
    unread = seen.number("rollbackkit_metrics_unread_total", source="log")

    said = client.get("/status").json()
    assert said["analysis"]["errors"] == 1 and said["analysis"]["waiting"] == 0
    assert "ValueError" in said["analysis"]["last_error"]
    assert said["metrics"]["enabled"] and said["metrics"]["scrapes_refused"] == 1
    assert said["metrics"]["unread"]["log"] >= unread >= 1 and said["metrics"]["read_age_s"]["log"] >= 0
    assert said["replica"]["failures"] == 3


def test_a_scrape_behind_another_never_gets_a_body_older_than_reuse_s(
    projects: dict[str, tuple[Path, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Prometheus servers scraping in step: the second waits for the body being rendered instead of
    getting the one rendered a scrape interval ago."""
    from rollbackkit.serving import metrics as metrics_module

    repo, live = projects["boolean-labels"]
    env, client = in_process(repo)
    assert env.metrics is not None
    old = Scrape(client.get("/metrics").text)
    send(client, live.iloc[:ROWS_PER_REQUEST], "later")
    monkeypatch.setattr(metrics_module, "REUSE_S", 0.2, raising=False)
    time.sleep(0.3)  # the first body is older than REUSE_S now (a scrape interval ago)
    monkeypatch.setattr(metrics_state, "READ_BUDGET", 0.8)
    monkeypatch.setattr(metrics_module, "READ_BUDGET", 0.8)
    env.log = _StuckLog()  # type: ignore[assignment]
    slow = threading.Thread(target=env.metrics.exposition)
    slow.start()
    wait(lambda: env.metrics is not None and env.metrics._rendering.locked(), 10, "the slow scrape", every=0.01)
    behind = client.get("/metrics")
    slow.join()
    assert behind.status_code == 200, behind.text
    now = Scrape(behind.text)
    assert now.number("rollbackkit_requests_total") == (old.value("rollbackkit_requests_total") or 0) + 1


def test_an_automatic_rollbacks_reason_label_is_the_failed_gates_names_carried_as_data() -> None:
    # gate names with spaces and colons in their words: nothing is parsed back from the summary
    env = SimpleNamespace(name="house", env="prod", last_report=None)
    metrics = ServingMetrics(env)
    shift = GateResult("shift", "prediction_drift", "rollback", "fail", 0.9, {"max": 0.25})
    mae = GateResult("mae", "label_metric", "rollback", "fail", 310.0, {"max": 80.0})
    noted = GateResult("by-sex", "slice", "warn", "fail", 45.5, {"max": 5.0})  # a warn moves no traffic
    report = GateReport("v2.0.0", 55, "rollback", [shift, mae, noted])
    assert failed_names(report) == ("mae", "shift")
    said = {"tag": "house#prod#4", "action": "auto-rollback", "previous": "v2.0.0", "gates": "rollback: odd words"}
    metrics.on_event(TrafficEvent("rollback", "house", "prod", "v1.0.0", **said, failed_gates=failed_names(report)))
    metrics.on_event(TrafficEvent("rollback", "house", "prod", "v1.0.0", **said))  # names unknown: never guessed
    metrics.on_event(TrafficEvent("rollback", "house", "prod", "v1.0.0", action="rollback"))
    counted = {
        (s.labels["kind"], s.labels["reason"]): s.value
        for family in metrics.rollbacks.collect()
        for s in family.samples
        if s.name == "rollbackkit_rollbacks_total"
    }
    assert counted == {("automatic", "mae+shift"): 1, ("automatic", "unknown"): 1, ("manual", "manual"): 1}
