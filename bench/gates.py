"""Gate benchmarks (results to bench/results/gates.json).

1. **Gates with late labels over a big log.** The demo's churn model serves; its prediction
   log holds 1,000,000 rows (1,000 requests of 1,000 rows) and labels for half of them,
   ingested by request id. Timed: ``add_labels`` of the 500,000 labels, then one gate
   evaluation as the watchdog runs it: the window (the deployment's latest 20,000 rows, their
   latest labels joined in DuckDB) and ``evaluate`` of an accuracy gate and a per-segment
   accuracy gate. The peer is what a team writes without rollbackkit: the same rows and
   labels exported to Parquet, read with pandas, the newest 20,000 predictions merged with
   the newest label per row, and scikit-learn's accuracy overall and per segment. Both
   answers are checked equal before any time is reported.
2. **Shadow's cost on live p99, open loop** (:func:`bench_shadow_open_loop`, the target).
   One in-process serving environment with the server's log (a writer process), one-row
   requests; blocks alternate ABBA between "no shadow" and "a 100% shadow of the next
   version" (deploy --shadow 100, then a rollback that cancels it), the mirror drained before
   each block. Requests ARRIVE on a fixed schedule at half this machine's one-row capacity
   (measured first in the same run) and each is timed from its scheduled arrival, so time
   queued behind the shadow counts. Target: live p99 with the shadow within 10% of p99
   without; the ratio comes with a block-bootstrap 90% interval and the no-shadow A/A floor
   (a ratio inside the floor is not a measured cost).
3. **The same at saturation, closed loop** (:func:`bench_shadow_cost`, key ``shadow_cost``):
   requests back to back from one thread, so the server is never idle and any CPU the shadow
   takes delays live. The mirror yields to live requests being scored, but a batch it has
   started is not pre-empted and it shares the GIL and both cores; expect a ratio above 1 here.
   A server run at saturation has no latency target to keep; this bounds the worst case.

``target_met`` is None (not resolved) when the A/A floor is itself outside 1.10 either way.

Measured 2026-11-30 on 2 cores shared with other jobs (load average 1.6-3.5), after the mirror
learnt to yield to live requests: open loop, 16 blocks of 400 requests at 73 req/s (50% of a
measured 147 req/s): p99 47 ms with the shadow vs 107 ms without, ratio 0.44, 90% interval
[0.36, 0.98], but A/A floor 3.2: NOT resolved. The no-shadow p99 is inflated by a few blocks
(118-142 ms, the second no-shadow block of a pair, in two runs: an artefact of this machine or
of the log writer, not understood yet); p50 10.0 vs 9.6 ms, p95 30.2 vs 31.6 ms, mean 12.2 vs
12.7 ms (shadow vs none). A 12-block run: 0.46 [0.35, 1.67], floor 4.5. Closed loop, 8 blocks
of 150: ratio 1.16 [0.96, 1.54], floor 1.31; at saturation the mirror defers nearly all its
work to the idle drains between blocks (16 batches for 600 requests); sustained, its queue
would fill and drop. Rerun on a quiet machine with more blocks before quoting the target met.

Run: ``python -m bench gates`` (``--quick``: 200,000 rows and fewer blocks).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from bench._common import median_seconds, write_results
from bench.abba import abba, p99_comparison, timed
from bench.serving import _project

T = TypeVar("T")

TARGET_P99_RATIO = 1.10
"""Live p99 with a 100% shadow over p99 without, at most (issue 19), in the open-loop bench."""

SEGMENT = "contract"
GATES = {
    "min_samples": 200,
    "gates": [
        {"name": "accuracy", "kind": "label_metric", "metric": "accuracy", "min": 0.5},
        {"name": "accuracy-by-contract", "kind": "slice", "by": SEGMENT, "metric": "accuracy", "min": 0.5},
    ],
}


def _fill_log(repo: Path, rows: int, per_request: int = 1000) -> tuple[Any, str, pd.DataFrame]:
    """Open the project's log and write ``rows`` logged rows of churn@v1.0.0 in prod; return the
    log, the deployment tag and the (request_id, row, label) frame of half the rows."""
    from rollbackkit import Registry
    from rollbackkit.demo.data import BASE_FEATURES, TARGET, churn_frame
    from rollbackkit.registry.assignments import Deployments
    from rollbackkit.serving.predlog.opening import open_log

    registry = Registry(repo)
    bundle = registry.load("churn@v1.0.0")
    deployment = Deployments(registry).history("churn", "prod")[-1].tag
    data = churn_frame(per_request * 4, seed=11)
    outputs = bundle.predict(data[BASE_FEATURES])
    log = open_log(registry.paths, sinks=False, batch_rows=200_000)
    log.set_stage(deployment, "churn", "prod", "v1.0.0", "production")
    log.start()
    started = datetime.now(UTC) - timedelta(hours=2)
    labelled = []
    rng = np.random.default_rng(0)
    for i in range(rows // per_request):
        offset = (i % 4) * per_request
        inputs = data[BASE_FEATURES].iloc[offset : offset + per_request].reset_index(drop=True)
        answers = outputs.iloc[offset : offset + per_request].reset_index(drop=True)
        request_id = uuid.uuid4().hex
        meta = {"request_id": request_id, "time": started + timedelta(milliseconds=7 * i), "env": "prod"}
        meta |= {"name": "churn", "version": "v1.0.0", "bundle_id": bundle.bundle_id, "slot": "blue"}
        meta |= {"deployment": deployment, "latency_ms": 5.0, "error": None, "primary": "proba_1", "key": None}
        log.record(meta, inputs, answers)
        truth = data[TARGET].iloc[offset : offset + per_request].to_numpy()
        chosen = rng.random(per_request) < 0.5
        labelled.append(pd.DataFrame({"request_id": request_id, "row": np.flatnonzero(chosen), "label": truth[chosen]}))
    log.flush()
    return log, deployment, pd.concat(labelled, ignore_index=True)


def _peer(predictions: Path, labels: Path, window: int) -> tuple[float, dict[str, float]]:
    """What a team writes: read both Parquet files, merge the newest rows with their labels, score."""
    from sklearn.metrics import accuracy_score

    frame = pd.read_parquet(predictions).sort_values(["time", "request_id", "row"]).tail(window)
    answers = pd.read_parquet(labels).drop_duplicates(["request_id", "row"], keep="last")
    joined = frame.merge(answers, on=["request_id", "row"], how="inner")
    overall = accuracy_score(joined["label"], joined["prediction"])
    per_segment = {str(k): accuracy_score(g["label"], g["prediction"]) for k, g in joined.groupby(SEGMENT)}
    return overall, per_segment


def bench_label_join(work: Path, rows: int) -> dict[str, Any]:
    """Time add_labels, then window + evaluate over a log of ``rows`` rows, against the pandas peer."""
    from rollbackkit import Registry
    from rollbackkit.analysis.gates import evaluate
    from rollbackkit.analysis.gatespec import WINDOW_ROWS

    repo = _project(work / "labels")
    log, deployment, labels = _fill_log(repo, rows)
    try:
        started = time.perf_counter()
        ingest = log.add_labels("churn", "prod", labels, "request_id")
        ingest_s = time.perf_counter() - started
        registry = Registry(repo)
        bundle = registry.describe("churn@v1.0.0")
        bundle = dataclasses.replace(bundle, gates=GATES)

        def ours() -> Any:
            window = log.window("churn", "prod", deployment=deployment, limit=WINDOW_ROWS)
            return evaluate(bundle, window)

        report = ours()
        ours_s = median_seconds(ours, runs=5)
        # the peer's inputs: the same rows and labels as Parquet (prediction and segment per row)
        window = log.window("churn", "prod", deployment=deployment, limit=rows)
        predictions = work / "predictions.parquet"
        window[["request_id", "row", "time", "prediction", SEGMENT]].to_parquet(predictions)
        labels_file = work / "labels.parquet"
        labels.to_parquet(labels_file)
        peer_s = median_seconds(lambda: _peer(predictions, labels_file, WINDOW_ROWS), runs=5)
        overall, per_segment = _peer(predictions, labels_file, WINDOW_ROWS)
    finally:
        log.close()
    accuracy = next(g for g in report.gates if g.name == "accuracy")
    by_segment = next(g for g in report.gates if g.name == "accuracy-by-contract")
    if abs(accuracy.observed - overall) > 1e-12:
        raise RuntimeError(f"accuracy differs from the peer's: {accuracy.observed} vs {overall}")
    ours_segments = {str(s["slice"][SEGMENT]): s["value"] for s in by_segment.evidence["slices"]}
    if any(abs(ours_segments[k] - v) > 1e-12 for k, v in per_segment.items()):
        raise RuntimeError(f"per-segment accuracy differs from the peer's: {ours_segments} vs {per_segment}")
    return {
        "logged_rows": rows,
        "labels": len(labels),
        "add_labels_s": ingest_s,
        "labels_per_s": len(labels) / ingest_s,
        "ingest": ingest,
        "window_rows": WINDOW_ROWS,
        "labelled_in_window": int(accuracy.evidence.get("labelled", accuracy.evidence.get("n", 0))),
        "ours_window_and_evaluate_s": ours_s,
        "peer_pandas_parquet_merge_and_sklearn_s": peer_s,
        "ratio_ours_vs_peer": ours_s / peer_s,
        "decision": report.decision,
        "accuracy": overall,
    }


@contextmanager
def _shadow_environment(work: Path) -> Iterator[tuple[Any, Any]]:
    """The churn project served in-process with the server's log (a writer process), warmed up."""
    from bench.sideeffects import _requests
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.predlog.process import LogProcess

    repo = _project(work / f"shadow-{uuid.uuid4().hex[:8]}")
    log = LogProcess(repo / "bench-shadow.duckdb")
    environment = ServingEnvironment(repo, "churn", "prod", log=log, scoring_threads=1, freeze_heap=True)
    environment.start()
    log.start()
    try:
        for frame in _requests(50, 1):  # warm-up
            environment.predict(frame)
        yield environment, log
    finally:
        environment.stop(wait=5)
        log.close()


