"""Start a real ``rollbackkit serve`` process on 127.0.0.1 and stop it (tests only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .conftest import BIN

TOKEN = "test-admin-token"


@dataclass
class Server:
    """A running server: its URL, process and log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def admin(self, operation: str, body: dict, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.post(f"{self.url}/admin/{operation}", json=body, headers=headers, timeout=120)

    def status(self) -> dict:
        return httpx.get(f"{self.url}/status", timeout=30).json()

    def predict(self, records: list[dict], key: str | None = None) -> httpx.Response:
        body: dict = {"records": records}
        if key is not None:
            body["key"] = key
        return httpx.post(f"{self.url}/predict", json=body, timeout=60)


@contextmanager
def running_server(
    repo: Path,
    name: str,
    env: str,
    *,
    watchdog: float = 5.0,
    extra_env: dict[str, str] | None = None,
    runbook: bool = False,
    args: tuple[str, ...] = (),
) -> Iterator[Server]:
    """Serve NAME in ENV from ``repo`` until the block ends (terminate, then kill).

    ``runbook`` lets an automatic rollback start the rollback runbook (a kernel process);
    off by default so that tests which do not wait for it leave nothing behind. ``args``
    are more ``rollbackkit serve`` options (``("--no-log",)``).
    """
    record = repo / ".rollbackkit" / "local" / "servers" / f"{name}-{env}.json"
    record.unlink(missing_ok=True)
    log = repo.parent / f"server-{name}-{env}-{time.monotonic_ns()}.log"
    environment = {**os.environ, "ROLLBACKKIT_ADMIN_TOKEN": TOKEN, **(extra_env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "rollbackkit"),
                "serve",
                name,
                "--env",
                env,
                "--port",
                "0",
                "--watchdog-interval",
                str(watchdog),
                *([] if runbook else ["--no-runbook"]),
                *args,
            ],
            cwd=repo,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        url = _wait_for(record, process, log)
        yield Server(url, process, log)
    finally:
        stop(process)


def _wait_for(record: Path, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        if record.exists():
            url = json.loads(record.read_text())["url"]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):  # 503: up, nothing served
                    return str(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not start in {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
