"""Replicas converge (issue 20): several served environments on one shared store act as one.

A wine classifier with string labels, three versions registered. Three
:class:`ServingEnvironment` objects on the same project and the same PostgreSQL store
(each with its :class:`ReplicaSync`, as three ``serve`` processes would be) take operations
on any of them: every other one serves the change within the operation's answer, loads warm
before it switches, and two operations sent at once to two replicas end in one state and
one stage tag each. A replica that cannot load a version keeps serving and says why; a store
that goes away stops nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.errors import InvalidInput, StoreError, Superseded
from rollbackkit.ops.traffic import deploy as deploy_offline
from rollbackkit.serving import replica_health
from rollbackkit.serving.app import create_app
from rollbackkit.serving.desired import Desired, Placement
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.postgres import replicas as replicas_table
from rollbackkit.serving.postgres.replicas import ReplicaTable
from rollbackkit.serving.postgres.schema import ROW_TABLES
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.sync import ReplicaSync

from .asyncs import run_async
from .conftest import copy_project, shared_template
from .story import widened
from .test_matrix import MATRIX, pipeline, template

CASE = MATRIX["multiclass-string-labels"]  # wine, string labels
OLD, NEW, NEWEST = "v1.0.0", "v1.1.0", "v1.2.0"


@pytest.fixture(scope="module")
def wine_template(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, pd.DataFrame]:
    """``model@v1.0.0`` serving prod, ``v1.1.0`` and ``v1.2.0`` registered; built once per run (on a copy
    of test_matrix's wine project, across xdist workers)."""
    wine, live = template(CASE, tmp_path_factory)

    def build(root: Path) -> Path:
        shutil.copy(wine.parent / "features.py", root / "features.py")
        repo = copy_project(wine, root)
        train, held_out = widened(CASE, 1500, seed=1), widened(CASE, 800, seed=2)
        X = train.drop(columns=["target"]).assign(
            plan=lambda f: f["plan"].astype("string").fillna("missing").astype(object)
        )
        Registry(repo).register(
            "model", pipeline(CASE, list(X.columns[:6]), 25).fit(X, train["target"]), train, target="target",
            version=NEWEST, validation_data=held_out, preprocess=root / "features.py",
        )  # fmt: skip
        return repo

    return shared_template(tmp_path_factory, "replica-sync-template", build), live


@pytest.fixture
def wine(wine_template: tuple[Path, pd.DataFrame], tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    template, live = wine_template
    shutil.copy(template.parent / "features.py", tmp_path / "features.py")
    return copy_project(template, tmp_path), live


class Replicas:
    """Served environments of one project on one store, each with its sync; stopped at the end.

    ``http=True``: each one also answers HTTP on 127.0.0.1 (its URL in its heartbeat), as a
    ``serve`` process would, so its peers can ask it whether it reaches the store.
    """

    def __init__(self, url: str, *, gone_after: float | None = None) -> None:
        self.store = open_store(url)
        self.gone_after = gone_after
        self.envs: list[ServingEnvironment] = []
        self.servers: list[uvicorn.Server] = []

    def start(self, repo: Path, replica: str, *, http: bool = False) -> ServingEnvironment:
        env = ServingEnvironment(repo, "model", "prod", scoring_threads=None)
        env.start()
        sync = ReplicaSync(
            env, self.store, replica, heartbeat=0.2, poll=0.3, converge_timeout=10.0, gone_after=self.gone_after
        )
        env.sync = sync
        if http:
            sync.url = self._serve_http(env)
        sync.start()
        self.envs.append(env)
        return env

    def _serve_http(self, env: ServingEnvironment) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(env, "token"), port=port, log_level="error"))
        threading.Thread(target=server.run, daemon=True).start()
        self.servers.append(server)
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the replica's HTTP server never started"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for env in self.envs:
            if env.sync is not None:
                env.sync.stop()


@pytest.fixture
def replicas(store_url: str) -> Iterator[Replicas]:
    started = Replicas(store_url)
    yield started
    started.stop()


def _serves(env: ServingEnvironment) -> tuple[str | None, str | None, int]:
    """(live version, canary version, canary percent) of one replica's router."""
    state = env.router.state
    live, canary = state.slot(state.live), state.slot(state.canary)
    return (live.bundle.version if live else None, canary.bundle.version if canary else None, state.percent)


