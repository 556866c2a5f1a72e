"""What a notification says: a :class:`Notice`, and its body for a ``json`` or a ``slack`` target."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = "rollbackkit.notification/v1"


_SEQUENCE = itertools.count(1)
SLACK_SECTION = 3000  # Slack refuses a section text longer than this (HTTP 400, final)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Notice:
    """One thing that happened, as sent to every target that wants ``event``.

    ``id`` is the idempotency key (``X-Rollbackkit-Delivery``): the same on every retry, and
    the same for each target. ``time`` (UTC, microseconds) and ``sequence`` (this process's
    count) say in which order notices happened; each target gets them in that order.
    ``summary`` is one line; ``details`` the event's own fields (tag, previous version, failed
    gates, reason, notebook...), never a secret or a feature value.
    """

    event: str
    summary: str
    name: str = ""
    env: str = ""
    version: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=_now)
    sequence: int = field(default_factory=lambda: next(_SEQUENCE))

    @property
    def order(self) -> str:
        """A key that sorts notices in the order they happened (time, then sequence)."""
        return f"{''.join(c for c in self.time[:26] if c.isdigit())}-{self.sequence:09d}"

    def to_dict(self) -> dict[str, Any]:
        """The notice as JSON-ready fields (the outbox keeps it so)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        """The notice :meth:`to_dict` wrote."""
        said = {k: data[k] for k in ("event", "summary", "name", "env", "version", "details", "id", "time")}
        return cls(**said, sequence=int(data.get("sequence", 0)))


def json_body(notice: Notice) -> bytes:
    """The ``format: json`` body: ``schema``, ``id``, ``event``, ``time``, ``name``, ``env``, ``version``,
    ``summary`` and ``details``."""
    return json.dumps({"schema": SCHEMA, **notice.to_dict()}, sort_keys=True, default=str).encode()


_ICONS = {"auto-rollback": ":rotating_light:", "gate-failed": ":x:", "rollback": ":leftwards_arrow_with_hook:"}


def escape(text: str, limit: int = SLACK_SECTION) -> str:
    """``text`` safe in Slack mrkdwn (``&``, ``<``, ``>`` escaped: no ``<!channel>`` ping), cut to ``limit``."""
    said = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(said) <= limit:
        return said
    cut = said[: limit - 1]
    amp = cut.rfind("&")
    return (cut[:amp] if amp >= 0 and ";" not in cut[amp:] else cut) + "…"  # never half an entity


def slack_body(notice: Notice) -> bytes:
    """The ``format: slack`` body: an incoming-webhook message (``text`` is the one-line summary, ``blocks`` more);
    every text escaped and cut to Slack's limits, so a long or hostile reason never loses the message."""
    icon = _ICONS.get(notice.event, ":large_blue_circle:")
    where = " ".join(x for x in (notice.name, notice.version, f"in {notice.env}" if notice.env else "") if x)
    facts = [f"*{k}*: {v}" for k, v in sorted(notice.details.items()) if v not in (None, "", [], {})]
    head = escape(f"{icon} *{notice.event}* {where}\n{notice.summary}")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": escape("\n".join(facts))}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"rollbackkit · {notice.time} · {notice.id}"}]}
    )
    text = escape(f"[rollbackkit] {notice.summary}")
    return json.dumps({"text": text, "blocks": blocks}, default=str).encode()


def body(fmt: str, notice: Notice) -> bytes:
    """The body of ``notice`` for a target of format ``fmt``."""
    return slack_body(notice) if fmt == "slack" else json_body(notice)
