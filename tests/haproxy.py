"""A real HAProxy on 127.0.0.1 in front of local replicas (tests only).

:func:`balancer` writes a per-test configuration (HTTP mode, one frontend on a free port,
one ``server`` per replica health-checked on ``GET /healthz`` every 200 ms), runs
``/usr/sbin/haproxy -db -f CFG`` as a child, waits until the frontend answers and stops it at
the end (terminate, then kill). A request that reaches a replica which died or refused it is
retried on another (``retries 3``, ``option redispatch``, ``retry-on``; the whole body is
buffered first, ``option http-buffer-request``, so that any request can be retried): the client
sees no failure. When the block raises, HAProxy's own log is printed (pytest shows it with the failure).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HAPROXY = Path("/usr/sbin/haproxy")

CONFIG = """\
global
    log stdout format raw local0 info
    maxconn 4096
    stats socket {stats} mode 600 level admin

defaults
    mode http
    log global
    option httplog
    option http-buffer-request
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

frontend replicas
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 200ms fastinter 200ms downinter 200ms fall 2 rise 1
{servers}
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _address(url: str) -> str:
    """``http://127.0.0.1:8123`` -> ``127.0.0.1:8123``."""
    return url.split("://", 1)[-1].rstrip("/")


@dataclass
class Balancer:
    """A running HAProxy: its frontend URL, process, configuration and log."""

    url: str
    process: subprocess.Popen[bytes]
    config: Path
    log: Path
    stats: Path

    def servers(self) -> dict[str, str]:
        """Each backend server's state as HAProxy sees it (``UP``, ``DOWN``, ...), from the stats socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.stats))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        states = {}
        for line in b"".join(chunks).decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "replicas" and fields[1] not in ("FRONTEND", "BACKEND"):
                states[fields[1]] = fields[17]
        return states

    def wait_up(self, names: Sequence[str], timeout: float = 15.0) -> None:
        """Wait until every server in ``names`` is ``UP``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.servers()
            if all(states.get(name, "").startswith("UP") for name in names):
                return
            time.sleep(0.1)
        raise AssertionError(f"HAProxy servers not UP after {timeout} s: {self.servers()}\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        """The last lines of HAProxy's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def balancer(replicas: dict[str, str], workdir: Path, *, timeout: float = 15.0) -> Iterator[Balancer]:
    """Run HAProxy in front of ``replicas`` (server name -> base URL) until the block ends.

    Ready once the frontend answers ``GET /healthz`` with 200 (some replica is up and serving).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config, log, stats = workdir / "haproxy.cfg", workdir / "haproxy.log", workdir / "haproxy.sock"
    servers = "\n".join(f"    server {name} {_address(url)}" for name, url in replicas.items())
    config.write_text(CONFIG.format(port=port, servers=servers, stats=stats))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(HAPROXY), "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = Balancer(f"http://127.0.0.1:{port}", process, config, log, stats)
    try:
        _wait_ready(running, timeout)
        yield running
    except BaseException:
        print(f"--- haproxy log ({log}) ---\n{running.tail()}", file=sys.stderr)
        raise
    finally:
        _stop(process)


def _wait_ready(running: Balancer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {running.process.returncode}:\n{running.tail()}")
        try:
            if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"haproxy's frontend did not answer 200 in {timeout} s:\n{running.tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
