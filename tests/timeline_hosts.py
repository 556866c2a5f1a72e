"""Helpers for the timeline tests: a large synthetic timeline, and the hosts a panel runs under."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from rollbackkit.ops.timeline_types import ServingNow, Span, Timeline, TimelineEvent

from .servers import stop


def fake_timeline(versions: int, changes: int, seed: int = 0, shadows: int = 0) -> Timeline:
    """``changes`` deploys and canaries among ``versions`` versions, a minute apart, and ``shadows``
    short shadow spans per version spread over the whole time (no repository)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    names = [f"v1.{i}.0" for i in range(versions)]
    spans: dict[str, list[Span]] = {}
    events = []
    live = names[0]
    for i in range(changes):
        begin, end = start + timedelta(minutes=i), start + timedelta(minutes=i + 1)
        new = names[int(rng.integers(versions))]
        canary = int(rng.choice([0, 10, 50])) if new != live else 0
        if canary:
            spans.setdefault(live, []).append(Span(live, begin, end, 100.0 - canary, "live", f"m#p#{i}"))
            spans.setdefault(new, []).append(Span(new, begin, end, float(canary), "canary", f"m#p#{i}"))
            events.append(TimelineEvent(begin, "canary", new, "try it", "ada", share=float(canary)))
        else:
            live = new
            spans.setdefault(live, []).append(Span(live, begin, end, 100.0, "live", f"m#p#{i}"))
            events.append(TimelineEvent(begin, "deploy", live, "release", "ada", share=100.0))
    end = start + timedelta(minutes=changes)
    for v in names if shadows else ():
        for k in rng.choice(changes, size=min(shadows, changes), replace=False):
            begin = start + timedelta(minutes=int(k), seconds=5)
            spans.setdefault(v, []).append(Span(v, begin, begin + timedelta(seconds=40), 25.0, "shadow", f"m#s#{k}"))
    now = ServingNow(live, 100.0, f"m#p#{changes}")
    return Timeline("model", "prod", start, end, {k: tuple(v) for k, v in spans.items()}, tuple(events), now)


@contextmanager
def served(command: list[str], base: Path, port: int, ready: str, timeout: float = 90) -> Iterator[str]:
    """Run a Jupyter-family server (``command``, already given ``port``) until ``ready`` answers at all."""
    log = base / f"{command[2]}.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=base, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                httpx.get(url + ready, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield url
    finally:
        stop(process)  # type: ignore[arg-type]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_lab_kernel(url: str, token: str, runtime: Path, notebook: str, code: str) -> str:
    """Start a kernel the way JupyterLab does for ``notebook`` (a session), run ``code`` in it, its stdout."""
    from jupyter_client import BlockingKernelClient

    headers = {"Authorization": f"token {token}"}
    body = {"path": notebook, "name": Path(notebook).name, "type": "notebook", "kernel": {"name": "rollbackkit"}}
    session = httpx.post(f"{url}/api/sessions", json=body, headers=headers, timeout=60).json()
    client = BlockingKernelClient()
    client.load_connection_file(str(runtime / f"kernel-{session['kernel']['id']}.json"))
    client.start_channels()
    said: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            code, timeout=60, output_hook=lambda m: said.append(m["content"].get("text", ""))
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return "".join(said)
