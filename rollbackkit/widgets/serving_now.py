"""What serves now, and its badge: the one mark every panel that shows versions uses."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rollbackkit.registry.serving_state import Serving
    from rollbackkit.registry.store import Registry

Role = Literal["live", "canary", "shadow"]
ROLE_COLOURS = {"live": "#1a7f37", "canary": "#9a6700", "shadow": "#57606a"}


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
    """

    name: str
    version: str
    env: str
    role: Role
    share: int | None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def label(self) -> str:
        """``serving prod``, ``canary 10% prod``, ``shadow 5% prod``, ``serving 90% prod``."""
        word = "serving" if self.role == "live" else self.role
        share = f" {self.share}%" if self.share is not None and self.share != 100 else ""
        return f"{word}{share} {self.env}"


def of_state(state: Serving) -> list[NowServing]:
    """The versions a serving state sends traffic to (live first)."""
    out = []
    canary = state.canary_percent
    if state.version is not None:
        out.append(NowServing(state.name, state.version, state.env, "live", 100 - (canary or 0)))
    if state.canary is not None:
        out.append(NowServing(state.name, state.canary.version, state.env, "canary", canary))
    if state.shadow is not None:
        out.append(NowServing(state.name, state.shadow.version, state.env, "shadow", state.shadow_percent))
    return out


def now_serving(registry: Registry, names: list[str], env: str | None = None) -> list[NowServing]:
    """What serves each of ``names`` in every environment it was assigned to (or ``env``) now."""
    from rollbackkit.registry.assignments import Deployments, replay

    deployments = Deployments(registry)
    out: list[NowServing] = []
    for name in names:
        history = deployments.history(name, env)
        for each in sorted({a.env for a in history}):
            out += of_state(replay(name, each, [a for a in history if a.env == each])[-1])
    return out


def now_badge(now: NowServing) -> str:
    """A coloured "serving prod" / "canary 10% prod" label (class ``rollbackkit-serving-now``)."""
    colour = ROLE_COLOURS[now.role]
    return (
        f"<span class='rollbackkit-serving-now rollbackkit-now-{now.role}' title='{html.escape(now.ref)} now' "
        f"style='color:white;background:{colour};padding:1px 6px;border-radius:8px;font-size:90%;"
        f"white-space:nowrap'>{html.escape(now.label())}</span>"
    )
