"""The typed result of a label ingest (:func:`rollbackkit.ops.labels.ingest_labels`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rollbackkit.serving.status import known


@dataclass(frozen=True)
class LabelIngest:
    """What a label ingest stored, as the log (or the server's ``POST /labels``) answered.

    Attributes:
        name: Bundle name.
        env: Environment.
        on: How labels found their rows: ``request_id`` (and ``row``) or ``key``.
        received: Lines given (file rows or body items).
        stored: Labels written, one per logged row (a key labels every row logged under it).
        replaced: Of those, rows that had a label already: the new one wins, the older is kept
            as history.
        unknown: Lines whose id matches no logged row of the bundle in the environment (not
            stored); ``unknown_sample`` names up to 10 (``request_id:row``, or the key).
        duplicates: Lines a later line with the same id overrode (the last line wins).
        missing: Lines without a label (empty, null or NaN): skipped.
        rows_labelled: Logged rows of the bundle in the environment with a label now.
        via: The server URL that stored them, or ``log`` (the log file, no server running).
    """

    name: str
    env: str
    on: Literal["request_id", "key"]
    received: int
    stored: int
    replaced: int
    unknown: int
    unknown_sample: list[str] = field(default_factory=list)
    duplicates: int = 0
    missing: int = 0
    rows_labelled: int = 0
    via: str = "log"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelIngest:
        """From ``PredictionLog.add_labels()`` or the ``POST /labels`` answer (unknown keys dropped)."""
        return cls(**known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``labels ingest --json`` prints (and ``POST /labels`` answers, plus ``via``)."""
        return {
            "name": self.name,
            "env": self.env,
            "on": self.on,
            "received": self.received,
            "stored": self.stored,
            "replaced": self.replaced,
            "unknown": self.unknown,
            "unknown_sample": list(self.unknown_sample),
            "duplicates": self.duplicates,
            "missing": self.missing,
            "rows_labelled": self.rows_labelled,
            "via": self.via,
        }
