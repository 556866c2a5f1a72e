"""A separate load-generating process: bounded in requests and seconds, loopback only.

Usage: python tests/loader.py URL RECORDS_JSON SECONDS THREADS OUT_JSON
Stops after SECONDS, or as soon as OUT_JSON.stop exists.
Each thread is one client with its own sticky key; every response is logged with its send
and receive times (wall clock, shared with the test process) and the version that scored it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import httpx

MAX_REQUESTS_PER_CLIENT = 20_000


def main() -> None:
    url, records_path, seconds, threads, out = sys.argv[1:6]
    assert url.startswith(("http://127.", "http://localhost")), "load goes to loopback only"
    with open(records_path) as fh:
        records = json.load(fh)
    stop_at = time.monotonic() + float(seconds)
    results: dict[int, list[dict]] = {}

    def client(index: int) -> None:
        log = results.setdefault(index, [])
        with httpx.Client(timeout=30) as http:
            for i in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at or (i % 20 == 0 and os.path.exists(out + ".stop")):
                    break
                row = records[(index * 7919 + i) % len(records)]
                sent = time.time()
                try:
                    response = http.post(f"{url}/predict", json={"records": [row], "key": f"client-{index}"})
                    body = response.json()
                    log.append(
                        {
                            "sent": sent,
                            "received": time.time(),
                            "status": response.status_code,
                            "version": body.get("version"),
                            "slot": body.get("slot"),
                        }
                    )
                except httpx.HTTPError as exc:
                    log.append({"sent": sent, "received": time.time(), "status": -1, "error": repr(exc)})

    workers = [threading.Thread(target=client, args=(i,)) for i in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(out, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
