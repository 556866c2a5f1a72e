"""The shadow's mirror: a sampled share of live requests, scored off the request path, in batches.

A request is mirrored after its live answer is computed: :meth:`Mirror.offer` only puts a
reference to the request's frame on a bounded queue (no copy, no scoring on the request
thread). One daemon worker scores the mirrored requests with the shadow slot and keeps
their rows under the shadow's deployment tag. When the queue is full the request is dropped
and counted; a shadow that fails (its model raises, or it refuses the request) is counted
and its last error kept. Nothing the shadow does ever reaches the client: its answers are
logged, never returned, and its failures are never raised.

Live requests go first: the worker lets mirrored requests gather for :data:`LINGER` seconds
(or until :data:`BATCH_REQUESTS` wait), then scores everything it took in a few model calls,
one per input signature (columns and dtypes, untyped frames read with the shadow's dtypes
first), and splits the answers back per request. So it wakes rarely, holds the GIL briefly
per request, and uses no more native threads than live scoring. At most once a
:data:`TIMED_EVERY` (and whenever a request has no company), a request is scored alone: its
``latency_ms`` is the shadow's latency on one request (what the shadow report compares with
live); requests scored together keep no latency (NaN). A batch call that raises is retried
one request at a time, so one refused or failing request costs only itself. Batching
assumes a version answers each row on its own (as serving several-row requests does).

The shadow yields to live traffic: the serving environment counts the live requests being
scored (:class:`~rollbackkit.serving.in_flight.InFlight`), and the worker starts a batch, each
model call within one, and the keeping of each batched request's rows only when none is (it
waits on a condition the last live request to end notifies: no polling). A call already
started runs to its end (it is not pre-empted); a shadow that cannot start for long lets its
queue fill, and what comes next is dropped and counted.

Which requests are mirrored is a pure function of the request id
(:func:`~rollbackkit.serving.mirrored.sampled`), so a share of requests is mirrored whatever the
order they arrive in. A mirrored request, the counters and the batch signature are
:mod:`rollbackkit.serving.mirrored`'s; the live requests in flight,
:mod:`rollbackkit.serving.in_flight`'s.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence

from rollbackkit.serving.in_flight import InFlight
from rollbackkit.serving.mirrored import KeepFailed, Mirrored, MirrorStatus, signature, typed

QUEUE_REQUESTS = 1_000
"""Mirrored requests waiting (or being scored) at most; beyond, a request is dropped (and counted)."""

QUEUE_ROWS = 200_000
"""Rows of mirrored requests waiting at most (the frames are the live requests' own: memory is bounded too)."""

LINGER = 0.2
"""Seconds the worker lets mirrored requests gather before scoring them (it wakes at most this often).

Long enough to gather several requests of a loaded server (where batching pays most), short
beside a gate's window: the shadow's rows reach the log this much later.
"""

TIMED_EVERY = 1.0
"""Seconds between two requests the worker scores alone to time the shadow on one request."""

BATCH_REQUESTS = 256
"""Requests the worker scores at most per batch; this many waiting start a batch at once."""

BATCH_ROWS = 20_000
"""Rows the worker scores at most per batch (a larger request is scored alone)."""

YIELD_POLL = 0.05
"""Seconds the worker waits for live requests in flight to end before it looks whether it was stopped."""
YIELD_MAX = 1.0
"""The longest the worker yields before one model call: a server never idle for a second (several
clients at once) still gets its shadow scored, at live's expense, rather than a full queue dropping
every mirrored request."""


class Mirror:
    """A bounded queue of mirrored requests and the one worker thread that scores them in batches.

    Args:
        score: Scores one mirrored request with its shadow slot and keeps the rows; returns
            False when the shadow is gone (the request is discarded), raises when it fails.
        capacity: Requests that may wait (:data:`QUEUE_REQUESTS`).
        rows: Rows that may wait (:data:`QUEUE_ROWS`).
        score_many: Scores several typed requests of one signature in one model call and
            keeps each one's rows; one bool per request as ``score``; raises when the call
            fails (they are then scored one by one). None: every request is scored alone.
        linger: Seconds to let requests gather before a batch (:data:`LINGER`).
        batch: Requests per batch at most (:data:`BATCH_REQUESTS`).
        batch_rows: Rows per batch at most (:data:`BATCH_ROWS`).
        timed_every: Seconds between requests scored alone to be timed (:data:`TIMED_EVERY`).
        live: The live requests being scored (an :class:`InFlight`): the worker starts no
            model call while there is one. None: it never waits.
    """

    def __init__(
        self,
        score: Callable[[Mirrored], bool],
        capacity: int = QUEUE_REQUESTS,
        rows: int = QUEUE_ROWS,
        *,
        score_many: Callable[[Sequence[Mirrored]], Sequence[bool]] | None = None,
        linger: float = LINGER,
        batch: int = BATCH_REQUESTS,
        batch_rows: int = BATCH_ROWS,
        timed_every: float = TIMED_EVERY,
        live: InFlight | None = None,
    ) -> None:
        self._score, self._score_many = score, score_many
        self._live = live
        self._queue: queue.Queue[Mirrored | None] = queue.Queue()
        self._capacity, self._rows = capacity, rows
        self._held = self._queued_rows = 0
        self._linger, self._batch, self._batch_rows = linger, batch, batch_rows
        self._timed_every, self._timed_at = timed_every, -math.inf
        self._ready = threading.Event()  # a batch's worth is waiting: no need to linger
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self.mirrored = self.dropped = self.failed = self.batches = 0
        self.last_error: str | None = None

    def offer(self, request: Mirrored) -> None:
        """Queue ``request`` for the shadow, or drop and count it when the queue is full (never blocks)."""
        if self._stopped:
            return
        if self._worker is None:
            self._start()
        size = len(request.frame)
        with self._lock:
            room = self._held < self._capacity and self._queued_rows + size <= self._rows
            if not room:
                self.dropped += 1
                return
            self._held += 1
            self._queued_rows += size
            ready = self._held >= self._batch or self._queued_rows >= self._batch_rows
        self._queue.put_nowait(request)
        if ready:
            self._ready.set()

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="rollbackkit-shadow", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            taken, last = ([first] if first is not None else []), first is None
            if not last:
                self._ready.clear()
                with self._lock:
                    waiting = self._held < self._batch and self._queued_rows < self._batch_rows
                if waiting and not self._stopped:
                    self._ready.wait(self._linger)  # live requests go first; more mirrored ones gather
                last = self._take(taken)
            try:
                self._scored(taken)
            finally:
                for _ in range(len(taken) + last):
                    self._queue.task_done()
            if last:
                return

    def _take(self, taken: list[Mirrored]) -> bool:
        """Add waiting requests to ``taken`` up to a batch; True when the stop mark was taken."""
        rows = len(taken[0].frame)
        while len(taken) < self._batch and rows < self._batch_rows:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return False
            if request is None:
                return True
            taken.append(request)
            rows += len(request.frame)
        return False

    def _scored(self, taken: list[Mirrored]) -> None:
        """Score a batch: each signature's requests in one call (now and then the first alone, timed)."""
        try:
            if not taken:
                return
            self.yield_to_live()  # reading untyped requests and stacking them is work too
            with self._lock:
                self.batches += 1
            if self._score_many is None:
                for request in taken:
                    self._one(request)
                return
            groups: dict[Hashable, list[Mirrored]] = {}
            for request in map(typed, taken):
                groups.setdefault(signature(request) if not request.untyped else id(request), []).append(request)
            for group in groups.values():
                if len(group) == 1 or time.monotonic() >= self._timed_at + self._timed_every:
                    self._timed_at = time.monotonic()
                    self._one(group.pop(0))
                self._many(group)
        finally:
            with self._lock:
                self._held -= len(taken)
                self._queued_rows -= sum(len(r.frame) for r in taken)

    def _many(self, group: list[Mirrored]) -> None:
        """Score requests of one signature in one call; when it raises, one by one (failures counted each).

        When keeping one request's rows fails after the call, the requests kept before it stay
        kept (never scored twice), it counts as failed, and the rest are scored one by one.
        """
        if len(group) < 2 or self._score_many is None:
            for request in group:
                self._one(request)
            return
        self.yield_to_live()
        try:
            scored = sum(map(bool, self._score_many(group)))
        except KeepFailed as partial:
            with self._lock:
                self.mirrored += partial.kept
            self._failed(partial.cause)
            for request in group[partial.kept + 1 :]:
                self._one(request)
            return
        except Exception:  # one bad request must not cost the others: each is retried alone
            for request in group:
                self._one(request)
            return
        with self._lock:
            self.mirrored += scored

    def _one(self, request: Mirrored) -> None:
        """Score one request; count what became of it."""
        self.yield_to_live()
        try:
            scored = self._score(request)
        except Exception as exc:  # the shadow's failure: counted, never the client's
            self._failed(exc)
            return
        if scored:
            with self._lock:
                self.mirrored += 1

    def _failed(self, exc: BaseException) -> None:
        """Count one request the shadow could not score or keep, with the error in one line."""
        said = " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())[:500]
        with self._lock:
            self.failed += 1
            self.last_error = said

    def yield_to_live(self) -> None:
        """Wait until no live request is being scored, at most :data:`YIELD_MAX` seconds (not once
        stopping: what is queued is finished).

        The worker calls it before each model call; ``score_many`` may call it between requests.
        """
        live = self._live
        deadline = time.monotonic() + YIELD_MAX
        while live is not None and not self._stopped and not live.wait_idle(YIELD_POLL):
            if time.monotonic() >= deadline:
                return

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
        self._queue.put(None)
        self._ready.set()
        worker.join(wait)  # a daemon thread: past ``wait`` it dies with the process

    def status(self) -> MirrorStatus:
        """The counters now."""
        with self._lock:
            return MirrorStatus(self.mirrored, self.dropped, self.failed, self._held, self.last_error)
