"""A steady /predict load from its own process (tests only; run as ``python tests/loadgen.py``).

Sends the request bodies of ``--bodies`` (a JSON list, used in turn) to ``URL/predict`` at
``--rate`` requests a second from ``--workers`` threads, and writes one JSON line per request
to ``--out`` as soon as it is answered: ``sent`` and ``received`` (wall-clock seconds),
``status`` (0: no HTTP answer), ``version``, ``request_id`` and ``rows`` (``error`` when it failed).
Stops by itself after ``--seconds`` or as soon as ``--stop`` (a file) exists; writes
``--out`` + ``.done`` when every worker has finished.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def _worker(
    args: argparse.Namespace, bodies: list[dict[str, Any]], until: float, out: Any, lock: Any, index: int
) -> None:
    """Send every ``workers``-th body from ``index`` on, one each ``workers / rate`` seconds."""
    period = args.workers / args.rate
    next_at = time.monotonic() + index / args.rate
    n = index
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < until and not args.stop.exists():
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at = max(next_at + period, time.monotonic() - period)  # steady, never a burst to catch up
            body = bodies[n % len(bodies)]
            n += args.workers
            line: dict[str, Any] = {"sent": time.time()}
            try:
                response = client.post(f"{args.url}/predict", json=body)
                line["status"] = response.status_code
                is_json = response.headers.get("content-type", "").startswith("application/json")
                answer = response.json() if is_json else {}
                line["version"] = answer.get("version")
                line["request_id"] = answer.get("request_id")
                line["rows"] = len(answer.get("predictions") or [])
                if response.status_code != 200:
                    line["error"] = response.text[:300]
            except (httpx.HTTPError, ValueError) as exc:
                line.update(status=0, version=None, request_id=None, rows=0, error=f"{type(exc).__name__}: {exc}")
            line["received"] = time.time()
            with lock:
                out.write(json.dumps(line) + "\n")
                out.flush()


def main() -> None:
    """Parse the arguments and run the load until its time is up or the stop file appears."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    bodies = json.loads(args.bodies.read_text())
    until = time.monotonic() + args.seconds
    lock = threading.Lock()
    with open(args.out, "a") as out:
        threads = [
            threading.Thread(target=_worker, args=(args, bodies, until, out, lock, i), daemon=True)
            for i in range(args.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    Path(f"{args.out}.done").write_text("done\n")


if __name__ == "__main__":
    main()
