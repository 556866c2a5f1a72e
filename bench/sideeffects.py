"""Prediction-log benchmarks (results to bench/results/sideeffects.json).

1. Serving latency with the prediction log on vs off: the same requests through
   ``ServingEnvironment.predict`` in-process (with the server's log, a
   :class:`~rollbackkit.serving.predlog.process.LogProcess`), and through two real servers on
   127.0.0.1 (``rollbackkit serve`` and ``rollbackkit serve --no-log``). On and off
   alternate in short blocks (ABBA), and the p99 ratio comes with a block-bootstrap 90%
   interval and the off-vs-off noise floor. Target: p99 with logging within 10% of p99
   without.
2. Why the server caps native threads per request: one-row p99 with the model's OpenMP
   pool at the library default vs one thread, while another process keeps a core busy;
   and what a memory-bound neighbour process costs serving on this machine kind.
3. Logging throughput: rows per second from the first ``record`` to the last row
   committed, through the writer process (pickling, hand-over, the child's batches), for
   requests of 1, 100 and 1,000 rows of the 52-feature demo frame. Target: >= 50,000
   predictions/s. Per-request pandas work (pickling, unpickling) bounds single-row
   requests at several hundred requests/s, far above what one server scores single rows
   at (about 60/s).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench._common import BIN, ENV, write_results
from bench.abba import abba, p99_comparison, timed
from bench.abba import bootstrap_ratio as _bootstrap_ratio  # noqa: F401  (bench.gates imports it here)
from bench.abba import summary as _summary  # noqa: F401
from bench.serving import _percentiles, _project


def _requests(n: int, rows: int) -> list[pd.DataFrame]:
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame

    live = churn_frame(max(n * rows, 1000), seed=7)[ALL_FEATURES]
    # independent frames with a 0..n-1 index, as a server builds them from each request's JSON
    return [live.iloc[(i * rows) % (len(live) - rows) :][:rows].reset_index(drop=True).copy() for i in range(n)]


def _timed_predictions(repo: Path, frames: list[pd.DataFrame], threads: int | None = 1) -> list[float]:
    """Milliseconds per ``ServingEnvironment.predict`` (no log) over ``frames``, after a warm-up."""
    from rollbackkit.serving.environment import ServingEnvironment

    environment = ServingEnvironment(repo, "churn", "prod", scoring_threads=threads, freeze_heap=True)
    environment.start()
    for frame in frames[:50]:  # warm-up
        environment.predict(frame)
    return timed(list(enumerate(frames)), lambda item: environment.predict(item[1], key=str(item[0])))


def bench_in_process(
    repo: Path, rows: int, blocks: int = 40, per_block: int = 150, **log_options: Any
) -> dict[str, Any]:
    """p50/p99 of ServingEnvironment.predict with the server's log on vs off, in alternating blocks.

    One environment and one :class:`~rollbackkit.serving.predlog.process.LogProcess` for the whole run; an
    "off" block starts only after the writer has committed everything (so it idles), then
    scores with no log; an "on" block scores with it. Many short blocks rather than a few
    long rounds: each p99 then rests on thousands of samples spread over the whole run.
    """
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.predlog.process import LogProcess

    frames = _requests(per_block, rows)
    log = LogProcess(repo / f"bench-{rows}-{time.time_ns()}.duckdb", **log_options)
    environment = ServingEnvironment(repo, "churn", "prod", log=log, scoring_threads=1, freeze_heap=True)
    environment.start()
    log.start()
    try:
        for frame in frames[:50]:  # warm-up
            environment.predict(frame)
        samples: dict[str, list[list[float]]] = {"on": [], "off": []}
        for block, mode in enumerate(abba(blocks, "on", "off")):
            log.query("SELECT 1")  # returns once the writer has committed all it was handed
            environment.log = log if mode == "on" else None
            keyed = [(f"{block}-{i}", frame) for i, frame in enumerate(frames)]
            samples[mode].append(timed(keyed, lambda item: environment.predict(item[1], key=item[0])))
    finally:
        log.close()
    return {"rows_per_request": rows, **_compare(samples)}


def _compare(samples: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Percentiles per mode, the p99 ratio with a block-bootstrap 90% interval, and the A/A floor
    (:func:`bench.abba.p99_comparison`: the "off" blocks in two interleaved halves)."""
    return p99_comparison(samples["on"], samples["off"], ("on", "off", "noise_floor_off_vs_off_p99_ratio"))


def bench_scoring_threads(repo: Path, n: int = 400) -> dict[str, Any]:
    """One-row p99 (no log) with OpenMP at the library default vs one thread, beside a busy core."""
    import sys

    frames = _requests(n, 1)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:  # the library default is one thread per core; set it explicitly, as earlier runs capped this thread
        default = _percentiles(_timed_predictions(repo, frames, threads=os.cpu_count() or 1))
        capped = _percentiles(_timed_predictions(repo, frames, threads=1))
    finally:
        busy.kill()
        busy.wait()
    return {
        "busy_neighbour": True,
        "library_default": default,
        "one_thread": capped,
        "p99_ratio_default_vs_one": default["p99"] / capped["p99"],
    }


MEMORY_NEIGHBOUR = """
import numpy as np
a, b = np.ones(8_000_000), np.empty(8_000_000)
while True:
    np.copyto(b, a)
"""


