"""A request mirrored to the shadow, what the mirror counts, and which mirrored requests share a batch.

Which requests are mirrored is a pure function of the request id (:func:`sampled`), so a
share of requests is mirrored whatever the order they arrive in. Requests of one
:func:`signature` (slot, column names, dtypes) stack into one frame and one model call.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from rollbackkit.serving.routing_state import Slot


def sampled(request_id: str, percent: int) -> bool:
    """Whether the request ``request_id`` is mirrored to a shadow of ``percent``% (crc32 of the id)."""
    return zlib.crc32(request_id.encode()) % 100 < percent


class KeepFailed(Exception):
    """Keeping a batch's rows failed at request ``kept`` (those before it were kept) with ``cause``."""

    def __init__(self, kept: int, cause: Exception) -> None:
        super().__init__(f"{kept} requests kept, then {type(cause).__name__}: {cause}")
        self.kept = kept
        self.cause = cause


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
    """The mirror's counters since the server started (``mirror`` in ``GET /status``, and in its ``shadow``).

    ``queued``: requests waiting or being scored.
    """

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


def signature(request: Mirrored) -> Hashable:
    """Requests with one signature (slot, column names, dtypes) stack into one frame with their values.

    Integers with and without missing values, booleans likewise, and text of either
    string dtype count as one dtype: stacked, they take the nullable one (``Int64``,
    ``boolean``, ``string``), as requests read from JSON rows with and without nulls do.
    """
    frame = request.frame
    return (id(request.slot), tuple(frame.columns.tolist()), tuple(map(_family, frame.dtypes.tolist())))


def _family(dtype: Any) -> Hashable:
    if isinstance(dtype, pd.StringDtype):
        return "string"
    kind = getattr(dtype, "kind", "")
    return kind if kind in ("i", "u", "b") and not isinstance(dtype, pd.CategoricalDtype) else dtype


def typed(request: Mirrored) -> Mirrored:
    """An untyped request read with its shadow's dtypes (as scoring it alone would), so it can join a batch."""
    if not request.untyped:
        return request
    from rollbackkit.bundle.conform import conform

    try:
        return replace(request, frame=conform(request.frame, request.slot.bundle.schema), untyped=False)
    except Exception:  # scored alone, where the same error is counted as the request's
        return request
