"""The shadow's mirror: a sampled share of live requests, scored off the request path.

A request is mirrored after its live answer is computed: :meth:`Mirror.offer` only puts a
reference to the request's frame on a bounded queue (no copy, no scoring on the request
thread). One daemon worker scores each mirrored request with the shadow slot and keeps its
rows under the shadow's deployment tag. When the queue is full the request is dropped and
counted; a shadow that fails (its model raises, or it refuses the request) is counted and
its last error kept. Nothing the shadow does ever reaches the client: its answers are
logged, never returned, and its failures are never raised.

Which requests are mirrored is a pure function of the request id (:func:`sampled`), so a
share of requests is mirrored whatever the order they arrive in.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from rollbackkit.serving.router import Slot

QUEUE_REQUESTS = 1_000
"""Mirrored requests waiting at most; beyond, a request is dropped (and counted)."""

QUEUE_ROWS = 200_000
"""Rows of mirrored requests waiting at most (the frames are the live requests' own: memory is bounded too)."""


def sampled(request_id: str, percent: int) -> bool:
    """Whether the request ``request_id`` is mirrored to a shadow of ``percent``% (crc32 of the id)."""
    return zlib.crc32(request_id.encode()) % 100 < percent


@dataclass(frozen=True)
class Mirrored:
    """One live request handed to the shadow: the frame as the client sent it, and the live row's keys.

    ``untyped``: the frame came from JSON rows (the shadow reads them with its own dtypes).
    """

    slot: Slot
    frame: pd.DataFrame
    untyped: bool
    request_id: str
    when: datetime
    key: str | None


@dataclass(frozen=True)
class MirrorStatus:
    """The mirror's counters since the server started (``mirror`` in ``GET /status``, and in its ``shadow``)."""

    mirrored: int
    dropped: int
    failed: int
    queued: int
    last_error: str | None

    def to_dict(self) -> dict[str, int | str | None]:
        """JSON-ready counters."""
        return {
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self.queued,
            "last_error": self.last_error,
        }


class Mirror:
    """A bounded queue of mirrored requests and the one worker thread that scores them.

    Args:
        score: Scores one mirrored request with its shadow slot and keeps the rows; returns
            False when the shadow is gone (the request is discarded), raises when it fails.
        capacity: Requests that may wait (:data:`QUEUE_REQUESTS`).
        rows: Rows that may wait (:data:`QUEUE_ROWS`).
    """

    def __init__(
        self, score: Callable[[Mirrored], bool], capacity: int = QUEUE_REQUESTS, rows: int = QUEUE_ROWS
    ) -> None:
        self._score = score
        self._queue: queue.Queue[Mirrored | None] = queue.Queue(capacity)
        self._rows, self._queued_rows = rows, 0
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self.mirrored = self.dropped = self.failed = 0
        self.last_error: str | None = None

    def offer(self, request: Mirrored) -> None:
        """Queue ``request`` for the shadow, or drop and count it when the queue is full (never blocks)."""
        if self._stopped:
            return
        if self._worker is None:
            self._start()
        size = len(request.frame)
        with self._lock:
            room = self._queued_rows + size <= self._rows
            self._queued_rows += size if room else 0
        try:
            if room:
                self._queue.put_nowait(request)
                return
        except queue.Full:
            with self._lock:
                self._queued_rows -= size
        with self._lock:
            self.dropped += 1

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="rollbackkit-shadow", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            try:
                if request is None:
                    return
                self._one(request)
            finally:
                self._queue.task_done()

    def _one(self, request: Mirrored) -> None:
        """Score one request; count what became of it."""
        try:
            scored = self._score(request)
        except Exception as exc:  # the shadow's failure: counted, never the client's
            said = " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())[:500]
            with self._lock:
                self.failed += 1
                self.last_error = said
            return
        finally:
            with self._lock:
                self._queued_rows -= len(request.frame)
        if scored:
            with self._lock:
                self.mirrored += 1

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued request is scored (tests, shutdown); False on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, wait: float = 5.0) -> None:
        """Stop taking requests and let the worker finish what is queued within ``wait`` seconds."""
        self._stopped = True
        worker = self._worker
        if worker is None:
            return
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            return  # a daemon thread: it dies with the process
        worker.join(wait)

    def status(self) -> MirrorStatus:
        """The counters now."""
        with self._lock:
            return MirrorStatus(self.mirrored, self.dropped, self.failed, self._queue.qsize(), self.last_error)
