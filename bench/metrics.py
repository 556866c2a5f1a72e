"""What ``GET /metrics`` costs serving (results to bench/results/metrics.json).

Everything runs for real on 127.0.0.1: two ``rollbackkit serve churn --env prod`` processes
from two copies of one project (each owns its files), one with the metrics instrumentation
(the default) and one with ``--no-metrics``, both with the prediction log, the watchdog at
its default 5 s, OpenMP capped at one thread, and the same canary (v1.0.0 live, v1.1.0 at
50%), so each scores what a server in the middle of a rollout scores.

1. **One-row ``/predict`` latency, instrumentation on vs off** (goal: p99 within 5%). One
   keep-alive client sends the same one-row requests to one server at a time, in blocks
   alternating ABBA between the two; during every "on" block a scraper process (not a thread:
   Prometheus is another process) GETs that server's ``/metrics`` once a second with
   Prometheus 2.42's Accept header, at a random phase. p50 and p99 per mode, the p99 ratio
   with a block-bootstrap 90% interval and the off-vs-off A/A floor
   (:func:`bench.abba.p99_comparison`). :func:`target_verdict`: ``target_met`` is True only
   when the interval's upper bound is within 1.05, False when its lower bound is above it,
   else None (not resolved), with ``target_reason`` saying why; also None when the A/A floor
   itself is outside 1.05 either way. The floor compares "off" blocks with "off" blocks: the
   two arms are two server processes, so there is no on-vs-on floor, and a difference between
   the processes themselves (placement, heap) is inside the interval, not in the floor.
2. **One scrape**, after the run, once the watchdog has a gate report for the canary: the
   round trip of ``GET /metrics`` back to back, in Prometheus' OpenMetrics and in the classic
   text format, with the body's size and number of samples; plus the scrapes made during
   the "on" blocks (those shared the cores with the requests being timed).

The figures live in ``bench/results/metrics.json`` (with the load average at the start and
the end: on a busy machine, rerun before quoting them).

Run: ``python -m bench metrics`` (``--quick``: fewer and shorter blocks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from bench._common import BIN, ENV, write_results
from bench.abba import abba, p99_comparison, summary, timed
from bench.serving import TOKEN, _project

TARGET_P99_RATIO = 1.05
"""One-row p99 with ``/metrics`` on (and scraped every second) over p99 with ``--no-metrics``, at most (issue 21)."""

SCRAPE_INTERVAL_S = 1.0
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)  # what Prometheus 2.42 sends (scrape/scrape.go, acceptHeader)
EXPECTED = (
    "rollbackkit_requests_total",
    "rollbackkit_request_duration_seconds_bucket",
    "rollbackkit_traffic_share",
    "rollbackkit_gate_status",
    "rollbackkit_gate_decision",
)
"""Series a populated exposition must hold (CONTRACT21's names); the bench refuses to time anything less."""

SCRAPER = """
import http.client, json, random, sys, threading, time
host, port, interval, accept = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
active, done = threading.Event(), threading.Event()

def commands():
    for line in sys.stdin:
        if line.strip() == "on":
            active.set()
        elif line.strip() == "off":
            active.clear()
        else:
            break
    done.set()
    active.set()

threading.Thread(target=commands, daemon=True).start()
connection = http.client.HTTPConnection(host, port, timeout=10)
scrapes, next_at = [], None
while not done.is_set():
    if not active.is_set():
        next_at = None
        active.wait()
        continue
    now = time.monotonic()
    if next_at is None:
        next_at = now + random.uniform(0, interval)
    if now < next_at:
        done.wait(min(next_at - now, 0.05))
        continue
    for attempt in (1, 2):  # the server closes a keep-alive connection idle for 5 s: reconnect, as Go's client does
        started = time.perf_counter()
        try:
            connection.request("GET", "/metrics", headers={"Accept": accept})
            response = connection.getresponse()
            body = response.read()
            scrapes.append([(time.perf_counter() - started) * 1000, response.status, len(body)])
            break
        except (http.client.HTTPException, OSError):
            connection.close()
            if attempt == 2:
                scrapes.append([(time.perf_counter() - started) * 1000, 0, 0])
    next_at += interval
print(json.dumps(scrapes))
"""
"""A Prometheus-like scraper: GET /metrics every ``interval`` seconds while told ``on`` (stdin)."""


@dataclass
class Served:
    """A running ``rollbackkit serve``: its URL, process and output file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _env() -> dict[str, str]:
    return {**ENV, "ROLLBACKKIT_ADMIN_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}


def _start(repo: Path, metrics: bool) -> tuple[subprocess.Popen[bytes], Path]:
    (repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json").unlink(missing_ok=True)
    args = [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--watchdog-interval", "5"]
    log = repo.parent / f"serve-{'on' if metrics else 'off'}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*args, *([] if metrics else ["--no-metrics"])], cwd=repo, env=_env(), stdout=out, stderr=out
        )
    return process, log


def _ready(repo: Path, process: subprocess.Popen[bytes], log: Path, deadline: float) -> Served:
    record = repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json"
    while time.monotonic() < deadline and process.poll() is None:
        if record.exists():
            url = str(json.loads(record.read_text())["url"])
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return Served(url, process, log)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the server in {repo} did not start: {log.read_text()[-2000:]}")


@contextmanager
def _servers(repo: Path) -> Iterator[dict[str, Served]]:
    """``on`` serves ``repo`` with metrics, ``off`` a copy of it with ``--no-metrics``; both stopped at the end."""
    twin = repo.parent / f"{repo.name}-no-metrics"
    shutil.copytree(repo, twin, symlinks=True)
    started = {"on": (repo, *_start(repo, True)), "off": (twin, *_start(twin, False))}
    deadline = time.monotonic() + 120
    servers: dict[str, Served] = {}
    try:
        for mode, (root, process, log) in started.items():
            servers[mode] = _ready(root, process, log, deadline)
        yield servers
    finally:
        for _, process, _ in started.values():
            process.terminate()
        for _, process, _ in started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def _scraper(url: str) -> Iterator[subprocess.Popen[str]]:
    """The scraper process for ``url``, idle until told ``on``; its scrapes are read at :func:`_scrapes`."""
    parts = urlsplit(url)
    args = [str(parts.hostname), str(parts.port), str(SCRAPE_INTERVAL_S), PROMETHEUS_ACCEPT]
    process = subprocess.Popen(
        [sys.executable, "-c", SCRAPER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _tell(scraper: subprocess.Popen[str], word: str) -> None:
    assert scraper.stdin is not None
    scraper.stdin.write(word + "\n")
    scraper.stdin.flush()


def _scrapes(scraper: subprocess.Popen[str]) -> list[list[float]]:
    """Stop the scraper; its scrapes as ``[ms, status, bytes]``."""
    out, _ = scraper.communicate("quit\n", timeout=30)
    return list(json.loads(out))


def _one_row_bodies(n: int) -> list[dict[str, Any]]:
    from bench.replicas import json_ready
    from bench.sideeffects import _requests

    return [{"records": json_ready(frame.to_dict(orient="records"))} for frame in _requests(n, 1)]


def _predicted(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    response = client.post(f"{url}/predict", json=body)
    assert response.status_code == 200, response.text


def _with_canary(servers: dict[str, Served], client: httpx.Client, bodies: list[dict[str, Any]]) -> None:
    """Both servers: v1.1.0 as a 50% canary, warm, and a gate report from their watchdog (waited for)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for served in servers.values():
        deploy = {"version": "v1.1.0", "canary": 50, "reason": "bench: metrics"}
        client.post(f"{served.url}/admin/deploy", json=deploy, headers=headers).raise_for_status()
        for body in bodies:
            _predicted(client, served.url, body)
    deadline = time.monotonic() + 60
    for served in servers.values():
        while client.get(f"{served.url}/status").json().get("gates") is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no gate report from {served.url} within 60 s (watchdog every 5 s)")
            time.sleep(0.2)


def _exposition(client: httpx.Client, servers: dict[str, Served]) -> dict[str, Any]:
    """Check what each server answers on /metrics: the contract's series on, 404 off."""
    off = client.get(f"{servers['off'].url}/metrics")
    if off.status_code != 404:
        raise RuntimeError(f"serve --no-metrics answered /metrics with {off.status_code}, not 404")
    on = client.get(f"{servers['on'].url}/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    on.raise_for_status()
    missing = [name for name in EXPECTED if name not in on.text]
    if missing:
        raise RuntimeError(f"/metrics lacks {missing}: the instrumentation is not what CONTRACT21 names")
    return {"content_type": on.headers.get("content-type"), **_shape(on.text)}


def _shape(text: str) -> dict[str, int]:
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {"bytes": len(text.encode()), "samples": len(samples)}


def bench_predict(
    servers: dict[str, Served], client: httpx.Client, bodies: list[dict[str, Any]], blocks: int
) -> dict[str, Any]:
    """One-row /predict on vs off in ABBA blocks; the on server is scraped every second during its blocks."""
    samples: dict[str, list[list[float]]] = {"on": [], "off": []}
    with _scraper(servers["on"].url) as scraper:
        for mode in abba(blocks, "on", "off"):
            url = servers[mode].url
            time.sleep(0.4)  # the log writers commit what the last block handed them
            if mode == "on":
                _tell(scraper, "on")
            samples[mode].append(timed(bodies, partial(_predicted, client, url)))
            if mode == "on":
                _tell(scraper, "off")
        scrapes = _scrapes(scraper)
    refused = [s for s in scrapes if s[1] != 200]
    if refused:
        raise RuntimeError(f"{len(refused)} of {len(scrapes)} scrapes were refused (status {refused[0][1]})")
    compared = p99_comparison(samples["on"], samples["off"], ("on", "off", "noise_floor_off_vs_off_p99_ratio"))
    met, reason = target_verdict(compared)
    return {
        "rows_per_request": 1,
        "requests_per_block": len(bodies),
        **compared,
        "p50_ratio": compared["on"]["p50"] / compared["off"]["p50"],
        "target_p99_ratio": TARGET_P99_RATIO,
        "target_met": met,
        "target_reason": reason,
        "scrapes_during_on_blocks": {
            "interval_s": SCRAPE_INTERVAL_S,
            "ms": summary(np.asarray([s[0] for s in scrapes])) if scrapes else None,
            "bytes_median": float(np.median([s[2] for s in scrapes])) if scrapes else None,
        },
    }


def target_verdict(compared: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether the p99 goal is met: True only when the 90% interval's upper bound is within
    :data:`TARGET_P99_RATIO`, False when its lower bound is above it, else None; and why."""
    floor = compared["noise_floor_off_vs_off_p99_ratio"]
    low, high = compared["p99_ratio_90ci"]
    if not 1 / TARGET_P99_RATIO <= floor <= TARGET_P99_RATIO:
        return None, f"not resolved: the off-vs-off floor {floor:.2f} is itself outside {TARGET_P99_RATIO}"
    if high <= TARGET_P99_RATIO:
        return True, f"the 90% interval [{low:.2f}, {high:.2f}] is within {TARGET_P99_RATIO}"
    if low > TARGET_P99_RATIO:
        return False, f"the 90% interval [{low:.2f}, {high:.2f}] is above {TARGET_P99_RATIO}"
    return None, f"not resolved: the 90% interval [{low:.2f}, {high:.2f}] straddles {TARGET_P99_RATIO}"


def bench_scrape(url: str, client: httpx.Client, n: int) -> dict[str, Any]:
    """Round trip of one ``GET /metrics``, back to back, in OpenMetrics and in the classic text format."""
    formats = {"openmetrics": {"Accept": PROMETHEUS_ACCEPT}, "text": {}}
    results: dict[str, Any] = {}
    for name, headers in formats.items():
        last = client.get(f"{url}/metrics", headers=headers)  # warm
        timings = timed([headers] * n, lambda sent: client.get(f"{url}/metrics", headers=sent).raise_for_status())
        results[name] = {"ms": summary(np.asarray(timings)), **_shape(last.text)}
    return results


def _served_state(client: httpx.Client, url: str) -> dict[str, Any]:
    """What the on server served at the end (the canary must still be there) and its gate decision."""
    status = client.get(f"{url}/status").json()
    canary, gates = status.get("canary"), status.get("gates") or {}
    if canary is None:
        raise RuntimeError(f"the canary is gone (gates: {gates.get('decision')}): the scrape was not timed with one")
    decision = gates.get("decision")
    return {"canary": canary.get("version"), "gate_decision": decision, "gates": len(gates.get("gates", []))}


def main() -> Path:
    """Run the /metrics benchmarks and write bench/results/metrics.json."""
    quick = "--quick" in sys.argv
    os.environ["OMP_NUM_THREADS"] = "1"
    load_at_start = os.getloadavg()
    blocks, per_block = (8, 100) if quick else (32, 200)
    with tempfile.TemporaryDirectory(prefix="rbk-metrics-") as tmp:
        repo = _project(Path(tmp) / "project")
        bodies = _one_row_bodies(per_block)
        with _servers(repo) as servers, httpx.Client(timeout=30) as client:
            _with_canary(servers, client, bodies[:100])
            exposition = _exposition(client, servers)
            predict = bench_predict(servers, client, bodies, blocks)
            scrape = bench_scrape(servers["on"].url, client, 50 if quick else 200)
            served = _served_state(client, servers["on"].url)
    load = os.getloadavg()
    return write_results(
        "metrics",
        {
            "predict_one_row_metrics_on_vs_off": predict,
            "scrape": {**scrape, "exposition_before_the_run": exposition, "served": served},
            "quick": quick,
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in load],
            "note": f"two servers, their log writers, the client and the scraper on one {os.cpu_count()}-core machine",
        },
    )


if __name__ == "__main__":
    print(main())
