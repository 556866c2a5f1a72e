"""Starting a server with a bad admin token, or a second server for one environment.

A server with an empty or short token would let anyone in (an empty token file once matched
``Authorization: Bearer`` followed by a no-break space); a second server for one environment
would keep serving what the CLI no longer deploys to. Each is refused before anything is
loaded: exit 1, one line naming where the token came from, or which server already runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ..conftest import BIN, copy_project
from ..servers import Server, _wait_for, running_server, stop
from .conftest import Outcome, assert_one_clean_line

TOKEN_ENV = "ROLLBACKKIT_ADMIN_TOKEN"
GOOD_TOKEN = "a-long-enough-admin-token-0123456789"


@pytest.fixture(scope="module")
def repo(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(served_template, tmp_path_factory.mktemp("server-start"))


def _environment(token: str | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return environment if token is None else {**environment, TOKEN_ENV: token}


def _serve(repo: Path, token: str | None, *args: str) -> Outcome:
    """``rollbackkit serve churn --env prod`` that must refuse to start (killed after 60 s if it serves)."""
    try:
        done = subprocess.run(
            [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--no-runbook", *args],
            cwd=repo,
            env=_environment(token),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the server started and served: {exc.stderr!r}")
    return Outcome(done.returncode, done.stdout, done.stderr)


@contextmanager
def _server_with_token_file(repo: Path) -> Iterator[Server]:
    """A server whose token comes from the project's token file (no environment variable)."""
    record = repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json"
    record.unlink(missing_ok=True)
    log = repo.parent / "server-token-file.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--no-runbook"],
            cwd=repo,
            env=_environment(None),
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        yield Server(_wait_for(record, process, log), process, log)
    finally:
        stop(process)


TOKEN_FILE = ".rollbackkit/local/admin-token"
BAD_FILES = {
    "empty": b"",
    "a newline only": b"\n",
    "spaces only": b" " * 32 + b"\n",
    "15 characters": b"x" * 15 + b"\n",
    "no-break spaces": b"\xa0" * 32,
    "UTF-8 no-break spaces": "\u00a0".encode() * 32,
    "a space inside": b"abcdefghijkl mnopqrstuvwxyz\n",
}
BAD_VARIABLES = {
    "empty": "",
    "4 characters": "test",
    "15 characters": "x" * 15,
    "no-break spaces": "\u00a0" * 20,
    "a trailing newline": GOOD_TOKEN + "\n",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_short_or_empty_token_file_is_refused_before_serving(repo: Path, case: str) -> None:
    path = repo / TOKEN_FILE
    path.write_bytes(BAD_FILES[case])
    path.chmod(0o600)
    try:
        assert_one_clean_line(_serve(repo, None, "--no-log"), str(path), "16")
    finally:
        path.unlink()
    assert not (repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json").exists()


@pytest.mark.parametrize("case", list(BAD_VARIABLES))
def test_a_short_or_empty_token_variable_is_refused_before_serving(repo: Path, case: str) -> None:
    assert_one_clean_line(_serve(repo, BAD_VARIABLES[case], "--no-log"), f"${TOKEN_ENV}", "16")


def test_a_token_file_with_a_newline_works_and_an_open_mode_is_warned_about(repo: Path) -> None:
    path = repo / TOKEN_FILE
    path.write_text(GOOD_TOKEN + "\n")
    path.chmod(0o644)
    try:
        with _server_with_token_file(repo) as server:
            answer = httpx.post(
                f"{server.url}/admin/gates",
                json={"version": "v1.0.0"},
                headers={"Authorization": f"Bearer {GOOD_TOKEN}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            warnings = [line for line in server.log.read_text().splitlines() if line.strip()]
            assert len(warnings) == 1 and warnings[0].startswith("warning: "), warnings
            assert str(path) in warnings[0] and "0644" in warnings[0] and "chmod 600" in warnings[0]
    finally:
        path.unlink()


def test_a_second_server_for_one_environment_is_refused_and_names_the_first(repo: Path) -> None:
    with running_server(repo, "churn", "prod", watchdog=3600, args=("--no-log",)) as first:
        for args in (("--no-log",), ()):
            second = _serve(repo, GOOD_TOKEN, *args)
            assert_one_clean_line(second, "churn", "prod", first.url, str(first.process.pid))
        assert httpx.get(f"{first.url}/healthz", timeout=10).json() == {"ok": True, "version": "v1.0.0"}
        assert (repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json").exists()  # still the first's


def test_after_kill_9_the_environment_can_be_served_again(repo: Path) -> None:
    """The lock is the kernel's: a killed server leaves nothing that blocks a restart."""
    with running_server(repo, "churn", "prod", watchdog=3600) as killed:
        os.kill(killed.process.pid, signal.SIGKILL)
        killed.process.wait(timeout=30)
    with running_server(repo, "churn", "prod", watchdog=3600) as restarted:
        assert httpx.get(f"{restarted.url}/healthz", timeout=10).json() == {"ok": True, "version": "v1.0.0"}
