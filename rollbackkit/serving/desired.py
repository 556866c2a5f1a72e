"""What every replica of an environment must serve: :class:`Desired`, backend-free.

A :class:`Desired` is a router's state without its bundles: the version and assignment tag
of the live slot, of a canary (and its share), of a shadow (and its share) and of the warm
standby. One replica publishes it after an operation; the others load what they lack, warm,
then switch to it (:mod:`rollbackkit.serving.sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollbackkit.serving.routing_state import RoutingState, Slot

ROLES = ("live", "canary", "shadow", "standby")
"""The placements of a :class:`Desired`, in the order a router fills its two slots."""


@dataclass(frozen=True)
class Placement:
    """One version in one role: its assignment ``tag`` and, for a canary or shadow, its share."""

    version: str
    tag: str
    percent: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"version": self.version, "tag": self.tag, "percent": self.percent}

    @classmethod
    def from_json(cls, data: Any) -> Placement | None:
        """Read back :meth:`to_json` (None for a missing placement)."""
        if not isinstance(data, dict):
            return None
        percent = data.get("percent")
        return cls(str(data["version"]), str(data.get("tag") or ""), int(percent) if percent is not None else None)


@dataclass(frozen=True)
class Desired:
    """What every replica of an environment must serve (None: nothing in that role)."""

    live: Placement | None
    canary: Placement | None = None
    shadow: Placement | None = None
    standby: Placement | None = None

    def placements(self) -> list[tuple[str, Placement]]:
        """``(role, placement)`` of each role filled, live first."""
        return [(role, p) for role in ROLES if (p := getattr(self, role)) is not None]

    def versions(self) -> list[str]:
        """The versions it serves or keeps warm, live first."""
        return [p.version for _, p in self.placements()]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the ``routing.state`` column, the replicas' ``serving``)."""
        return {role: (p.to_json() if (p := getattr(self, role)) is not None else None) for role in ROLES}

    @classmethod
    def from_json(cls, data: Any) -> Desired:
        """Read back :meth:`to_json`."""
        data = data if isinstance(data, dict) else {}
        return cls(*(Placement.from_json(data.get(role)) for role in ROLES))

    def describe(self) -> str:
        """One line: ``v1.1.0 live, v1.2.0 canary 25%``."""
        said = [
            f"{p.version} {role}" + (f" {p.percent}%" if p.percent is not None and role != "live" else "")
            for role, p in self.placements()
            if role != "standby"
        ]
        return ", ".join(said) or "nothing"


def _placement(slot: Slot | None, percent: int | None = None) -> Placement | None:
    return Placement(slot.bundle.version, slot.deployment, percent) if slot is not None else None


def desired_of(state: RoutingState) -> Desired:
    """The :class:`Desired` a router's state is (what a replica that switched to it serves)."""
    return Desired(
        live=_placement(state.slot(state.live)),
        canary=_placement(state.slot(state.canary), state.percent),
        shadow=_placement(state.slot(state.shadow), state.shadow_percent),
        standby=_placement(state.standby),
    )
