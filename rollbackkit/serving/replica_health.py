"""Whether one replica may lead the watchdog and whether the balancer may send it traffic.

:class:`ReplicaHealth` is the part of :class:`~rollbackkit.serving.sync.ReplicaSync` that
answers from memory (never asking the store): what the replica last saw of the other
replicas (on each poll of the listener) and how long it has been cut off from the store.
"""

from __future__ import annotations

import contextlib
import time
from typing import Protocol

from rollbackkit.errors import StoreError
from rollbackkit.serving.postgres.replicas import GONE_AFTER, ReplicaTable


class Named(Protocol):
    """The environment a replica serves, as seen here."""

    name: str
    env: str


class ReplicaHealth:
    """Leadership fitness, draining and fencing of a replica (see the module's docstring)."""

    environment: Named
    replica: str
    replicas: ReplicaTable
    generation: int
    error: str | None
    store_error: str | None
    _wanted: int
    _reached: float  # when this replica last reached the store (monotonic)
    _peers: int  # other replicas with a fresh heartbeat, when it last listed them
    _peers_serve: bool  # one of them serves the generation this replica wants (last listed)

    def unfit_to_lead(self) -> str | None:
        """Why this replica must not lead the watchdog: it does not serve the published state
        (it would judge a state nobody else serves, and could not roll back). None when in sync."""
        if self.error is not None:
            return f"replica {self.replica} cannot serve generation {self._wanted}: {self.error}"
        if self._wanted > self.generation:
            return f"replica {self.replica} serves generation {self.generation}, not yet {self._wanted}"
        return None

    def _see_peers(self) -> None:
        """Count the other fresh replicas, and whether one serves what this one wants (kept as it
        was when the store does not answer)."""
        env = self.environment
        with contextlib.suppress(StoreError):
            peers = [r for r in self.replicas.list(env.name, env.env) if r.fresh and r.replica != self.replica]
            self._peers = len(peers)
            self._peers_serve = any((r.generation or 0) >= self._wanted and not r.error for r in peers)

    def drained(self) -> str | None:
        """Why ``/healthz`` must take this serving replica out of the balancer, or None.

        A replica that cannot load the published state is drained only while another fresh
        replica serves it: when none does (the whole fleet cannot load a version), every one
        keeps serving what it serves, healthy, with the error in ``/status`` and its heartbeat.
        See :meth:`fenced` for a replica cut off from the store. Answered from memory: the
        store is never asked.
        """
        if self.error is not None and self._peers_serve:
            return f"does not serve what {self.environment.env} serves: {self.error}"
        return self.fenced()

    def fenced(self) -> str | None:
        """Why this replica must leave the balancer though it serves: cut off from the store for
        :data:`~rollbackkit.serving.postgres.replicas.GONE_AFTER` seconds while other replicas
        were serving (it may serve a version they moved away from; operations stop waiting for it
        then). None otherwise: a store restart (seconds) drains nothing, nor does an outage of a
        lone replica's store.
        """
        if self.store_error is None or self._peers == 0:
            return None
        cut_off = time.monotonic() - self._reached
        if cut_off < GONE_AFTER:
            return None
        return f"cannot see the store for {cut_off:.0f} s: may serve a stale version ({self.store_error})"
