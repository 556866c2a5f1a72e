"""What a running server just did to its traffic (:class:`TrafficEvent`), and the public words for a change."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHANGES", "TrafficEvent"]

CHANGES = ("deploy", "canary", "shadow", "step", "promote", "rollback", "auto-rollback")
"""The public words for a traffic change (:attr:`TrafficEvent.change`): metrics' ``action`` and notify events."""
_CHANGE_OF_KIND = {"advance": "step", "promote": "promote"}


@dataclass(frozen=True)
class TrafficEvent:
    """What a running server just did to its traffic, as it happens (``serve``'s terminal lines).

    Attributes:
        kind: ``deploy``, ``promote``, ``rollback`` (a shift), ``gate-breach`` (a failed
            gate that moved no traffic; ``reason`` says why), ``not-everywhere`` (a shift
            some replicas of a shared store have not made: ``reason`` names them and why),
            ``gate-failed`` (the watchdog's decision became rollback; once, again only after a
            pass, and only when traffic stays: an automatic rollback carries its gates), ``paused``
            (a rollout paused; once per pause, ``reason`` says why) or ``resumed`` (a told pause ended).
        name: Bundle name.
        env: Environment.
        version: The version that took the traffic (for a breach: the one that failed).
        previous: The version that lost it (the live one before, or a cancelled canary).
        tag: The assignment tag (for a breach: the deployment that failed).
        action: The assignment's action (``canary``, ``auto-rollback``...).
        reason: Why.
        shift_ms: How long the shift took.
        canary_percent: A canary's share of traffic.
        gates: The failed gates' summary (automatic rollbacks and breaches).
    """

    kind: str
    name: str
    env: str
    version: str
    previous: str | None = None
    tag: str = ""
    action: str = ""
    reason: str = ""
    shift_ms: float | None = None
    canary_percent: int | None = None
    gates: str = ""
    failed_gates: tuple[str, ...] = ()  # the failed rollback gates' names, sorted (auto-rollback, gate-failed, breach)

    @property
    def change(self) -> str | None:
        """The public word for the traffic this event moved (one of :data:`CHANGES`); None: it moved none."""
        if self.kind in ("deploy", "rollback"):
            return self.action or self.kind
        return _CHANGE_OF_KIND.get(self.kind)
