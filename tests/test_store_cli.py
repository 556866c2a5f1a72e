"""The CLI on a shared store: a bad store stops ``serve`` with one line; ``status`` lists the replicas.

Real PostgreSQL (tests/postgres.py), the real ``rollbackkit`` console script as a subprocess,
real replicas on 127.0.0.1. ``served``: churn@v1.0.0 serving prod.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import httpx
import pytest

from rollbackkit.project import ProjectPaths
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import find_server
from rollbackkit.serving.postgres.leader import Leadership
from rollbackkit.serving.postgres.replicas import ReplicaTable
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.server import address_file

from .conftest import BIN, copy_project, run_cli
from .postgres import PgCluster, free_port


@pytest.fixture(scope="module")
def project(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the module: a bad store stops serve before it writes anything."""
    return copy_project(served_template, tmp_path_factory.mktemp("store-cli"))


def _newer(postgres: PgCluster) -> str:
    url = postgres.create_database("rk_newer_schema")
    with open_store(url).connect(autocommit=True) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    return url


def _wrong_password(postgres: PgCluster) -> str:
    postgres.execute("DO $$ BEGIN CREATE ROLE h5_oncall LOGIN PASSWORD 'the-right-one'; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")  # fmt: skip
    return postgres.url("postgres", user="h5_oncall", password="not-the-right-one")


BAD_STORES = {
    "unreachable port": (lambda pg: f"postgresql://postgres:sekrit-pw@127.0.0.1:{free_port()}/rk", "Cannot reach"),
    "unknown host": (lambda pg: "postgresql://postgres:sekrit-pw@no-such-host.invalid:5432/rk", "Cannot reach"),
    "wrong password": (_wrong_password, "refused the credentials"),
    "not a postgres URL": (lambda pg: "mysql://root:sekrit-pw@127.0.0.1/rk", "is not a PostgreSQL URL"),
    "missing database": (lambda pg: pg.url("rk_never_created"), "no such database"),
    "newer schema": (_newer, "newer rollbackkit"),
}


