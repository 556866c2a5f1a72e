"""Several real ``rollbackkit serve`` replicas on one store, and a load from another process (tests only).

:func:`start_replicas` runs N ``rollbackkit serve NAME --env ENV --replica rN`` processes with
``ROLLBACKKIT_STORE`` set, each on a free port, and waits for each one's ``/healthz``; a
replica's URL and pid come from its address file (``servers/NAME-ENV-rN.json``). :class:`Load`
runs ``tests/loadgen.py`` in its own Python process against a URL (the balancer) and reads
back its one line per request. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .conftest import BIN

LOADGEN = Path(__file__).with_name("loadgen.py")


def project_token(repo: Path) -> str:
    """The project's admin token (``.rollbackkit/local/admin-token``), written first when missing."""
    path = repo / ".rollbackkit" / "local" / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


@dataclass
class Replica:
    """One running replica: its id, process, log and (once up) URL and pid."""

    replica: str
    process: subprocess.Popen[bytes]
    log: Path
    record: Path
    token: str
    url: str = ""
    pid: int = 0

    def admin(self, operation: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
        """``POST /admin/OPERATION`` with the project's token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.url}/admin/{operation}", json=body, headers=headers, timeout=timeout)

    def status(self) -> dict[str, Any]:
        """``GET /status``."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/status", timeout=10).json()
        return answer

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM (graceful: the log flushes), then SIGKILL if it lingers; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def kill(self) -> None:
        """``kill -9`` the pid its address file names (nothing flushed, nothing released but by the OS)."""
        if self.process.poll() is None:
            os.kill(self.pid or self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def launch(
    repo: Path, name: str, env: str, replica: str, store: str, *, watchdog: float = 0.3,
    extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (),
) -> Replica:  # fmt: skip
    """Start one replica (not waited for: :func:`wait_healthy`)."""
    token = project_token(repo)
    record = repo / ".rollbackkit" / "local" / "servers" / f"{name}-{env}-{replica}.json"
    record.unlink(missing_ok=True)
    log = repo.parent / f"replica-{replica}-{time.monotonic_ns()}.log"
    environment = {**os.environ, "ROLLBACKKIT_STORE": store, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    environment.pop("ROLLBACKKIT_ADMIN_TOKEN", None)  # the project's token file, as in production
    command = [
        str(BIN / "rollbackkit"), "serve", name, "--env", env, "--port", "0", "--replica", replica,
        "--watchdog-interval", str(watchdog), "--no-runbook", *args,
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=environment)
    return Replica(replica, process, log, record, token)


def wait_healthy(replica: Replica, timeout: float = 90) -> Replica:
    """Wait until the replica's address file names a URL whose ``/healthz`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(f"replica {replica.replica} exited with {replica.process.returncode}:\n{replica.tail()}")
        try:
            fields = json.loads(replica.record.read_text())
            replica.url, replica.pid = str(fields["url"]), int(fields["pid"])
            if httpx.get(f"{replica.url}/healthz", timeout=2).status_code == 200:
                return replica
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"replica {replica.replica} not healthy in {timeout} s:\n{replica.tail()}")


@contextmanager
def start_replicas(
    repo: Path, name: str, env: str, store: str, n: int = 3, *, watchdog: float = 0.3, args: tuple[str, ...] = ()
) -> Iterator[list[Replica]]:
    """Run replicas ``r0`` .. ``r{n-1}`` of NAME/ENV on ``store`` until the block ends (SIGTERM, then kill)."""
    started: list[Replica] = []
    try:
        started.extend(launch(repo, name, env, f"r{i}", store, watchdog=watchdog, args=args) for i in range(n))
        for replica in started:  # all at once, as an orchestrator starts them
            wait_healthy(replica)
        yield started
    except BaseException:
        for replica in started:
            print(f"--- replica {replica.replica} ({replica.log}) ---\n{replica.tail()}", file=sys.stderr)
        raise
    finally:
        for replica in started:
            replica.terminate()


@dataclass
class Load:
    """A load generator process against ``url`` and its answers (see ``tests/loadgen.py``)."""

    url: str
    bodies: list[dict[str, Any]]
    workdir: Path
    rate: float = 40.0
    seconds: float = 120.0
    workers: int = 4
    process: subprocess.Popen[bytes] | None = None
    out: Path = field(init=False)
    stopfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tag = time.monotonic_ns()
        self.out, self.stopfile = self.workdir / f"load-{tag}.jsonl", self.workdir / f"load-{tag}.stop"

    def start(self, first_answers: int = 3, timeout: float = 30) -> Load:
        """Start the generator and wait until it has ``first_answers`` answers."""
        bodies = self.workdir / f"bodies-{time.monotonic_ns()}.json"
        bodies.write_text(json.dumps(self.bodies))
        command = [
            sys.executable, "-P", str(LOADGEN), self.url, "--bodies", str(bodies), "--out", str(self.out),
            "--stop", str(self.stopfile), "--rate", str(self.rate), "--seconds", str(self.seconds),
            "--workers", str(self.workers),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while len(self.lines()) < first_answers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the load generator did not answer: {self.stop()}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 40) -> str:
        """Ask the generator to stop and wait for it (killed at ``timeout``); its stderr."""
        self.stopfile.write_text("stop\n")
        if self.process is None:
            return ""
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
        return err.decode(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        """Every answered request so far, in answer order."""
        if not self.out.exists():
            return []
        text = self.out.read_text()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line]

    def failed(self) -> list[dict[str, Any]]:
        """The requests that did not get a 200."""
        return [line for line in self.lines() if line["status"] != 200]


@contextmanager
def running_load(url: str, bodies: list[dict[str, Any]], workdir: Path, **options: Any) -> Iterator[Load]:
    """A :class:`Load` started for the block and stopped at its end."""
    load = Load(url, bodies, workdir, **options).start()
    try:
        yield load
    finally:
        load.stop()
