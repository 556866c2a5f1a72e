"""A server's notification health as ``GET /status`` reports it (``notifications``), typed.

Read by ``rollbackkit status``; built from the JSON the server's notifier writes
(:meth:`rollbackkit.notify.delivery.NotifyStatus.to_dict`), without loading the notifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TargetHealth:
    """One target: the server's deliveries, what waits in the outbox, and its last error."""

    name: str
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    queued: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class NotifyHealth:
    """Every target's :class:`TargetHealth`, plus the notices a broken config or outbox lost."""

    targets: tuple[TargetHealth, ...]
    errors: int = 0
    unsaved: int = 0
    config_errors: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NotifyHealth:
        """From ``/status``'s ``notifications``."""

        def count(said: dict[str, Any], key: str) -> int:
            value = said.get(key, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        def target(name: str, said: dict[str, Any]) -> TargetHealth:
            error = said.get("last_error")
            delivered, failed, retries, queued = (count(said, k) for k in ("delivered", "failed", "retries", "queued"))
            return TargetHealth(name, delivered, failed, retries, queued, error if isinstance(error, str) else None)

        listed = data.get("targets") or {}
        targets = tuple(target(str(n), t) for n, t in listed.items() if isinstance(t, dict))
        return cls(targets, count(data, "errors"), count(data, "unsaved"), count(data, "config_errors"))

    @property
    def delivered(self) -> int:
        """Notices the server delivered, over every target."""
        return sum(t.delivered for t in self.targets)

    @property
    def failed(self) -> int:
        """Notices given up on (the server's), plus those a broken config stopped."""
        return sum(t.failed for t in self.targets) + self.config_errors

    @property
    def queued(self) -> int:
        """Entries waiting in the outbox (any process's), plus those kept in memory."""
        return sum(t.queued for t in self.targets) + self.unsaved

    @property
    def troubled(self) -> TargetHealth | None:
        """The first target with a failure or a wait and an error to name, else None."""
        return next((t for t in self.targets if (t.failed or t.queued) and t.last_error), None)

    def words(self) -> str:
        """``12 delivered, 1 failed, 4 queued (oncall: Connection refused)``."""
        text = f"{self.delivered} delivered, {self.failed} failed, {self.queued} queued"
        if self.errors:
            text += f", {self.errors} errors"
        troubled = self.troubled
        return text + (f" ({troubled.name}: {troubled.last_error})" if troubled is not None else "")

    @property
    def level(self) -> str:
        """``ok``, ``waiting`` (something queued or retried) or ``failing`` (something failed or lost)."""
        if self.failed or self.errors:
            return "failing"
        return "waiting" if self.queued else "ok"
