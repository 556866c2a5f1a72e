"""The live requests being scored now, which the shadow and a slot's scoring yield to."""

from __future__ import annotations

import threading


class InFlight:
    """How many live requests are being scored now: ``with in_flight:`` around each.

    :meth:`wait_idle` blocks (no polling, the GIL released) until none is.
    """

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self.count = 0

    def __enter__(self) -> None:
        with self._idle:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self.count -= 1
            if not self.count:
                self._idle.notify_all()

    def busy(self) -> bool:
        """Whether a live request is being scored now."""
        return self.count > 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no live request is being scored; whether none is."""
        with self._idle:
            return self._idle.wait_for(lambda: not self.count, timeout)
