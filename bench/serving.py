"""Serving benchmarks (results to bench/results/serving.json).

1. Traffic-shift latency: in-process ``Router.shift`` p50/p99 (target p99 <= 1 ms) and the
   HTTP round trip of a recorded deploy/rollback between warm slots (shift, assignment tag,
   journal), against the anchor of a cold redeploy: a new process that imports, loads the
   same bundle and scores once (what an MLflow ``pyfunc.load_model`` redeploy does).
2. Gate breach -> 100% of traffic on the previous version: gate evaluation plus the shift,
   in-process (target <= 1 s; a watchdog adds at most its interval).
3. Prediction latency/throughput through the router vs calling the bundle directly.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench._common import BIN, ENV, new_project, write_results

TOKEN = "bench-admin-token-0123456789"  # the server refuses tokens under 16 characters


def _project(root: Path) -> Path:
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("GIT_", "DVC_", "GTO_"))})
    from rollbackkit import Registry
    from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, TARGET, churn_frame, churn_pipeline
    from rollbackkit.ops.traffic import deploy

    registry = Registry(new_project(root))
    train, held_out = churn_frame(4000, seed=1), churn_frame(2000, seed=2)
    gates = {
        "min_samples": 200,
        "gates": [{"name": "score-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.2}],
    }
    for version, features in (("v1.0.0", BASE_FEATURES), ("v1.1.0", ALL_FEATURES)):
        model = churn_pipeline(features).fit(train[features], train[TARGET])
        registry.register(
            "churn",
            model,
            train[[*features, TARGET]],
            target=TARGET,
            version=version,
            gates=gates,
            validation_data=held_out[[*features, TARGET]],
        )
    deploy(root, "churn@v1.0.0", "prod", reason="bench")
    return root


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = np.sort(np.asarray(samples))
    return {"p50": float(np.quantile(ordered, 0.5)), "p99": float(np.quantile(ordered, 0.99)), "n": len(samples)}


def bench_shift_in_process(repo: Path) -> dict[str, float]:
    from rollbackkit import Registry
    from rollbackkit.serving.router import Router

    registry = Registry(repo)
    router = Router()
    router.deploy(registry.load("churn@v1.0.0"))
    router.deploy(registry.load("churn@v1.1.0"))
    samples = []
    for i in range(10_000):
        started = time.perf_counter()
        router.shift("blue" if i % 2 else "green", 100)
        samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


def _start_server(repo: Path) -> tuple[subprocess.Popen[bytes], str]:
    record = repo / ".rollbackkit/local/servers/churn-prod.json"
    env = {**os.environ, "ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [str(BIN / "rollbackkit"), "serve", "churn", "--env", "prod", "--port", "0", "--watchdog-interval", "3600"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if record.exists():
            url = json.loads(record.read_text())["url"]
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                return process, url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def bench_http(repo: Path) -> dict[str, object]:
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame

    process, url = _start_server(repo)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(timeout=60, headers=headers) as http:
            http.post(f"{url}/admin/deploy", json={"version": "v1.1.0"}).raise_for_status()
            http.post(f"{url}/admin/rollback", json={"reason": "warm both"}).raise_for_status()
            recorded, shift = [], []  # every change of what serves is a recorded assignment
            for i in range(20):
                started = time.perf_counter()
                if i % 2 == 0:
                    answer = http.post(f"{url}/admin/deploy", json={"version": "v1.1.0"})
                else:
                    answer = http.post(f"{url}/admin/rollback", json={"reason": "bench"})
                recorded.append((time.perf_counter() - started) * 1000)
                shift.append(float(answer.raise_for_status().json()["shift_ms"]))
            rows = churn_frame(500, seed=3)[ALL_FEATURES].to_dict(orient="records")
            predict = []
            for i in range(1000):
                started = time.perf_counter()
                http.post(f"{url}/predict", json={"records": [rows[i % 500]]}).raise_for_status()
                predict.append((time.perf_counter() - started) * 1000)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "admin_deploy_or_rollback_with_tag_ms": _percentiles(recorded),
        "shift_within_those_calls_ms": _percentiles(shift),
        "predict_one_row_ms": _percentiles(predict),
    }


def bench_cold_redeploy(repo: Path) -> float:
    script = (
        "import time; t=time.perf_counter()\n"
        "from rollbackkit import Registry\nfrom rollbackkit.bundle.frames import part\n"
        f"b = Registry({str(repo)!r}).load('churn@v1.0.0')\n"
        "b.predict(part(b.golden, 'input').head(1))\nprint(time.perf_counter()-t)"
    )
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_breach(repo: Path) -> dict[str, float]:
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame
    from rollbackkit.serving.environment import ServingEnvironment

    env = ServingEnvironment(repo, "churn", "prod")
    env.start()
    drifted = churn_frame(6000, seed=4)
    drifted["support_calls"] += 6
    drifted["contract"] = "month-to-month"
    rows = drifted[ALL_FEATURES]
    totals, shifts = [], []
    for round_ in range(3):
        env.deploy("v1.1.0", canary=50, reason=f"bench {round_}")
        for i in range(60):
            env.predict(rows.iloc[i * 20 : (i + 1) * 20], key=f"k{i}")
        started = time.perf_counter()
        result = env.check_gates()
        totals.append((time.perf_counter() - started) * 1000)
        assert result is not None and env.router.state.canary is None, "the canary should have been rolled back"
        shifts.append(float(result["breach_to_shift_ms"]))
    return {
        "evaluate_and_shift_ms_median": statistics.median(totals),
        "shift_after_decision_ms_median": statistics.median(shifts),
    }


def bench_overhead(repo: Path) -> dict[str, object]:
    from rollbackkit import Registry
    from rollbackkit.demo.data import BASE_FEATURES, churn_frame
    from rollbackkit.serving.router import Router

    bundle = Registry(repo).load("churn@v1.0.0")
    router = Router()
    router.deploy(bundle)
    frames = [churn_frame(1, seed=i)[BASE_FEATURES] for i in range(200)]

    def run(call: object) -> list[float]:
        samples = []
        for i in range(2000):
            started = time.perf_counter()
            call(frames[i % 200])  # type: ignore[operator]
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    run(bundle.predict)
    direct, routed = run(bundle.predict), run(router.predict)
    d, r = _percentiles(direct), _percentiles(routed)
    return {
        "direct_ms": d,
        "router_ms": r,
        "p99_overhead_ratio": r["p99"] / d["p99"],
        "throughput_per_s": {"direct": 1000 / statistics.mean(direct), "router": 1000 / statistics.mean(routed)},
    }


def main() -> Path:
    """Run the serving benchmarks and write bench/results/serving.json."""
    with tempfile.TemporaryDirectory(prefix="rbk-serving-") as tmp:
        repo = _project(Path(tmp) / "project")
        in_process = bench_shift_in_process(repo)
        http = bench_http(repo)
        cold = bench_cold_redeploy(repo)
        recorded_p99 = http["admin_deploy_or_rollback_with_tag_ms"]["p99"]  # type: ignore[index]
        breach = bench_breach(repo)
        overhead = bench_overhead(repo)
    return write_results(
        "serving",
        {
            "shift_in_process_ms": in_process,
            "http": http,
            "cold_redeploy_s": cold,
            "speedup_recorded_shift_vs_cold_redeploy": cold * 1000 / recorded_p99,
            "gate_breach_to_previous_version": breach,
            "router_overhead": overhead,
            "targets": {"shift_in_process_p99_ms": 1, "breach_to_rollback_s": 1},
        },
    )


if __name__ == "__main__":
    print(main())
