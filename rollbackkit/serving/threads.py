"""Native thread pools while scoring: one thread per request by default.

Models like scikit-learn's ``HistGradientBoostingClassifier`` predict through OpenMP with
as many threads as cores. A server that scores a request at a time gains nothing from
that on a few rows, and its tail pays for it: an OpenMP region waits for its slowest
thread, so whenever another process (the prediction-log writer, a client, a notebook)
takes a core, a request stalls for a scheduler time slice. ``bench/sideeffects.py``
measures one-row p99 beside a busy core both ways (``bench/results/sideeffects.json``).

OpenMP's limit belongs to the calling thread, so each worker thread sets it (through
threadpoolctl) on its first request and again after the loaded models change, since a new
model may bring a new native library; BLAS limits are process-wide.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

_applied = threading.local()


def limit_scoring_threads(threads: int | None, models: Hashable = None) -> None:
    """Cap OpenMP/BLAS pools for the calling thread at ``threads`` (None: leave them).

    Args:
        threads: Threads per native pool while scoring.
        models: Anything that changes when other models are loaded (the router state).
    """
    if threads is None or getattr(_applied, "key", None) == (threads, models):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _applied.key = (threads, models)