def _serve(project: Path, url: str, *, real: bool, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``rollbackkit serve churn --env prod`` on store ``url``: the console script in a subprocess
    (``real``), else its entry point in this process (the same code, without an interpreter's start)."""
    argv = ["serve", "churn", "--env", "prod", "--port", "0", "--no-runbook"]
    if real:
        done = subprocess.run([str(BIN / "rollbackkit"), *argv], cwd=project, capture_output=True, text=True,
                              env={**os.environ, "ROLLBACKKIT_STORE": url}, timeout=60)  # fmt: skip
        return done.returncode, done.stdout, done.stderr
    from rollbackkit.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLBACKKIT_STORE", url)
        patch.chdir(project)
        patch.setattr(sys, "argv", ["rollbackkit", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def status_here(project: Path, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``rollbackkit status churn --env prod ARGS`` through the CLI's entry point, in this process, 160 columns."""
    from rollbackkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLBACKKIT_STORE", store)
        patch.setenv("COLUMNS", "160")
        patch.chdir(project)
        patch.setattr(sys, "argv", ["rollbackkit", "status", "churn", "--env", "prod", *args])
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main()
    return subprocess.CompletedProcess([], int(exited.value.code or 0), out.getvalue(), err.getvalue())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(BAD_STORES))
def test_serve_with_a_bad_store_says_so_in_one_line_and_exits_1_before_loading_anything(
    case: str, project: Path, postgres: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    make, said = BAD_STORES[case]
    url = make(postgres)
    journal = project / ".rollbackkit" / "journal.jsonl"
    before = journal.read_text() if journal.exists() else ""
    code, out, err = _serve(project, url, real=case == "unreachable port", capsys=capsys)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], err
    assert "Traceback" not in err and out == ""
    password = url.split("@")[0].rsplit(":", 1)[-1]
    assert password not in err, "the store's password is never printed"
    assert (journal.read_text() if journal.exists() else "") == before, "nothing was loaded or journalled"
    servers = project / ".rollbackkit" / "local" / "servers"
    assert not list(servers.glob("*.json")) if servers.exists() else True


@contextmanager
def replicas(repo: Path, store: str, *names: str) -> Iterator[list[str]]:
    """``rollbackkit serve churn --env prod --replica NAME`` for each name, started together on free
    ports, until the block ends (their URLs, once each ``/healthz`` answers 200)."""
    env = {**os.environ, "ROLLBACKKIT_STORE": store, "ROLLBACKKIT_ADMIN_TOKEN": "test-admin-token-1234"}
    started = []
    for name in names:
        log = repo.parent / f"replica-{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--replica", name,
                 "--watchdog-interval", "0.3", "--no-runbook"],
                cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        started.append((address_file(_paths(repo), "churn", "prod", name), process, log))
    try:
        yield [_healthy(record, process, log) for record, process, log in started]
    finally:
        for _, process, _ in started:
            process.send_signal(signal.SIGTERM)
        for _, process, _ in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _healthy(record: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            url = str(json.loads(record.read_text())["url"])
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)


def _paths(repo: Path) -> ProjectPaths:
    return Repository(repo).paths


def _wait_for_a_leader(project: Path, store: str, seconds: float = 60.0) -> None:
    """Until ``status --json`` lists two replicas, one of them leading the watchdog."""
    deadline = time.monotonic() + seconds
    while True:
        said = json.loads(status_here(project, store, "--json").stdout)
        if len(said["replicas"]) == 2 and sum(r["leader"] for r in said["replicas"]) == 1:
            return
        assert time.monotonic() < deadline, f"no watchdog leader among two replicas after {seconds} s: {said}"
        time.sleep(0.2)


def test_two_replicas_of_one_project_on_one_host_start_and_status_lists_them(served: Path, store_url: str) -> None:
    with replicas(served, store_url, "r1", "r2") as (one, two):
        assert find_server(_paths(served), "churn", "prod") in (one, two)
        _wait_for_a_leader(served, store_url)  # elected on a first watchdog tick (a CLI process's start hid it)
        shown = run_cli(
            "status", "churn", "--env", "prod", cwd=served, env={"ROLLBACKKIT_STORE": store_url, "COLUMNS": "160"}
        )
        assert shown.returncode == 0, shown.stderr
        assert "r1" in shown.stdout and "r2" in shown.stdout and one in shown.stdout and two in shown.stdout
        assert "2 alive" in shown.stdout and "watchdog led by r" in shown.stdout
        said = json.loads(status_here(served, store_url, "--json").stdout)
        listed = {r["replica"]: r for r in said["replicas"]}
        assert set(listed) == {"r1", "r2"} and sum(r["leader"] for r in listed.values()) == 1
        assert all(r["serving"]["live"]["version"] == "v1.0.0" and not r["stale"] for r in listed.values())
        assert said["watchdog"]["leader"] in listed and "***" in said["store"]
        said_at_start = (served.parent / "replica-r1.log").read_text()
        assert "replica r1 on the store postgresql://postgres:***@127.0.0.1" in said_at_start, said_at_start
        told = [httpx.get(f"{url}/status", timeout=30).json()["watchdog"] for url in (one, two)]
        assert told[0]["leader"] == told[1]["leader"] == said["watchdog"]["leader"]
        assert sorted(t["leading"] for t in told) == [False, True], "one leads, the other follows and says who leads"


def test_status_reads_the_replicas_from_the_store_when_no_server_answers(served: Path, store_url: str) -> None:
    store = open_store(store_url)
    table = ReplicaTable(store)
    closed = f"http://127.0.0.1:{free_port()}"  # replicas elsewhere: nothing answers here
    serving = {"live": {"version": "v1.0.0", "tag": "t", "percent": None},
               "canary": {"version": "v1.1.0", "tag": "c", "percent": 25}}  # fmt: skip

    def beat() -> None:  # two fresh replicas (one that cannot load the canary) and one gone quiet
        table.beat("web-1", name="churn", env="prod", host="host-a", pid=11, url=closed, generation=7, serving=serving)
        table.beat("web-2", name="churn", env="prod", host="host-b", pid=12, url=closed, generation=6,
                   serving=serving, error="cannot load v1.1.0: disk full")  # fmt: skip
        table.beat("web-3", name="churn", env="prod", host="host-c", pid=13, url=closed, generation=5, serving=serving)
        with store.connect(autocommit=True) as con:
            con.execute("UPDATE replicas SET heartbeat = now() - interval '90 seconds' WHERE replica = 'web-3'")

    lead = Leadership(store, "churn", "prod", "web-1")
    try:
        assert lead.leading()
        beat()
        shown = status_here(served, store_url)
        assert shown.returncode == 0, shown.stderr
        out = shown.stdout
        assert "2 alive of 3, watchdog led by web-1" in out and "read from the store" in out, out
        assert "v1.0.0, canary v1.1.0 25%" in out and "cannot load v1.1.0: disk full" in out and "STALE" in out
        row = next(line for line in out.splitlines() if line.strip().startswith("web-1"))
        assert "leader" in row and " 7 " in row
        beat()
        as_json = status_here(served, store_url, "--json")
        assert as_json.returncode == 0, as_json.stderr
        said = json.loads(as_json.stdout)
        assert said["source"] == "store" and said["watchdog"]["leader"] == "web-1"
        stale = {r["replica"]: r["stale"] for r in said["replicas"]}
        assert stale == {"web-1": False, "web-2": False, "web-3": True}
    finally:
        lead.release()
        table.close()


def test_status_with_the_store_down_and_no_server_says_so_and_shows_the_history(served: Path) -> None:
    down = f"postgresql://postgres:sekrit-pw@127.0.0.1:{free_port()}/rk"
    shown = status_here(served, down)
    assert shown.returncode == 0, shown.stderr
    assert "v1.0.0" in shown.stdout and "Cannot reach the store" in shown.stdout and "sekrit-pw" not in shown.stdout
    said = [line for line in shown.stdout.splitlines() if "Cannot reach the store" in line]
    assert len(said) == 1 and said[0].startswith("replicas  unknown, the store did not answer: "), shown.stdout
    assert "the store is down" in shown.stdout.splitlines()[0], "the heading does not repeat the error"


def test_find_server_takes_a_live_replica_of_this_environment_and_never_another_environments(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollbackkit.serving.server import server_lock

    monkeypatch.delenv("ROLLBACKKIT_STORE", raising=False)
    paths = _paths(served)
    with server_lock(paths, "churn", "prod-eu"), server_lock(paths, "churn", "prod-eu", "x"):
        for replica in (None, "x"):  # churn-prod-eu.lock and churn-prod-eu-x.lock look like replicas of prod
            record = {"url": "http://127.0.0.1:9", "pid": os.getpid(), "name": "churn", "env": "prod-eu"}
            address_file(paths, "churn", "prod-eu", replica).write_text(json.dumps(record))
        assert find_server(paths, "churn", "prod") is None
        with server_lock(paths, "churn", "prod", "r9"):
            record = {
                "url": "http://127.0.0.1:4321",
                "pid": os.getpid(),
                "name": "churn",
                "env": "prod",
                "replica": "r9",
            }
            address_file(paths, "churn", "prod", "r9").write_text(json.dumps(record))
            assert find_server(paths, "churn", "prod") == "http://127.0.0.1:4321"
        assert find_server(paths, "churn", "prod") is None, "a replica that stopped holds no lock: its record is stale"


@contextmanager
def _answering(code: int) -> Iterator[str]:
    """A stand-in replica on 127.0.0.1 whose ``/healthz`` answers ``code`` (503: drained)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_find_server_passes_over_a_local_replica_that_is_drained(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollbackkit.serving.server import server_lock

    monkeypatch.delenv("ROLLBACKKIT_STORE", raising=False)
    paths = _paths(served)
    locks = server_lock(paths, "churn", "prod", "r1"), server_lock(paths, "churn", "prod", "r2")
    with _answering(503) as drained, _answering(200) as healthy, locks[0], locks[1]:
        for replica, url in (("r1", drained), ("r2", healthy)):  # r1 is listed first
            record = {"url": url, "pid": os.getpid(), "name": "churn", "env": "prod", "replica": replica}
            address_file(paths, "churn", "prod", replica).write_text(json.dumps(record))
        assert find_server(paths, "churn", "prod") == healthy, "a drained replica cannot take an operation"


def test_a_replica_id_needs_a_store_and_a_plain_name(served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollbackkit.errors import InvalidInput
    from rollbackkit.serving.replicated import replica_id
    from rollbackkit.serving.server import serve

    monkeypatch.delenv("ROLLBACKKIT_STORE", raising=False)
    with pytest.raises(InvalidInput, match="none is configured"):
        serve(served, "churn", "prod", replica="r1")
    with pytest.raises(InvalidInput, match="is not a replica id"):
        replica_id("web 1; rm -rf", 8000)
    monkeypatch.setenv("ROLLBACKKIT_REPLICA", "from-env")
    assert replica_id(None, 0) == "from-env" and replica_id("given", 0) == "given"
    monkeypatch.delenv("ROLLBACKKIT_REPLICA")
    assert replica_id(None, 8000).endswith("-8000") and replica_id(None, 0).endswith(f"-{os.getpid()}")


def test_the_status_screen_says_when_the_store_writer_cannot_reach_the_store() -> None:
    from rollbackkit.screens.status import _log
    from rollbackkit.serving.status import LogStatus

    said = {"write_errors": 0, "last_write_error": None, "unwritten": 0, "sink_errors": 0, "dropped": 3}
    away = LogStatus.from_dict(
        {**said, "buffered": 120, "reachable": False, "reconnects": 2, "store": "postgresql://db"}
    )
    assert _log(away).startswith("store UNREACHABLE, 120 buffered, 2 reconnects, 3 dropped")
    assert LogStatus.from_dict(away.to_dict()) == away
