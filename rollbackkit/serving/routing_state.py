"""What the router routes by: the two slots, the immutable routing state and one scored request.

A :class:`RoutingState` is a snapshot of both slots and the split; the router
(:mod:`rollbackkit.serving.router`) replaces it whole, so a request that read it once sees one
consistent state.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from rollbackkit.bundle.model import LoadedBundle

SLOTS = ("blue", "green")


@dataclass(frozen=True)
class Slot:
    """A loaded, warmed bundle in one slot."""

    name: str
    bundle: LoadedBundle
    deployment: str
    loaded_at: str
    warmup_ms: float

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (version, bundle id, slot, deployment; ``runtime`` differences when there are)."""
        out = {
            "version": self.bundle.version,
            "bundle_id": self.bundle.bundle_id,
            "slot": self.name,
            "deployment": self.deployment,
        }
        problems = [f.detail for f in self.bundle.runtime.problems]
        return {**out, "runtime": problems} if problems else out


@dataclass(frozen=True)
class RoutingState:
    """An immutable snapshot of both slots and the traffic split."""

    slots: tuple[tuple[str, Slot | None], ...]
    live: str | None
    canary: str | None
    percent: int
    since: str
    generation: int
    shadow: str | None = None
    shadow_percent: int = 0

    def slot(self, name: str | None) -> Slot | None:
        """The slot called ``name`` (None when empty or unnamed)."""
        return dict(self.slots).get(name) if name else None

    @property
    def standby(self) -> Slot | None:
        """The loaded slot that takes no traffic and mirrors none, if any."""
        for name, slot in self.slots:
            if slot is not None and name not in (self.live, self.canary, self.shadow):
                return slot
        return None

    def roles(self) -> dict[str, Slot | None]:
        """Each role's slot (None: empty): ``live``, ``canary``, ``shadow`` and ``standby``, in that order."""
        return {
            "live": self.slot(self.live),
            "canary": self.slot(self.canary),
            "shadow": self.slot(self.shadow),
            "standby": self.standby,
        }


@dataclass(frozen=True)
class Routed:
    """One scored request: outputs, which version produced them, and the inputs as scored."""

    outputs: pd.DataFrame
    slot: Slot
    latency_ms: float
    inputs: pd.DataFrame

    @property
    def version(self) -> str:
        """The version that scored the request."""
        return self.slot.bundle.version


def now() -> str:
    """The time now, as a routing state records it (UTC, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def in_canary(key: str, percent: int) -> bool:
    """Sticky canary membership: the same key always lands on the same side."""
    return zlib.crc32(key.encode()) % 100 < percent
