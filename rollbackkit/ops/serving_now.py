"""What serves an environment now: the one home of that fact for every panel.

Over the states :func:`~rollbackkit.registry.serving_state.replay` gives, :func:`shares` says
which version takes what part of traffic (a canary takes its percent from the live version; a
shadow takes none: its percent is the share of live requests it scores, all of them when its
tag names none, as the serving environment starts it), and :func:`now_of` what serves after a
history and since when it has been live (across canary steps, cancelled canaries and
redeploys of the same version). The timeline's spans and "now", the console header, the
version list and the gates panel all read these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from rollbackkit.registry.assignments import Deployments, replay

if TYPE_CHECKING:
    from rollbackkit.registry.repository import Repository
    from rollbackkit.registry.serving_state import Assignment, Serving

__all__ = ["Role", "ServingNow", "Share", "now_of", "serving_now", "shares"]

Role = Literal["live", "canary", "shadow"]


@dataclass(frozen=True)
class Share:
    """One version's part in a serving state: ``percent`` of traffic (live, canary), or for a
    shadow the percent of live requests it scores (it answers nobody); ``tag``: its assignment."""

    version: str
    role: Role
    percent: float
    tag: str


def shares(state: Serving) -> tuple[Share, ...]:
    """Everything serving (or shadowing) in ``state``, live first."""
    out: list[Share] = []
    canary = float(state.canary_percent or 0) if state.canary is not None else 0.0
    if state.live is not None:
        out.append(Share(state.live.version, "live", 100.0 - canary, state.live.tag))
    if state.canary is not None:
        out.append(Share(state.canary.version, "canary", canary, state.canary.tag))
    if state.shadow is not None:  # no percent on the tag: the environment mirrors every request
        out.append(Share(state.shadow.version, "shadow", float(state.shadow_percent or 100), state.shadow.tag))
    return tuple(out)


@dataclass(frozen=True)
class ServingNow:
    """What serves now: the live version and its share, and a canary or shadow beside it.

    ``since``: when the live version became live (not its last share change); ``name`` and
    ``env``: where (blank when built by hand).
    """

    version: str
    share: float
    tag: str
    canary: str | None = None
    canary_percent: float | None = None
    shadow: str | None = None
    shadow_percent: float | None = None
    since: datetime | None = None
    name: str = ""
    env: str = ""

    def parts(self) -> tuple[Share, ...]:
        """The live version, the canary and the shadow as :class:`Share` (tags: the live one's)."""
        out = [Share(self.version, "live", self.share, self.tag)]
        if self.canary:
            out.append(Share(self.canary, "canary", self.canary_percent or 0.0, ""))
        if self.shadow:
            out.append(Share(self.shadow, "shadow", self.shadow_percent or 100.0, ""))
        return tuple(out)

    def words(self) -> str:
        """``v1.0.0 (80%) + canary v1.1.0 (20%)``."""
        said = f"{self.version} ({self.share:g}%)"
        if self.canary:
            said += f" + canary {self.canary} ({self.canary_percent:g}%)"
        if self.shadow:
            said += f" + shadow {self.shadow} (scores {self.shadow_percent:g}% of requests)"
        return said


def now_of(history: Sequence[Assignment], states: Sequence[Serving], at: int | None = None) -> ServingNow | None:
    """What serves after ``history[:at]`` (default: all of it); ``states``: ``replay(history)``."""
    index = len(history) if at is None else at
    state = states[index]
    if state.live is None:
        return None
    parts = {p.role: p for p in shares(state)}
    first = index
    while first > 1 and states[first - 1].version == state.version:
        first -= 1
    since = datetime.fromtimestamp(history[first - 1].timestamp, UTC)
    canary, shadow = parts.get("canary"), parts.get("shadow")
    return ServingNow(
        state.live.version, parts["live"].percent, state.live.tag,
        canary.version if canary else None, canary.percent if canary else None,
        shadow.version if shadow else None, shadow.percent if shadow else None,
        since, state.name, state.env,
    )  # fmt: skip


def serving_now(registry: Repository, names: Sequence[str], env: str | None = None) -> list[ServingNow]:
    """What serves each of ``names`` now in every environment it was assigned to (or only ``env``),
    by name then environment; an environment where nothing serves is left out."""
    deployments = Deployments(registry)
    out: list[ServingNow] = []
    for name in names:
        history = deployments.history(name, env)
        for each in sorted({a.env for a in history}):
            mine = [a for a in history if a.env == each]
            now = now_of(mine, replay(name, each, mine))
            if now is not None:
                out.append(now)
    return out
