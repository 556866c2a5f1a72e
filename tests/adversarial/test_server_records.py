"""A server's record tampered with while it runs, and requests too big to score.

A running server holds ``.rollbackkit/local/servers/NAME-ENV.lock`` and records its address in
``NAME-ENV.json``. Someone (or something) overwrites that record while the server runs: with
garbage, a JSON list, a record for another environment, or a URL off this machine. The CLI once
took a garbage record for "no server" and deployed through the workspace (git said v1.1.0 served
while the server went on serving v1.0.0), crashed on a list ("This is a bug"), and sent the admin
token to whatever URL the record named. Now each ``deploy``, ``status`` and ``rollback`` ends in
one line naming the record, and nothing changes. A record nobody holds the lock for is stale and
ignored. A ``/predict`` request over ``--max-rows`` rows, or a body over 200 MB, is a 413 before
anything is scored.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ..conftest import copy_project, live_records
from ..servers import Server, running_server
from .conftest import assert_one_clean_line, rollbackkit, state

MAX_ROWS = 1000


@pytest.fixture(scope="module")
def repo(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(served_template, tmp_path_factory.mktemp("server-records"))


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    with running_server(repo, "churn", "prod", watchdog=3600, args=("--no-log", "--max-rows", str(MAX_ROWS))) as s:
        yield s


def _record(repo: Path) -> Path:
    return repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json"


@pytest.fixture
def tampered(repo: Path, server: Server) -> Iterator[Path]:
    """The live server's record, put back as it was after the case."""
    record = _record(repo)
    original = record.read_bytes()
    try:
        yield record
    finally:
        record.write_bytes(original)


def _good(server: Server) -> dict:
    return {"url": server.url, "pid": server.process.pid, "name": "churn", "env": "prod", "allow_remote": False}


UNREADABLE: dict[str, object] = {
    "garbage": b"garbage{\n",
    "empty": b"",
    "non-UTF-8": b"\xff\xfe{}",
    "a list": [],
    "a string": "http://127.0.0.1:1",
    "null": None,
    "a number": 8000,
    "an empty object": {},
    "url missing": {"drop": "url"},
    "url a number": {"url": 8000},
    "pid a string": {"pid": "123"},
    "pid a bool": {"pid": True},
    "name missing": {"drop": "name"},
    "another name": {"name": "other"},
    "another env": {"env": "staging"},
    "allow_remote a string": {"allow_remote": "yes"},
    "ftp url": {"url": "ftp://127.0.0.1:21"},
    "https url": {"url": "https://127.0.0.1:8443"},
    "no port": {"url": "http://127.0.0.1"},
    "a path": {"url": "http://127.0.0.1:8000/evil"},
    "a query": {"url": "http://127.0.0.1:8000?x=1"},
    "userinfo": {"url": "http://user:pw@127.0.0.1:8000"},
    "not a URL": {"url": "garbage"},
}
REMOTE: dict[str, str] = {
    "a private address": "http://10.0.0.1:8000",
    "a host name": "http://attacker.example:80",
    "loopback as a subdomain": "http://127.0.0.1.attacker.example:8000",
    "IPv4-mapped IPv6": "http://[::ffff:10.0.0.1]:8000",
    "all addresses": "http://0.0.0.0:8000",
}
COMMANDS = {
    "deploy": ("deploy", "churn@v1.1.0", "--env", "prod"),
    "status": ("status", "churn", "--env", "prod", "--json"),
    "rollback": ("rollback", "churn", "--env", "prod", "--reason", "probe"),
}


def _write(record: Path, server: Server, case: object) -> None:
    if isinstance(case, bytes):
        record.write_bytes(case)
        return
    if isinstance(case, dict) and case and set(case) <= {"drop", "url", "pid", "name", "env", "allow_remote"}:
        fields = _good(server)
        fields.pop(str(case.get("drop")), None)
        fields.update({k: v for k, v in case.items() if k != "drop"})
        case = fields
    record.write_text(json.dumps(case))


def _serves_v1(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"ok": True, "version": "v1.0.0"}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_record_of_a_running_server_stops_the_cli(
    repo: Path, server: Server, tampered: Path, case: str, command: str
) -> None:
    _write(tampered, server, UNREADABLE[case])
    before = state(repo)
    outcome = rollbackkit(*COMMANDS[command], cwd=repo)
    assert_one_clean_line(outcome, "churn", "prod", "runs but its record", str(tampered), "unreadable")
    assert state(repo) == before
    _serves_v1(server)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(REMOTE))
def test_a_record_naming_a_remote_url_gets_no_token(
    repo: Path, server: Server, tampered: Path, case: str, command: str
) -> None:
    _write(tampered, server, {"url": REMOTE[case]})
    before = state(repo)
    outcome = rollbackkit(*COMMANDS[command], cwd=repo)
    assert_one_clean_line(outcome, "Refusing to send the admin token", REMOTE[case], "--allow-remote", "--server")
    assert state(repo) == before
    _serves_v1(server)


def test_a_missing_record_of_a_running_server_stops_the_cli(repo: Path, server: Server, tampered: Path) -> None:
    tampered.unlink()
    before = state(repo)
    assert_one_clean_line(rollbackkit(*COMMANDS["deploy"], cwd=repo), "churn", "prod", "does not exist")
    assert state(repo) == before
    _serves_v1(server)


