"""Versions a rollback took traffic from: no longer served, but their verdict stands (``GET /analysis``).

A version whose latest assignment in an environment is a rollback away from it (the
watchdog's or a person's: it was the canary, the shadow or live, and is not deployed there
since) is :meth:`RolledBack.find`'s answer: the rollback's assignment and the version's own
last deployment tag. The assignment history is read again only when what serves changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rollbackkit.registry.assignments import Assignment, Deployments, Serving

Served = tuple[str | None, ...]
"""What serves, as each role's deployment tag: a new assignment here changes it."""


@dataclass(frozen=True)
class Gone:
    """The rollback (``rollback``) that took a version's traffic away, and the version's own last tag."""

    rollback: Assignment
    deployment: str


class RolledBack:
    """The versions rolled back from in one environment, read from its assignment history.

    Args:
        deployments: The registry's assignment history.
        name: Bundle name.
        env: Environment.
    """

    def __init__(self, deployments: Deployments, name: str, env: str) -> None:
        self.deployments, self.name, self.env = deployments, name, env
        self._lock = threading.Lock()
        self._read: tuple[Served, dict[str, Gone]] | None = None

    def find(self, version: str, served: Served) -> Gone | None:
        """The rollback that took ``version``'s traffic away, if its latest assignment here is one.

        ``served`` keys the history read: it is read again only when what serves has changed.
        """
        with self._lock:
            read = self._read
            if read is None or read[0] != served:
                read = self._read = (served, rolled_back_from(self.deployments.states(self.name, self.env)))
        return read[1].get(version)


def rolled_back_from(states: list[tuple[Assignment, Serving]]) -> dict[str, Gone]:
    """Each version rolled back from and not assigned since, with the rollback and the version's own last tag."""
    if not states:
        return {}
    own: dict[str, str] = {}
    gone: dict[str, Gone] = {}
    for assignment, after in states:
        for version in after.last_rolled_back_from:
            gone[version] = Gone(assignment, own.get(version, assignment.tag))
        own[assignment.version] = assignment.tag
    still = states[-1][1].rolled_back_from
    return {version: found for version, found in gone.items() if version in still}