def _shadow_blocks(environment: Any, log: Any, blocks: int, run: Callable[[str], list[float]]) -> dict[str, Any]:
    """``run(block)`` in ABBA blocks with a 100% shadow and with none, then :func:`p99_comparison`.

    A shadow block deploys ``v1.1.0 --shadow 100`` and ends with a rollback that cancels it;
    the mirror is drained and the log's writer has committed before every block.
    """
    samples: dict[str, list[list[float]]] = {"shadow": [], "none": []}
    mirrored, worker_cpu = 0, 0.0
    for block, mode in enumerate(abba(blocks, "shadow", "none")):
        if mode == "shadow":
            environment.deploy("v1.1.0", shadow=100, reason="bench", force=True)
        environment.mirror.drain()
        log.query("SELECT 1")  # the writer has committed all it was handed
        samples[mode].append(run(str(block)))
        if mode == "shadow":
            environment.mirror.drain()
            mirrored = environment.mirror.status().mirrored
            worker_cpu = _thread_cpu_seconds(environment.mirror._worker)
            environment.rollback(reason="bench: end the shadow block")
    names = ("shadow_100", "no_shadow", "noise_floor_no_shadow_a_vs_a_p99_ratio")
    return {
        "rows_per_request": 1,
        **p99_comparison(samples["shadow"], samples["none"], names),
        "p99_per_block_ms": {mode: [float(np.quantile(b, 0.99)) for b in runs] for mode, runs in samples.items()},
        "mirrored_requests_total": mirrored,
        "mirror": environment.mirror.status().to_dict() | {"batches": environment.mirror.batches},
        "shadow_worker_cpu_ms_per_mirrored_request": worker_cpu * 1000 / mirrored if mirrored else None,
    }