def bench_neighbour(repo: Path, n: int = 400, rounds: int = 3) -> dict[str, Any]:
    """One-row latency (no log) alone vs beside a memory-bound process on the other core.

    Shows what any neighbour costs on this machine kind, whatever its language: the
    share of latency a log writer process can take however little it holds the GIL.
    """
    import sys

    frames = _requests(n, 1)
    samples: dict[str, list[float]] = {"alone": [], "beside_memory_bound_process": []}
    for _ in range(rounds):
        samples["alone"].extend(_timed_predictions(repo, frames))
        busy = subprocess.Popen([sys.executable, "-c", MEMORY_NEIGHBOUR])
        try:
            samples["beside_memory_bound_process"].extend(_timed_predictions(repo, frames))
        finally:
            busy.kill()
            busy.wait()
    alone, beside = (_percentiles(v) for v in samples.values())
    return {"alone": alone, "beside_memory_bound_process": beside, "p99_ratio": beside["p99"] / alone["p99"]}


def _serve(repo: Path, log: bool) -> tuple[subprocess.Popen[bytes], str]:
    record = repo / ".rollbackkit" / "local" / "servers" / "churn-prod.json"
    record.unlink(missing_ok=True)
    args = [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--watchdog-interval", "3600"]
    process = subprocess.Popen([*args, *([] if log else ["--no-log"])], cwd=repo, env=ENV)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if record.exists():
            import json

            url = json.loads(record.read_text())["url"]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):  # 503: up, nothing served
                    return process, str(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def bench_http(repo: Path, blocks: int = 24, per_block: int = 150) -> dict[str, Any]:
    """p50/p99 of POST /predict (one row): a server with the log and one without, in alternating blocks.

    Both servers run for the whole bench (from two copies of the project, so each owns its
    files); only the server of the current block gets requests. A pause of two flush
    intervals after every block lets the log writer finish before the next block starts.
    """
    import shutil

    records = [f.to_dict(orient="records") for f in _requests(per_block, 1)]
    twin = repo.parent / f"{repo.name}-nolog"
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(repo, twin, symlinks=True)
    servers = {"on": _serve(repo, log=True), "off": _serve(twin, log=False)}
    samples: dict[str, list[list[float]]] = {"on": [], "off": []}
    try:
        with httpx.Client(timeout=30) as client:
            for _, url in servers.values():
                for body in records[:50]:
                    client.post(f"{url}/predict", json={"records": body})
            for mode in abba(blocks, "on", "off"):
                url = servers[mode][1]
                time.sleep(0.4)
                samples[mode].append(timed(records, partial(_predicted, client, url)))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    return _compare(samples)


def _predicted(client: httpx.Client, url: str, body: list[dict[str, Any]]) -> None:
    response = client.post(f"{url}/predict", json={"records": body})
    assert response.status_code == 200, response.text


def bench_throughput(root: Path, rows: int, requests: int) -> dict[str, Any]:
    """Rows per second from the first record() to the last row committed, through the writer process."""
    from rollbackkit.serving.predlog.process import LogProcess

    frames = _requests(requests, rows)
    outputs = [
        pd.DataFrame({"prediction": np.zeros(len(f), dtype="int64"), "proba_1": np.full(len(f), 0.3)}) for f in frames
    ]
    log = LogProcess(root / f"throughput-{rows}.duckdb")
    log.start()
    log.set_stage("churn#prod#1", "churn", "prod", "v1.0.0", "production")
    meta = {
        "time": datetime.now(UTC),
        "env": "prod",
        "name": "churn",
        "version": "v1.0.0",
        "bundle_id": "sha256:bench",
        "slot": "blue",
        "deployment": "churn#prod#1",
        "latency_ms": 1.0,
        "error": None,
        "primary": "proba_1",
    }
    started = time.perf_counter()
    for i, (frame, out) in enumerate(zip(frames, outputs, strict=True)):
        log.record({**meta, "request_id": f"r{i}"}, frame, out)
    written = int(log.query("SELECT count(*) AS n FROM predictions")["n"][0])  # runs after every queued row
    seconds = time.perf_counter() - started
    log.close()
    return {"rows_per_request": rows, "rows": written, "seconds": seconds, "rows_per_s": written / seconds}


def main() -> Path:
    """Run the prediction-log benchmarks and write bench/results/sideeffects.json."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.setdefault("ROLLBACKKIT_ADMIN_TOKEN", "bench-admin-token-0123456789")
        repo = _project(root / "project")
        figures = {
            "in_process_1_row": bench_in_process(repo, rows=1),
            "in_process_20_rows": bench_in_process(repo, rows=20),
            "http_1_row": bench_http(repo),
            "scoring_threads_1_row": bench_scoring_threads(repo),
            "neighbour_1_row": bench_neighbour(repo),
            "throughput_1_row_requests": bench_throughput(root, rows=1, requests=20_000),
            "throughput_100_row_requests": bench_throughput(root, rows=100, requests=3_000),
            "throughput_1000_row_requests": bench_throughput(root, rows=1000, requests=300),
        }
    figures["targets"] = {
        "p99_ratio_max": 1.10,
        "rows_per_s_min": 50_000,
    }
    return write_results("sideeffects", figures)


if __name__ == "__main__":
    print(main())
