"""Whether one replica may start, lead the watchdog, and take traffic from the balancer.

:class:`ReplicaHealth` is the part of :class:`~rollbackkit.serving.sync.ReplicaSync` that
answers from memory (never asking the store): what the replica last saw of the other
replicas (on each poll of the listener) and how long it has been cut off from the store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Protocol

from rollbackkit.errors import InvalidInput, StoreError
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

    def _refuse_twin(self) -> None:
        """Refuse to start when another live process already is this replica of this environment.

        A fresh row of this id from another host, or from another live process of this host,
        is a twin. This host's row with this process id (a container restarted: pid 1 again) or
        with a process id that is no longer alive (killed -9, restarted) is this replica's past.
        """
        env = self.environment
        host = socket.gethostname()
        for r in self.replicas.list(env.name, env.env):
            if r.replica != self.replica or not r.fresh:
                continue
            if r.host == host and (r.pid in (None, os.getpid()) or not _alive(r.pid)):
                continue
            raise InvalidInput(
                f"Replica {self.replica} of {env.name} in {env.env} already runs on {r.host} (pid {r.pid}): "
                "two processes would share one row, and convergence would count one of them.",
                "Give each replica its own id (serve --replica or $ROLLBACKKIT_REPLICA, e.g. the pod's name), "
                "or wait a few seconds if it has just stopped.",
            )

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


def _alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs on this host."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
