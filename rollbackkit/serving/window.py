"""The in-memory gate window of one slot load, kept when a server runs without a prediction log.

With a log, gates read the log instead and no window is kept.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS

COMPACT_EVERY = 32


class Kept(NamedTuple):
    """One scored request as a window keeps it (``outputs`` None when the model failed)."""

    inputs: pd.DataFrame
    outputs: pd.DataFrame | None
    latency_ms: float
    error: str | None
    request_id: str
    time: datetime
    key: str | None


@dataclass
class Window:
    """Recent scored requests of one slot load, bounded by rows, kept when there is no log.

    One frame per request would hold about a hundred objects per request for the garbage
    collector, whose full collections then pause every request. So requests wait in
    ``tail`` as they came; every :data:`COMPACT_EVERY` requests they are stacked into one
    frame in ``fresh``, and every ``COMPACT_EVERY`` of those into one in ``chunks``, which
    keeps each stacking small (README "Performance" and ``bench/results/`` hold the figures).

    The bound is rows, not requests: requests are also stacked once those waiting hold
    :data:`WINDOW_ROWS` rows, and after each stacking the oldest rows beyond
    :data:`WINDOW_ROWS` are dropped (whole frames, or the older part of one), so the window
    never holds more than :data:`WINDOW_ROWS` rows plus those still waiting (fewer than
    :data:`WINDOW_ROWS` plus one request's).
    """

    chunks: deque[pd.DataFrame] = field(default_factory=deque)
    fresh: list[pd.DataFrame] = field(default_factory=list)
    tail: list[Kept] = field(default_factory=list)
    rows: int = 0
    tail_rows: int = 0

    def add(
        self,
        inputs: pd.DataFrame,
        outputs: pd.DataFrame | None,
        latency_ms: float,
        error: str | None,
        *,
        request_id: str = "",
        when: datetime | None = None,
        key: str | None = None,
    ) -> None:
        """Remember one request (its outputs are None when it failed; ``when`` default: now)."""
        self.keep(Kept(inputs, outputs, latency_ms, error, request_id, when or datetime.now(UTC), key))

    def keep(self, kept: Kept) -> None:
        """Remember one request as :class:`Kept`."""
        self.tail.append(kept)
        self.rows += len(kept.inputs)
        self.tail_rows += len(kept.inputs)
        if len(self.tail) >= COMPACT_EVERY or self.tail_rows >= WINDOW_ROWS:
            self.fresh.append(self._stacked_tail())
            if len(self.fresh) >= COMPACT_EVERY:
                self.chunks.append(pd.concat(self.fresh, ignore_index=True))
                self.fresh = []
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest stacked rows beyond :data:`WINDOW_ROWS` (the waiting ones stay)."""
        while self.rows > WINDOW_ROWS and (self.chunks or self.fresh):
            excess = self.rows - WINDOW_ROWS
            oldest = self.chunks[0] if self.chunks else self.fresh[0]
            if len(oldest) <= excess:
                if self.chunks:
                    self.chunks.popleft()
                else:
                    self.fresh.pop(0)
                self.rows -= len(oldest)
                continue
            kept = oldest.iloc[excess:].reset_index(drop=True).copy()  # a copy frees the older rows
            if self.chunks:
                self.chunks[0] = kept
            else:
                self.fresh[0] = kept
            self.rows -= excess

    def parts(self) -> list[pd.DataFrame]:
        """The window as frames, oldest first (cheap: the waiting requests are stacked)."""
        if self.tail:
            self.fresh.append(self._stacked_tail())
        return [*self.chunks, *self.fresh]

    def frame(self) -> pd.DataFrame:
        """The window: inputs, outputs, ``latency_ms``, ``error``, ``time``, ``request_id``, ``row``, ``key``."""
        return joined(self.parts())

    def _stacked_tail(self) -> pd.DataFrame:
        """The waiting requests as one frame (and none waiting)."""
        tail, self.tail = self.tail, []
        self.tail_rows = 0
        sizes = [len(t.inputs) for t in tail]
        inputs = pd.concat([t.inputs for t in tail], ignore_index=True)
        outputs = pd.concat(
            [t.outputs if t.outputs is not None else pd.DataFrame(index=range(len(t.inputs))) for t in tail],
            ignore_index=True,
        )
        return pd.concat([inputs, outputs], axis=1).assign(
            latency_ms=np.repeat(np.array([t.latency_ms for t in tail], dtype="float64"), sizes),
            error=np.repeat(np.array([t.error for t in tail], dtype=object), sizes),
            time=pd.DatetimeIndex([t.time for t in tail]).tz_convert("UTC").repeat(sizes),
            request_id=np.repeat(np.array([t.request_id for t in tail], dtype=object), sizes),
            row=np.concatenate([np.arange(n, dtype="int64") for n in sizes]),
            key=np.repeat(np.array([t.key for t in tail], dtype=object), sizes),
        )


def joined(parts: list[pd.DataFrame], since: datetime | None = None) -> pd.DataFrame:
    """Window parts as one frame of at most :data:`WINDOW_ROWS` rows (the newest; at or after ``since``)."""
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    if since is not None:
        frame = frame[frame["time"] >= pd.Timestamp(since)]
    return frame.tail(WINDOW_ROWS).reset_index(drop=True)


class Windows:
    """What a server without a log keeps in memory per slot load, behind one lock.

    The gate window of each slot's current load (a reload drops the previous load's), a
    sample of recently scored inputs for preflight, and the count of requests each load
    refused as the client's error.

    Args:
        recent_rows: The most recently scored input rows :meth:`recent` returns.
    """

    def __init__(self, recent_rows: int) -> None:
        self.recent_rows = recent_rows
        self.lock = threading.Lock()
        self._windows: dict[tuple[str, str], Window] = {}
        self._recent: deque[pd.DataFrame] = deque(maxlen=64)
        self._client_errors: dict[tuple[str, str], int] = {}

    def refused(self, slot: str, loaded_at: str) -> None:
        """Count one request the slot's current load refused (the previous load's count goes)."""
        load = (slot, loaded_at)
        with self.lock:
            for old in [k for k in self._client_errors if k[0] == slot and k != load]:
                del self._client_errors[old]
            self._client_errors[load] = self._client_errors.get(load, 0) + 1

    def client_errors(self, slot: str, loaded_at: str) -> int:
        """Requests the slot's load refused as the client's error."""
        with self.lock:
            return self._client_errors.get((slot, loaded_at), 0)

    def keep(
        self,
        slot: str,
        loaded_at: str,
        kept: Kept,
        *,
        windowed: bool,
        recent: bool = True,
    ) -> None:
        """Keep a scored request's inputs for preflight (when ``recent``), and window it when ``windowed``.

        Only scored requests (``outputs`` given) feed :meth:`recent`: a refused request must
        not make the next deploy's preflight fail on inputs nobody scored.
        """
        with self.lock:
            if recent and kept.outputs is not None:
                self._recent.append(kept.inputs)
            if windowed:
                self._window_of(slot, loaded_at).keep(kept)

    def frame(self, slot: str, loaded_at: str, since: datetime | None = None) -> pd.DataFrame:
        """The slot load's gate window as one frame, rows at or after ``since`` (joined outside the lock)."""
        with self.lock:
            window = self._windows.get((slot, loaded_at))
            parts = window.parts() if window is not None else []
        return joined(parts, since)  # outside the lock: requests keep landing meanwhile

    def recent(self) -> pd.DataFrame | None:
        """The inputs scored lately, in the dtypes scored; None before the first."""
        with self.lock:
            frames = list(self._recent)
        if not frames:
            return None
        return pd.concat(frames, ignore_index=True).tail(self.recent_rows)

    def _window_of(self, slot: str, loaded_at: str) -> Window:
        key = (slot, loaded_at)
        if key not in self._windows:
            for old in [k for k in self._windows if k[0] == slot]:
                del self._windows[old]
            self._windows[key] = Window()
        return self._windows[key]
