"""A real Prometheus (Debian's ``/usr/bin/prometheus``) on 127.0.0.1 for the session (tests only).

:func:`prometheus` starts it once per session on a free port with a temporary TSDB, one scrape
job at a 1 s ``scrape_interval`` whose targets come from a ``file_sd_configs`` JSON file, so a
test adds its server (:meth:`Prometheus.add_target`) after the server listens, then waits for
the first good scrape (:meth:`Prometheus.wait_for_target`) and asks PromQL through the HTTP API
(:meth:`Prometheus.query`). It stops at session end; if the session dies, the process is asked to
stop at interpreter exit and, on Linux, when its parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .postgres import free_port
from .servers import stop

PROMETHEUS = Path("/usr/bin/prometheus")
SCRAPE_INTERVAL = "1s"
JOB = "rollbackkit"

CONFIG = """\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: {job}
    scrape_timeout: {interval}
    metrics_path: /metrics
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: {interval}
"""


class PromQLError(AssertionError):
    """Prometheus refused a query (its ``errorType`` and ``error``)."""


@dataclass
class Prometheus:
    """A running Prometheus: its URL, the file_sd targets file, its process and log."""

    url: str
    targets_file: Path
    process: subprocess.Popen[bytes]
    log: Path
    targets: list[str] = field(default_factory=list)

    def add_target(self, url: str) -> None:
        """Scrape the server at ``url`` (``http://127.0.0.1:PORT``) from now on."""
        address = urlsplit(url).netloc
        if address not in self.targets:
            self.targets.append(address)
        self._write_targets()

    def remove_target(self, url: str) -> None:
        """Stop scraping the server at ``url``."""
        address = urlsplit(url).netloc
        self.targets = [t for t in self.targets if t != address]
        self._write_targets()

    def _write_targets(self) -> None:
        staging = self.targets_file.with_suffix(".tmp")
        staging.write_text(json.dumps([{"targets": self.targets, "labels": {}}]))
        staging.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/PATH``'s ``data``; :class:`PromQLError` when Prometheus answers an error."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise PromQLError(f"{params or path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query: the vector's samples (``metric`` labels and ``value`` [time, text])."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return list(data["result"])
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise PromQLError(f"{expr}: a {data['resultType']}, not a vector")

    def value(self, expr: str) -> float | None:
        """The single sample of ``expr`` as a float, or None when the vector is empty."""
        samples = self.query(expr)
        assert len(samples) <= 1, f"{expr}: more than one sample: {samples}"
        return float(samples[0]["value"][1]) if samples else None

    def by(self, expr: str, label: str) -> dict[str, float]:
        """``expr``'s samples keyed by one label's value."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr)}

    def wait_for_target(self, url: str, seconds: float = 30) -> dict[str, Any]:
        """Wait until the target at ``url`` has been scraped successfully; its entry in /api/v1/targets."""
        address = urlsplit(url).netloc
        deadline = time.monotonic() + seconds
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for target in self.api("targets", state="active")["activeTargets"]:
                if target["labels"].get("instance") == address:
                    last = target
                    if target["health"] == "up":
                        return dict(target)
            time.sleep(0.2)
        raise AssertionError(f"Prometheus never scraped {url} in {seconds} s: {last or 'not a target'}")

    def wait_for(self, expr: str, check: Any, seconds: float = 30, what: str = "") -> list[dict[str, Any]]:
        """Poll ``expr`` until ``check(samples)`` holds; the samples."""
        deadline = time.monotonic() + seconds
        samples: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            samples = self.query(expr)
            if check(samples):
                return samples
            time.sleep(0.25)
        raise AssertionError(f"timed out after {seconds} s waiting for {what or expr}: last {samples}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        stop(self.process)


try:
    _PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # loaded here: the child only calls it
except OSError:  # not glibc Linux: atexit alone stops it
    _PRCTL = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the kernel stops it when the session dies


def start(root: Path, timeout: float = 60) -> Prometheus:
    """Start Prometheus with its config, TSDB, targets file and log under ``root``; wait until ready."""
    root.mkdir(parents=True, exist_ok=True)
    targets = root / "targets.json"
    targets.write_text("[]")
    config = root / "prometheus.yml"
    config.write_text(CONFIG.format(interval=SCRAPE_INTERVAL, job=JOB, targets=targets))
    port = free_port()
    log = root / "prometheus.log"
    command = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    atexit.register(stop, process)
    server = Prometheus(f"http://127.0.0.1:{port}", targets, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"prometheus was not ready in {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus for the session (``make test`` apt-installs Debian's package)."""
    assert PROMETHEUS.exists(), f"{PROMETHEUS} is missing: `make test` installs Debian's prometheus"
    server = start(tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()
