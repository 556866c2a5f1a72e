"""Typed result of ``situation``: what serves a bundle in an environment now, through which
server, and its assignment history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollbackkit.ops.assignment_results import assignment_from_dict
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.status import ServerStatus, known


@dataclass(frozen=True)
class Situation:
    """What serves a bundle in an environment now, through which server, and its history.

    Attributes:
        name: Bundle name.
        env: Environment.
        serving: The live version, or None.
        canary: A running canary's version, or None.
        server: The URL of the server for ``env`` that answered, or None.
        status: That server's ``/status``, or None.
        history: Every assignment, oldest first.
        shadow: A running shadow's version (it scores a mirror of live requests), or None.
    """

    name: str
    env: str
    serving: str | None
    canary: str | None
    server: str | None
    status: ServerStatus | None
    history: list[Assignment]
    shadow: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Situation:
        """From :meth:`to_dict`."""
        return cls(
            **{
                **known(cls, data),
                "status": ServerStatus.from_dict(data["status"]) if data["status"] is not None else None,
                "history": [assignment_from_dict(a) for a in data["history"]],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            **vars(self),
            "status": self.status.to_dict() if self.status is not None else None,
            "history": [a.to_dict() for a in self.history],
        }
