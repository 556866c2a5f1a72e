"""A served environment's :class:`~rollbackkit.serving.status.TrafficEvent` s as notices (``notify:``).

kind ``deploy`` -> its action (deploy, canary, shadow); ``advance`` -> step; ``promote``;
``rollback`` -> its action (rollback, auto-rollback); ``gate-failed``; ``paused``;
``not-everywhere``; ``resumed``. A ``gate-breach`` is not sent (``gate-failed`` says it once).
A ``paused`` waits each target's ``pause_grace`` and its ``resumed`` cancels it; a ``resumed``
goes only to the targets its ``paused`` reached (:meth:`~rollbackkit.notify.delivery.Notifier.send`).

A notice goes to systems outside: an automatic event (``auto-rollback``, ``gate-failed``) says
its gates in their public words (the watchdog's ``gates``: names, values, bounds) and never
forwards its ``reason``, whose full words name a slice gate's feature value (they stay in the
journal, the tag and ``/status``). A person's reason is what they typed, and is sent.
"""

from __future__ import annotations

from collections.abc import Callable

from rollbackkit.notify.delivery import Notifier
from rollbackkit.notify.message import Notice
from rollbackkit.serving.status import TrafficEvent

_BY_ACTION = ("deploy", "rollback")  # kinds whose notify event is their action (canary, auto-rollback...)
_BY_KIND = {"advance": "step", "promote": "promote", "gate-failed": "gate-failed", "paused": "paused"}
_BY_KIND |= {"not-everywhere": "not-everywhere", "resumed": "resumed"}
_AUTOMATIC = ("auto-rollback", "gate-failed")  # events whose reason holds the full gate words: never sent


def event_name(event: TrafficEvent) -> str | None:
    """The notify event of ``event`` (None: not sent, e.g. a ``gate-breach``)."""
    if event.kind in _BY_ACTION:
        return event.action or event.kind
    return _BY_KIND.get(event.kind)


def _summary(name: str, event: TrafficEvent) -> str:
    where = f"{event.name} in {event.env}"
    said = {
        "deploy": f"{where}: {event.version} took all traffic",
        "canary": f"{where}: {event.version} went out as a {event.canary_percent or 0}% canary",
        "shadow": f"{where}: {event.version} went out as a shadow",
        "step": f"{where}: {event.version}'s canary moved to {event.canary_percent or 0}%",
        "promote": f"{where}: {event.version} promoted to live",
        "rollback": f"{where}: rolled back to {event.version}",
        "auto-rollback": f"{where}: AUTOMATIC ROLLBACK to {event.version} (gates failed: {event.gates or '?'})",
        "gate-failed": f"{where}: {event.version} failed its gates ({event.gates or '?'})",
        "paused": f"{where}: {event.version}'s rollout paused ({event.reason})",
        "not-everywhere": f"{where}: {event.action} to {event.version} is not served by every replica",
        "resumed": f"{where}: {event.version}'s rollout resumed",
    }[name]
    if event.previous and name in ("deploy", "canary", "promote", "rollback", "auto-rollback"):
        said += f" (was {event.previous})"
    return said


def notice_of(event: TrafficEvent) -> Notice | None:
    """``event`` as a notice (None: not a notify event)."""
    name = event_name(event)
    if name is None:
        return None
    reason = None if name in _AUTOMATIC else event.reason
    details = {
        "tag": event.tag, "action": event.action, "previous": event.previous, "reason": reason,
        "gates": event.gates, "shift_ms": event.shift_ms, "canary_percent": event.canary_percent,
    }  # fmt: skip
    return Notice(name, _summary(name, event), event.name, event.env, event.version, details)


def listener(notifier: Notifier) -> Callable[[TrafficEvent], None]:
    """An ``env.listeners`` entry that queues each event's notice (microseconds: nothing is sent here)."""

    def on_event(event: TrafficEvent) -> None:
        notice = notice_of(event)
        if notice is not None:
            notifier.send(notice)

    return on_event