def _healthz(env: ServingEnvironment) -> httpx.Response:
    """``GET /healthz`` of the replica's app (what a load balancer asks)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(env, "token"))
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            return await client.get("/healthz")

    return run_async(get())


def _tags(repo: Path) -> list[str]:
    done = subprocess.run(["git", "tag", "--list", "model#prod#*"], cwd=repo, capture_output=True, text=True)
    return done.stdout.split()


def test_an_operation_sent_to_one_replica_is_served_by_every_replica_within_its_answer(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas
) -> None:
    repo, live = wine
    a, b, c = (replicas.start(repo, r) for r in ("a", "b", "c"))
    assert {_serves(e) for e in (a, b, c)} == {(OLD, None, 0)}
    answered: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:  # requests to c while it follows: each one answered by a warm slot
        frame = live.iloc[:5].reset_index(drop=True)
        while not stop.is_set():
            try:
                routed = c.predict(frame)
            except BaseException as exc:  # pragma: no cover - the assertion below names it
                failures.append(exc)
                return
            assert routed.slot.warmup_ms > 0
            answered.append(routed.version)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        # a deploy on a: b and c load v1.1.0 warm, then switch, before a answers
        deployed = a.deploy(NEW, reason="new model", actor="ada")
        assert deployed["replicas"]["converged"] is True, deployed["replicas"]
        assert {_serves(e) for e in (a, b, c)} == {(NEW, None, 0)}
        tag = deployed["assignment"]["tag"]
        assert {e.router.state.slot(e.router.state.live).deployment for e in (a, b, c)} == {tag}  # type: ignore[union-attr]
        standby = c.router.state.standby
        assert standby is not None and standby.bundle.version == OLD
        # a rollback on b: to the warm standby everywhere, nothing loaded
        rolled = b.rollback(reason="bad answers", actor="ada")
        assert rolled["replicas"]["converged"] is True
        assert {_serves(e) for e in (a, b, c)} == {(OLD, None, 0)}
        assert c.router.state.slot(c.router.state.live) is not None
        assert c.router.state.slot(c.router.state.live).bundle is standby.bundle  # type: ignore[union-attr]
        # a stepped canary from c, advanced on a, promoted on b
        stepped = c.deploy(NEW, steps=[20, 50, 100], bake_s=1.0, reason="stepped")
        assert stepped["replicas"]["converged"] is True
        assert {_serves(e) for e in (a, b, c)} == {(OLD, NEW, 20)}
        advanced = a.advance(unless_changed_since=a.router.state.generation, reason="baked", actor="ada")
        assert advanced["replicas"]["converged"] is True
        assert {_serves(e) for e in (a, b, c)} == {(OLD, NEW, 50)}
        promoted = b.promote(reason="good", actor="ada")
        assert promoted["replicas"]["converged"] is True
        assert {_serves(e) for e in (a, b, c)} == {(NEW, None, 0)}
        # 50 shifts, alternately rolled back and deployed, each sent to the next replica
        ms: list[float] = []
        for i in range(50):
            env = (a, b, c)[i % 3]
            answer = env.rollback(reason=f"shift {i}") if i % 2 == 0 else env.deploy(NEW, reason=f"shift {i}")
            said = answer["replicas"]
            assert said["converged"] is True, said
            published = env.sync.routing.read("model", "prod")  # type: ignore[union-attr]
            assert published is not None and published.generation == said["generation"]
            switched = [pd.Timestamp(r["last_switch"]) for r in said["replicas"]]
            ms.append((max(switched) - pd.Timestamp(published.changed_at)).total_seconds() * 1000)
            assert len({_serves(e) for e in (a, b, c)}) == 1
    finally:
        stop.set()
        sender.join()
    assert not failures, failures
    assert set(answered) == {OLD, NEW} and len(answered) > 50
    p50, p99 = statistics.median(ms), statistics.quantiles(ms, n=100)[98]
    print(f"convergence over 50 shifts: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    assert p99 < 1000, ms
    statuses = [e.status()["replica"] for e in (a, b, c)]
    assert {s["generation"] for s in statuses} == {said["generation"]} and all(s["in_sync"] for s in statuses)


def test_two_operations_sent_to_two_replicas_at_once_end_in_the_second_ones_state(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas
) -> None:
    repo, _ = wine
    a, b = replicas.start(repo, "a"), replicas.start(repo, "b")
    before = _tags(repo)
    answers: dict[str, dict[str, Any]] = {}
    go = threading.Barrier(2)

    def send(env: ServingEnvironment, version: str) -> None:
        go.wait()
        answers[version] = env.deploy(version, reason=f"race {version}")

    threads = [threading.Thread(target=send, args=(e, v)) for e, v in ((a, NEW), (b, NEWEST))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) == {NEW, NEWEST}
    second = max(answers.values(), key=lambda said: said["replicas"]["generation"])
    version = second["assignment"]["version"]
    assert {_serves(e) for e in (a, b)} == {(version, None, 0)}
    assert all(said["replicas"]["converged"] for said in answers.values())
    added = [t for t in _tags(repo) if t not in before]
    assert len(added) == 2  # one stage tag per assignment, not one per replica
    assert second["assignment"]["tag"] == max(added, key=lambda t: int(t.rsplit("#", 1)[1]))
    first = min(answers.values(), key=lambda said: said["replicas"]["generation"])
    by = "a" if version == NEW else "b"
    newer = {"generation": second["replicas"]["generation"], "action": "deploy", "by": by}
    assert first["replicas"]["superseded_by"] in (None, newer)  # None: it converged before the second published
    assert (
        a.sync is not None
        and a.sync.wait_converged(first["replicas"]["generation"]).to_dict()["superseded_by"] == newer
    )
    assert second["replicas"]["superseded_by"] is None


def test_a_replica_that_cannot_load_a_version_keeps_serving_and_says_why(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, tmp_path: Path
) -> None:
    repo, live = wine
    other = copy_project(repo, tmp_path / "second-checkout")  # another host's checkout: v1.2.0 unknown there
    shutil.copy(repo.parent / "features.py", tmp_path / "second-checkout" / "features.py")
    subprocess.run(["git", "tag", "-d", f"model@{NEWEST}"], cwd=other, check=True, capture_output=True)
    a, b = replicas.start(repo, "a"), replicas.start(other, "b")
    assert _healthz(b).status_code == 200
    told: list[Any] = []
    a.on_event = told.append  # serve's terminal lines

    deployed = a.deploy(NEWEST, reason="only a knows it")

    said = deployed["replicas"]
    assert said["converged"] is False and list(said["lagging"]) == ["b"]
    lines = [e for e in told if e.kind == "not-everywhere"]  # the terminal and the journal never say "done" alone
    assert len(lines) == 1 and lines[0].version == NEWEST and lines[0].reason.startswith(f"b: cannot load {NEWEST}")
    record = [e for e in a.journal.entries() if e["event"] == "not-everywhere"]
    assert len(record) == 1 and list(record[0]["lagging"]) == ["b"] and record[0]["version"] == NEWEST
    assert said["lagging"]["b"].startswith(f"cannot load {NEWEST}: ")
    assert said["waited_ms"] < 5000  # the failure ends the wait, not the timeout
    assert _serves(b) == (OLD, None, 0) and b.predict(live.iloc[:3].reset_index(drop=True)).version == OLD
    assert b.sync is not None and b.sync.status()["error"] == said["lagging"]["b"]
    answer = _until_healthz(b, 503)  # a serves what the environment serves: b leaves the balancer
    assert NEWEST in answer.json()["reason"] and "replica b" in answer.json()["reason"]
    # an operation sent to b is refused (it cannot serve what the environment serves); a fixes it
    with pytest.raises(Exception, match="cannot serve generation"):
        b.rollback(reason="from b")
    back = a.rollback(reason="not everywhere")
    assert back["replicas"]["converged"] is True
    assert b.sync.error is None and _healthz(b).status_code == 200
    a.deploy(NEWEST, reason="again")
    _until_healthz(b, 503)
    replicas.envs.remove(a)
    a.sync.stop()  # the only replica that could serve it leaves: draining b would leave nobody serving
    answer = _until_healthz(b, 200)
    assert answer.json()["error"].startswith(f"cannot load {NEWEST}: ") and b.predict(live.iloc[:3]).version == OLD


def _until_healthz(env: ServingEnvironment, status: int, seconds: float = 5.0) -> httpx.Response:
    """``/healthz`` once it answers ``status`` (its replica sees the others on each poll)."""
    deadline = time.monotonic() + seconds
    while (answer := _healthz(env)).status_code != status:
        assert time.monotonic() < deadline, f"/healthz still {answer.status_code}: {answer.text}"
        time.sleep(0.05)
    return answer


def test_a_replica_started_after_git_moved_while_none_ran_serves_git_and_the_next_one_follows_it(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas
) -> None:
    repo, _ = wine
    replicas.start(repo, "a")  # the first replica publishes what git serves: generation 1
    replicas.stop()
    deploy_offline(repo, f"model@{NEWEST}", "prod", reason="while no replica ran")
    b = replicas.start(repo, "b")
    assert _serves(b) == (NEWEST, None, 0)  # git's newer assignment, not the store's older state
    assert b.sync is not None
    published = b.sync.routing.read("model", "prod")
    assert published is not None and (published.generation, published.action) == (2, "serve")
    assert published.desired.live is not None and published.desired.live.version == NEWEST
    c = replicas.start(repo, "c")
    assert _serves(c) == (NEWEST, None, 0) and c.sync is not None and c.sync.generation == 2


def test_an_automatic_rollback_reaches_every_replica_and_a_verdict_older_than_another_replicas_change_moves_nothing(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas
) -> None:
    repo, _ = wine
    a, b = replicas.start(repo, "a"), replicas.start(repo, "b")
    b.deploy(NEW, canary=30, reason="canary")
    seen = a.router.state.generation  # the leader's gate evaluation saw the canary
    rolled = a.rollback(reason="gate failed", automatic=True, gates="errors", unless_changed_since=seen)
    assert rolled["assignment"]["action"] == "auto-rollback" and rolled["replicas"]["converged"] is True
    assert {_serves(e) for e in (a, b)} == {(OLD, None, 0)}
    seen = a.router.state.generation
    b.deploy(NEW, canary=30, reason="again")  # another replica's operation after the verdict
    with pytest.raises(Superseded):
        a.rollback(reason="stale verdict", automatic=True, unless_changed_since=seen)
    assert {_serves(e) for e in (a, b)} == {(OLD, NEW, 30)}


_versions = st.from_regex(r"v[0-9]\.[0-9]\.[0-9]", fullmatch=True)
_placements = st.none() | st.builds(Placement, _versions, st.text(min_size=1), st.none() | st.integers(1, 100))


@given(st.builds(Desired, _placements, _placements, _placements, _placements))
def test_a_desired_state_reads_back_equal_from_its_json(desired: Desired) -> None:
    assert Desired.from_json(desired.to_json()) == desired


class Cable:
    """A TCP forwarder to the store that can be cut (every connection dropped, new ones refused) and mended."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.mend()

    def mend(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._sockets, self._listener = [], None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for one, other in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(one, other), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_a_replica_cut_off_from_the_store_keeps_serving_and_catches_up_when_it_is_back(
    wine: tuple[Path, pd.DataFrame], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicas_table, "STALE_AFTER", 0.6)  # seconds, not 5 and 30: the same story, faster
    monkeypatch.setattr(replicas_table, "GONE_AFTER", 2.5)
    monkeypatch.setattr(replica_health, "ASK_EVERY", 0.5)
    repo, live = wine
    parts = urlsplit(store_url)
    cable = Cable(parts.hostname or "127.0.0.1", parts.port or 5432)
    through = store_url.replace(f":{parts.port}/", f":{cable.port}/")
    direct, cut_off = Replicas(store_url, gone_after=2.5), Replicas(through, gone_after=2.5)
    try:
        a = direct.start(repo, "a", http=True)  # b asks a whether it reaches the store: it does
        b = cut_off.start(repo, "b")
        assert b.sync is not None and a.sync is not None
        a.sync.converge_timeout = 1.5
        cable.cut()
        frame = live.iloc[:4].reset_index(drop=True)
        deadline = time.monotonic() + 5
        while any(r.fresh for r in a.sync.replicas.list("model", "prod") if r.replica == "b"):
            assert time.monotonic() < deadline, "b's heartbeat never went stale"
            time.sleep(0.05)
        assert _healthz(b).status_code == 200  # a store blip drains nothing
        deployed = a.deploy(NEW, reason="while b is cut off")  # b's row is stale: b may serve on
        said = deployed["replicas"]
        assert said["converged"] is False and list(said["lagging"]) == ["b"], said  # never "done" while b lags
        assert "no heartbeat for" in said["lagging"]["b"] and f"may still serve {OLD}" in said["lagging"]["b"]
        assert b.predict(frame).version == OLD  # b serves on, on what it served
        while _healthz(b).status_code == 200:  # until it is gone: then it drains itself, and nobody waits for it
            assert time.monotonic() < deadline + 5, "b cut off for GONE_AFTER still takes traffic"
            time.sleep(0.1)
        assert "cannot see the store for" in _healthz(b).json()["reason"] and a.sync.url in _healthz(b).json()["reason"]
        assert a.sync.wait_converged(a.sync.generation, timeout=0.5).converged
        with pytest.raises(StoreError, match="Cannot reach the store"):
            b.rollback(reason="needs the store")
        assert b.sync.status()["store_error"]
        assert b.sync.status()["following"] is False and b.sync.status()["followed_s"] > 2.5
        assert _serves(b) == (OLD, None, 0)
        cable.mend()  # the NOTIFY went while b was away: its listener reconnects and reads what it missed
        deadline = time.monotonic() + 15
        while _serves(b) != (NEW, None, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _serves(b) == (NEW, None, 0) and b.predict(frame).version == NEW
        assert b.sync.generation == a.sync.generation and b.sync.in_sync
        assert b.sync.replicas.list("model", "prod")[1].generation == a.sync.generation
        assert _healthz(b).status_code == 200 and b.sync.status()["following"] is True
    finally:
        if cable._listener is None:  # b forgets its row through it
            cable.mend()
        direct.stop()
        cut_off.stop()
        cable.cut()


def test_a_store_outage_longer_than_the_bound_drains_no_replica(
    wine: tuple[Path, pd.DataFrame], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The managed PostgreSQL fails over for a minute: every replica keeps taking traffic."""
    monkeypatch.setattr(replica_health, "ASK_EVERY", 0.3)
    repo, live = wine
    parts = urlsplit(store_url)
    cable = Cable(parts.hostname or "127.0.0.1", parts.port or 5432)
    fleet = Replicas(store_url.replace(f":{parts.port}/", f":{cable.port}/"), gone_after=1.0)
    try:
        envs = [fleet.start(repo, name, http=True) for name in ("a", "b", "c")]
        for env in envs:
            assert env.sync is not None
            env.sync._see_peers()  # each one has listed the other two (the listener does so on every poll)
        cable.cut()
        deadline = time.monotonic() + 10
        while not all(env.sync and env.sync.outage and env.sync.status()["store_seen_s"] > 1.2 for env in envs):
            # cut off longer than the bound, and each asked its peers: none reaches the store
            assert time.monotonic() < deadline, [env.sync and env.sync.status() for env in envs]
            time.sleep(0.05)
        for env in envs:
            assert env.sync is not None
            answer = _healthz(env)
            assert answer.status_code == 200, answer.json()
            assert "no peer reaches it either" in env.sync.status()["outage"]
        assert envs[0].predict(live.iloc[:3].reset_index(drop=True)).version == OLD
    finally:
        cable.mend()
        fleet.stop()
        cable.cut()


def test_one_replica_id_serves_two_models_a_second_live_process_cannot_take_it_and_a_restart_can(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, store_url: str
) -> None:
    repo, _ = wine
    table = ReplicaTable(replicas.store)
    try:  # web-1 serves churn and fraud (the natural compose/k8s naming): two rows, each forgotten alone
        for name in ("churn", "fraud"):
            table.beat("web-1", name=name, env="prod", host="h", pid=1, generation=3, serving={})
        assert [r.name for r in table.list("churn", "prod")] == ["churn"]
        table.forget("web-1", "fraud", "prod")
        assert [(r.replica, r.generation) for r in table.list("churn", "prod")] == [("web-1", 3)]
        assert table.list("fraud", "prod") == []
        table.beat("killed-9", name="model", env="prod", host="gone", pid=9, generation=1, serving={})
        with replicas.store.connect(autocommit=True) as admin:  # killed -9 two hours ago: never forgotten
            admin.execute("UPDATE replicas SET heartbeat = heartbeat - interval '2 hours' WHERE replica = 'killed-9'")
    finally:
        table.close()
    dead = subprocess.Popen(["true"])
    dead.wait()
    twins = ReplicaTable(replicas.store)
    try:
        twins.beat("web-2", name="model", env="prod", host="host-b", pid=12, generation=1, serving={})
        twins.beat("web-3", name="model", env="prod", host=socket.gethostname(), pid=os.getppid(), serving={})
        twins.beat("r9", name="model", env="prod", host=socket.gethostname(), pid=dead.pid, serving={})
    finally:
        twins.close()
    replicas.start(repo, "r9")  # r9 killed -9 here a second ago restarts: its past, not a twin; the ghost goes
    for twin, where in (("web-2", "host-b"), ("web-3", socket.gethostname())):  # one id given to two processes
        with pytest.raises(InvalidInput, match=rf"Replica {twin} of model in prod already runs on {where} \(pid \d+\)"):
            Replicas(store_url).start(repo, twin)
    assert replicas.envs[0].sync is not None
    listed = replicas.envs[0].sync.replicas.list("model", "prod")
    assert [(r.replica, r.pid) for r in listed] == [("r9", os.getpid()), ("web-2", 12), ("web-3", os.getppid())]


def test_an_operation_that_fails_after_its_shift_publishes_nothing_and_a_failed_follow_is_counted(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = wine
    a, b = replicas.start(repo, "a"), replicas.start(repo, "b")
    assert a.sync is not None and b.sync is not None
    generation, tags = a.sync.generation, _tags(repo)

    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(a.deployments, "assign_locked", disk_full)  # the tag cannot be written: after the shift
    with pytest.raises(OSError, match="No space left"):
        a.deploy(NEW, reason="the disk is full")
    assert _serves(a) == (OLD, None, 0), "a shift nobody recorded is undone here"
    published = a.sync.routing.read("model", "prod")
    assert published is not None and published.generation == generation, "and never published"
    time.sleep(0.5)  # b's poll (0.3 s) has seen the store since
    assert _serves(b) == (OLD, None, 0) and _tags(repo) == tags
    assert a.sync.in_sync and a.sync.error is None and a.sync.generation == generation

    def broken(relabelled: Any) -> None:  # after the switch, b fails to tell its log (e.g. the store's stage read)
        raise RuntimeError("stage of the new deployment unreadable")

    monkeypatch.undo()
    monkeypatch.setattr(b, "adopted", broken)
    a.deploy(NEW, reason="b's follow fails after its switch")
    deadline = time.monotonic() + 5
    while b.status()["background"]["failures"] == 0:
        assert time.monotonic() < deadline, "a failed follow is never counted"
        time.sleep(0.05)
    said = b.status()["background"]
    assert (
        "replica sync: following the published state: RuntimeError: stage of the new deployment" in said["last_failure"]
    )


def test_a_replica_that_starts_slowly_holds_no_other_replicas_operation(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, tmp_path: Path
) -> None:
    repo, _ = wine
    other = copy_project(repo, tmp_path / "second-checkout")  # a host whose checkout still says OLD
    shutil.copy(repo.parent / "features.py", tmp_path / "second-checkout" / "features.py")
    a = replicas.start(repo, "a")
    a.deploy(NEW, reason="before b starts")
    b = ServingEnvironment(other, "model", "prod", scoring_threads=None)
    b.start()
    load = b._bundle

    def slow(version: str) -> Any:  # a big model: seconds to load and warm
        time.sleep(2.0)
        return load(version)

    b._bundle = slow  # type: ignore[method-assign]
    b.sync = ReplicaSync(b, replicas.store, "b", heartbeat=0.2, poll=0.3)
    replicas.envs.append(b)
    starting = threading.Thread(target=b.sync.start, daemon=True)
    starting.start()
    time.sleep(0.3)  # b loads NEW
    took = time.monotonic()
    a.rollback(reason="while b starts")
    assert time.monotonic() - took < 1.5, "an operation waited for another replica's start"
    starting.join(10)
    deadline = time.monotonic() + 10
    while _serves(b) != (OLD, None, 0):  # b follows the rollback it missed while it loaded
        assert time.monotonic() < deadline, _serves(b)
        time.sleep(0.05)


def test_a_log_that_fails_after_a_rollbacks_shift_never_undoes_it_and_the_replica_retries_it(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses a rollback's quarantine once (a lock timeout): the rollback stands everywhere,
    and the replica quarantines the bad version's rows a moment later by itself."""
    from rollbackkit.serving.postgres.log import PostgresLog

    repo, live = wine
    a, b = replicas.start(repo, "a"), replicas.start(repo, "b")
    a.log = PostgresLog(replicas.store)
    a.log.start()
    try:
        a.deploy(NEW, reason="v1.1.0 for everyone")
        assert _serves(b) == (NEW, None, 0)
        assert a.predict(live.iloc[:5].reset_index(drop=True)).version == NEW
        assert a.log.flush(10.0)
        quarantine, held = a.log.quarantine, threading.Event()  # a writer's batch holds the rows' lock a while
        held.set()

        def lock_timeout(*args: Any, **kwargs: Any) -> int:
            if held.is_set():
                raise StoreError("The store did not answer within 5 s (lock timeout).", "Roll back again once it does.")
            return quarantine(*args, **kwargs)

        monkeypatch.setattr(a.log, "quarantine", lock_timeout)
        answer = a.rollback(reason="v1.1.0 is wrong")
        assert answer["assignment"]["version"] == OLD and answer["replicas"]["converged"]
        assert _serves(a) == (OLD, None, 0) and _serves(b) == (OLD, None, 0), "a failed quarantine undid the rollback"
        said = a.status()["background"]
        assert said["failures"] == 1 and "quarantine of v1.1.0 failed after traffic moved" in said["last_failure"]
        assert "roll back again" not in said["last_failure"].lower() and "retries" in said["last_failure"]
        assert said["pending"] == ["quarantine of v1.1.0"]
        assert _tags(repo)[-1].endswith(str(answer["assignment"]["number"]))
        held.clear()  # the lock goes
        deadline = time.monotonic() + 10
        while a.status()["background"]["pending"]:  # the heartbeat thread retries it
            assert time.monotonic() < deadline, a.status()["background"]
            time.sleep(0.05)
        with replicas.store.connect() as con:
            every = " UNION ALL ".join(f"SELECT status FROM {t} WHERE version = %s" for t in ROW_TABLES)
            rows = con.execute(f"SELECT status, count(*) FROM ({every}) r GROUP BY 1", (NEW,) * len(ROW_TABLES))
            assert dict(rows.fetchall()) == {"quarantined": 5}  # the deploy's rows, staged while it baked
        assert a.status()["background"]["failures"] == 1
    finally:
        a.log.close(1.0)


def test_an_operation_whose_convergence_wait_fails_holds_no_lock_the_next_operation_needs(
    wine: tuple[Path, pd.DataFrame], replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while waiting for the other replicas fails that one answer, never every later operation."""
    repo, _ = wine
    a = replicas.start(repo, "a")
    assert a.sync is not None
    waits = a.sync.wait_converged

    def newer_rollbackkit_row(generation: int, timeout: float | None = None) -> Any:
        monkeypatch.setattr(a.sync, "wait_converged", waits)  # once
        raise ValueError("unknown placement field 'weight' (a row written by a newer rollbackkit)")

    monkeypatch.setattr(a.sync, "wait_converged", newer_rollbackkit_row)
    with pytest.raises(ValueError, match="newer rollbackkit"):
        a.deploy(NEW, reason="the wait for the replicas fails")
    answers: list[dict[str, Any]] = []
    rollback = threading.Thread(target=lambda: answers.append(a.rollback(reason="the next operation")), daemon=True)
    rollback.start()
    rollback.join(timeout=20)
    assert answers, "the next operation waits forever for the order lock the failed one kept"
    assert answers[0]["assignment"]["version"] == OLD and answers[0]["replicas"]["converged"]
    assert _serves(a) == (OLD, None, 0)
