"""What a notification says: a :class:`Notice`, and its body for a ``json`` or a ``slack`` target."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = "rollbackkit.notification/v1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Notice:
    """One thing that happened, as sent to every target that wants ``event``.

    ``id`` is the idempotency key (``X-Rollbackkit-Delivery``): the same on every retry, and
    the same for each target. ``summary`` is one line; ``details`` the event's own fields
    (tag, previous version, failed gates, reason, notebook...), never a secret or a feature value.
    """

    event: str
    summary: str
    name: str = ""
    env: str = ""
    version: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """The notice as JSON-ready fields (the outbox keeps it so)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        """The notice :meth:`to_dict` wrote."""
        return cls(**{k: data[k] for k in ("event", "summary", "name", "env", "version", "details", "id", "time")})


def json_body(notice: Notice) -> bytes:
    """The ``format: json`` body: ``schema``, ``id``, ``event``, ``time``, ``name``, ``env``, ``version``,
    ``summary`` and ``details``."""
    return json.dumps({"schema": SCHEMA, **notice.to_dict()}, sort_keys=True, default=str).encode()


_ICONS = {"auto-rollback": ":rotating_light:", "gate-failed": ":x:", "rollback": ":leftwards_arrow_with_hook:"}


def slack_body(notice: Notice) -> bytes:
    """The ``format: slack`` body: an incoming-webhook message (``text`` is the one-line summary, ``blocks`` more)."""
    icon = _ICONS.get(notice.event, ":large_blue_circle:")
    where = " ".join(x for x in (notice.name, notice.version, f"in {notice.env}" if notice.env else "") if x)
    facts = [f"*{k}*: {v}" for k, v in sorted(notice.details.items()) if v not in (None, "", [], {})]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{notice.event}* {where}\n{notice.summary}"}}
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)[:2900]}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"rollbackkit · {notice.time} · {notice.id}"}]}
    )
    return json.dumps({"text": f"[rollbackkit] {notice.summary}", "blocks": blocks}, default=str).encode()


def body(fmt: str, notice: Notice) -> bytes:
    """The body of ``notice`` for a target of format ``fmt``."""
    return slack_body(notice) if fmt == "slack" else json_body(notice)
