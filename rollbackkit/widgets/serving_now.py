"""The "serving now" badge every panel that shows versions uses.

What serves is worked out once, in :mod:`rollbackkit.ops.serving_now` (the timeline reads the
same); this module only turns it into :class:`NowServing` marks and their badge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rollbackkit.cards import badge
from rollbackkit.ops.serving_now import Role, ServingNow

if TYPE_CHECKING:
    from rollbackkit.registry.store import Registry

ROLE_TONES = {"live": "good", "canary": "doubt", "shadow": "quiet"}
"""Each role's tone (the cards' :data:`~rollbackkit.cards.TONES`), drawn translucent under the theme's text colour."""


@dataclass(frozen=True)
class NowServing:
    """A version taking traffic in one environment now.

    Attributes:
        name: Bundle name.
        version: The version (``v1.0.0``).
        env: Environment.
        role: ``live`` (what serves), ``canary`` or ``shadow`` (mirrored, answers nobody).
        share: Percent of requests it answers (``live``: what the canary leaves; a shadow's
            percent of live requests it scores).
        since: When the live version became live (None for a canary or a shadow).
    """

    name: str
    version: str
    env: str
    role: Role
    share: float | None
    since: datetime | None = None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def label(self) -> str:
        """``serving prod``, ``canary 10% prod``, ``shadow 5% prod``, ``serving 90% prod``."""
        word = "serving" if self.role == "live" else self.role
        share = f" {self.share:g}%" if self.share is not None and self.share != 100 else ""
        return f"{word}{share} {self.env}"


def marks(now: ServingNow) -> list[NowServing]:
    """One mark per version in ``now`` (live first)."""
    return [
        NowServing(now.name, p.version, now.env, p.role, p.percent, now.since if p.role == "live" else None)
        for p in now.parts()
    ]


def now_serving(registry: Registry, names: list[str], env: str | None = None) -> list[NowServing]:
    """What serves each of ``names`` in every environment it was assigned to (or ``env``) now."""
    from rollbackkit.ops.serving_now import serving_now

    return [mark for now in serving_now(registry, names, env) for mark in marks(now)]


def now_badge(now: NowServing) -> str:
    """A tinted "serving prod" / "canary 10% prod" label (class ``rollbackkit-serving-now``)."""
    since = f" since {now.since:%Y-%m-%d %H:%M} UTC" if now.since else ""
    return tinted(now.role, now.label(), f"{now.ref} now{since}")


def tinted(role: Role, text: str, title: str = "") -> str:
    """``text`` in a role's badge, readable on light and dark themes: the theme's own text colour
    on a translucent tint (never white on a fixed colour)."""
    return badge(ROLE_TONES[role], f"rollbackkit-serving-now rollbackkit-now-{role}", text=text, title=title)
