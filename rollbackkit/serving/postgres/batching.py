"""The log writer's batches and its rules: what a batch holds, what a buffered request weighs,
and which store errors are outages (retry the batch whole) rather than refusals (split it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pandas as pd
import psycopg

from rollbackkit.serving.postgres import rows
from rollbackkit.serving.predlog.batches import Pending

REQUEST_OVERHEAD = 6_000
"""Bytes a buffered request holds besides its frames' values (two DataFrames and their
managers, the meta dict: ~6 kB measured for a one-row request)."""

BACKOFF = (0.1, 2.0)
"""Seconds between retries while the store is unreachable: first, and the most (doubling)."""


@dataclass
class Batch:
    """Requests taken from the buffer, committed together under one id (kept across retries)."""

    items: list[Pending]
    size: int
    nbytes: int = 0
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parts: list[rows.Part] | None = None


RETRY_STATES = ("08", "57P", "53000", "53100", "53300", "40001", "40P01", "55P03")
"""SQLSTATEs (prefixes) after which a batch is retried whole, same id: connection exceptions, the
server shutting down or starting, the server out of resources (53000, disk full 53100, too many
connections 53300), a serialization failure or deadlock, a lock wait that timed out. Any other
state is about the batch's content and is split, including out of memory (53200) and a
configuration limit (53400): a batch too big for the server would be retried forever."""


def outage(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the store is (momentarily) unable, not that it refuses the batch: a
    connection-level error without SQLSTATE (broken, never made) or one of :data:`RETRY_STATES`."""
    state = exc.sqlstate or ""
    if not state:
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state.startswith(RETRY_STATES)


def held_bytes(inputs: pd.DataFrame, outputs: pd.DataFrame | None) -> int:
    """About the memory one buffered request holds, fast (a few us: the request path pays it):
    its frames' values (an object cell counted 56 bytes) plus :data:`REQUEST_OVERHEAD`."""
    total = REQUEST_OVERHEAD
    for frame in (inputs, outputs):
        if frame is None:
            continue
        try:
            for block in frame._mgr.blocks:
                values = block.values
                if isinstance(values, pd.Categorical):  # its nbytes reads tz-aware categories' .values: a warning
                    total += int(values.codes.nbytes) + int(values.categories.array.nbytes)
                    continue
                total += int(values.nbytes) + (48 * values.size if values.dtype == object else 0)
        except AttributeError:  # a pandas without blocks
            total += int(frame.memory_usage(index=False, deep=True).sum())
    return total