@pytest.mark.parametrize(
    "case", ["as written", "localhost", "an unknown field", "no allow_remote field", "a trailing slash"]
)
def test_a_good_record_is_followed(repo: Path, server: Server, tampered: Path, case: str) -> None:
    fields = _good(server)
    port = urlsplit(server.url).port
    if case == "localhost":
        fields["url"] = f"http://localhost:{port}"
    elif case == "an unknown field":
        fields["started"] = "2026-11-30T09:00:00+00:00"
    elif case == "no allow_remote field":  # a record written before the field existed
        del fields["allow_remote"]
    elif case == "a trailing slash":
        fields["url"] = server.url + "/"
    tampered.write_text(json.dumps(fields))
    outcome = rollbackkit(*COMMANDS["status"], cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["live"]["version"] == "v1.0.0"


def test_the_record_says_whether_the_server_allows_remote_callers(repo: Path, server: Server) -> None:
    assert json.loads(_record(repo).read_text()) == _good(server)


@pytest.mark.parametrize("content", [b"garbage{", b"[]", json.dumps({"url": "http://10.0.0.1:1"}).encode()])
def test_a_record_no_server_holds_the_lock_for_is_stale(served_template: Path, tmp_path: Path, content: bytes) -> None:
    stale = copy_project(served_template, tmp_path)
    _record(stale).parent.mkdir(parents=True, exist_ok=True)
    _record(stale).write_bytes(content)
    outcome = rollbackkit(*COMMANDS["status"], cwd=stale)
    assert_one_clean_line(outcome, "No server is running for churn in prod", "stale", str(_record(stale)))


# ----------------------------------------------------------------------------- size caps
def _predict(server: Server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=60)


def _frame_body(rows: list[dict]) -> dict:
    import pandas as pd

    from rollbackkit.serving.wire import encode_frame

    return {"frame": encode_frame(pd.DataFrame(rows))}


@pytest.mark.parametrize("shape", ["records", "columns", "frame"])
def test_more_rows_than_max_rows_is_a_413_before_scoring(server: Server, shape: str) -> None:
    rows = live_records(MAX_ROWS + 1, seed=15)
    if shape == "records":
        body: dict = {"records": rows}
    elif shape == "columns":
        columns = list(rows[0])
        body = {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}
    else:
        body = _frame_body(rows)
    before = server.status()["refused"]["bad_predict_bodies"]
    answer = _predict(server, body)
    assert answer.status_code == 413, answer.text
    assert set(answer.json()) == {"error", "hint"} and f"{MAX_ROWS:,}" in answer.json()["error"], answer.json()
    assert server.status()["refused"]["bad_predict_bodies"] == before + 1


def test_max_rows_rows_are_scored(server: Server) -> None:
    answer = _predict(server, {"records": live_records(MAX_ROWS, seed=16)})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == MAX_ROWS


def _raw(server: Server, path: str, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """POST as bytes on a socket (httpx refuses to send some of these headers); status and JSON answer."""
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        conn.sendall(head + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, _ = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("path", ["/predict", "/admin/deploy"])
def test_a_body_over_200_mb_is_refused_before_it_is_read(server: Server, path: str) -> None:
    """Only the headers are sent: the server answers 413 without waiting for the body."""
    head = f"Authorization: Bearer test-admin-token\r\nContent-Length: {200 * 1024 * 1024 + 1}\r\n"
    status, body = _raw(server, path, head.encode())
    assert status == 413, body
    assert set(body) == {"error", "hint"} and "200 MB" in body["error"], body


# ----------------------------------------------------------------------------- the token header, as the README says
@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("Bearer test-admin-token", True),
        ("Bearer test-admin-token ", True),  # the HTTP layer drops spaces and tabs around a value
        ("Bearer test-admin-token\t", True),
        ("  Bearer test-admin-token", True),
        ("Bearer  test-admin-token", False),  # one space after the scheme, exactly
        ("bearer test-admin-token", False),
        ("Bearer test-admin-token\u00a0".encode().decode("latin-1"), False),
        ("Bearer test-admin-tokenx", False),
    ],
)
def test_the_token_header_is_compared_as_the_readme_says(server: Server, header: str, accepted: bool) -> None:
    body = b'{"version": "v1.0.0"}'
    head = b"Authorization: " + header.encode("latin-1") + b"\r\nContent-Length: %d\r\n" % len(body)
    status, answer = _raw(server, "/admin/gates", head, body)
    assert (status not in (401, 403)) == accepted, (status, answer)


# ----------------------------------------------------------------------------- bounded shutdown
def test_sigterm_stops_the_server_even_when_the_log_writer_is_stuck(served_template: Path, tmp_path: Path) -> None:
    """The writer (stopped here with SIGSTOP, as busy as one chewing a huge request) gets 10 s,
    then is killed; the server exits and journals what may not have been written."""
    from rollbackkit.registry.journal import Journal

    repo = copy_project(served_template, tmp_path)
    with running_server(repo, "churn", "prod", watchdog=3600) as server:
        writer = server.status()["log"]["process"]
        os.kill(writer, signal.SIGSTOP)
        try:
            assert server.predict(live_records(3, seed=17)).status_code == 200
            time.sleep(0.3)  # handed over to the stopped writer
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=40)
            assert time.monotonic() - started < 30
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer, signal.SIGCONT)
    killed = [
        e
        for e in Journal(repo / ".rollbackkit" / "local" / "journal.jsonl").entries()
        if e["event"] == "log-writer-killed"
    ]
    assert len(killed) == 1 and killed[0]["unwritten"] >= 1, killed
    assert "was killed" in server.log.read_text()
