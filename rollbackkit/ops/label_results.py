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
        max_rows_per_key: By key: the most logged rows one key labelled (0 by request id).
        chunks: Requests the labels went in (a file over the chunk size goes to a server in
            several; all or nothing holds per chunk, and every label was checked before the first).
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
    max_rows_per_key: int = 0
    chunks: int = 1

    @classmethod
    def summed(cls, parts: list[LabelIngest]) -> LabelIngest:
        """One result for the chunks of one ingest, in the order they were stored."""
        first, last = parts[0], parts[-1]
        total = {f: sum(getattr(p, f) for p in parts) for f in ("received", "stored", "replaced", "unknown")}
        sample = [s for p in parts for s in p.unknown_sample][:10]  # as the log names them: up to 10
        return cls(
            name=first.name,
            env=first.env,
            on=first.on,
            **total,
            unknown_sample=sample,
            duplicates=sum(p.duplicates for p in parts),
            missing=sum(p.missing for p in parts),
            rows_labelled=last.rows_labelled,
            via=first.via,
            max_rows_per_key=max(p.max_rows_per_key for p in parts),
            chunks=len(parts),
        )

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
            "max_rows_per_key": self.max_rows_per_key,
            "chunks": self.chunks,
        }