def bench_shadow_cost(work: Path, blocks: int, per_block: int = 150) -> dict[str, Any]:
    """Closed loop (saturation): live one-row p99 with a 100% shadow vs without, requests back to back."""
    from bench.sideeffects import _requests

    frames = _requests(per_block, 1)
    with _shadow_environment(work) as (environment, log):

        def run(block: str) -> list[float]:
            keyed = [(f"{block}-{i}", frame) for i, frame in enumerate(frames)]
            return timed(keyed, lambda item: environment.predict(item[1], key=item[0]))

        return {"loop": "closed", **_shadow_blocks(environment, log, blocks, run)}


def open_loop(items: Sequence[T], call: Callable[[T], object], rate: float) -> list[float]:
    """Milliseconds from each item's scheduled arrival (one every ``1 / rate`` s) to ``call(item)``'s end.

    Arrivals keep their schedule whatever the answers take, and each is timed from when it
    was due, not from when it could start: time spent queued behind a slow answer (or the
    shadow) counts (no coordinated omission).
    """
    timings, interval, start = [], 1.0 / rate, time.perf_counter()
    for i, item in enumerate(items):
        due = start + i * interval
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        call(item)
        timings.append((time.perf_counter() - due) * 1000)
    return timings


def bench_shadow_open_loop(work: Path, blocks: int, per_block: int = 400, load: float = 0.5) -> dict[str, Any]:
    """Open loop: one-row requests arrive at ``load`` x this machine's one-row capacity (measured
    first: the best of three closed-loop rounds, no shadow); live p99 from each arrival, 100% shadow
    vs none, ABBA."""
    from bench.sideeffects import _requests

    frames = _requests(per_block, 1)
    with _shadow_environment(work) as (environment, log):
        rounds = [timed(frames, environment.predict) for _ in range(3)]
        capacity = max(1000 * len(frames) / sum(r) for r in rounds)  # the best round: the least disturbed
        rate = load * capacity

        def run(block: str) -> list[float]:
            keyed = [(f"{block}-{i}", frame) for i, frame in enumerate(frames)]
            return open_loop(keyed, lambda item: environment.predict(item[1], key=item[0]), rate)

        results = _shadow_blocks(environment, log, blocks, run)
    floor = results["noise_floor_no_shadow_a_vs_a_p99_ratio"]
    resolved = 1 / TARGET_P99_RATIO <= floor <= TARGET_P99_RATIO  # two runs alike differ less than the target
    # None: not resolved here; True only when the whole interval is within the target
    met = results["p99_ratio_90ci"][1] <= TARGET_P99_RATIO if resolved else None
    measured = {"capacity_requests_per_s": capacity, "load": load, "rate_requests_per_s": rate}
    return {"loop": "open", **measured, "target_p99_ratio": TARGET_P99_RATIO, "target_met": met} | results


def _thread_cpu_seconds(thread: Any) -> float:
    """CPU seconds a thread of this process has used (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> Path:
    """Run both benchmarks and write bench/results/gates.json."""
    quick = "--quick" in sys.argv
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        label_join = bench_label_join(work, 200_000 if quick else 1_000_000)
        shadow = bench_shadow_cost(work, 8 if quick else 24)
        shadow_open = bench_shadow_open_loop(work, 8 if quick else 24)
    results = {"label_join": label_join, "shadow_cost": shadow, "shadow_cost_open_loop": shadow_open}
    return write_results("gates", results | {"quick": quick})


if __name__ == "__main__":
    print(main())
