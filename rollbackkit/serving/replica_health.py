"""Whether one replica may start, lead the watchdog, and take traffic from the balancer.

:class:`ReplicaHealth` is the part of :class:`~rollbackkit.serving.sync.ReplicaSync` that
answers from memory (never asking the store): what the replica last saw of the other
replicas (on each poll of the listener) and how long it has been cut off from the store.

A replica cut off from the store cannot tell "I am cut off" from "the store is down" by
itself: its heartbeat thread asks the peers it last listed (their ``/healthz``, a short
timeout, at most every :data:`ASK_EVERY` seconds, never on a request) whether THEY reach the
store. Only when one does is it fenced; a whole-store outage drains nobody.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Protocol

import httpx

from rollbackkit.errors import InvalidInput, StoreError
from rollbackkit.serving.postgres import replicas as replicas_table
from rollbackkit.serving.postgres.replicas import GONE_AFTER, ReplicaTable

ASK_EVERY = 3.0
"""Seconds between two rounds of asking peers whether they reach the store (while cut off)."""
ASK_TIMEOUT = 0.5
"""Seconds one peer gets to answer ``/healthz``."""


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
    gone_after: float = GONE_AFTER  # seconds cut off from the store before it may be fenced
    _peer_urls: tuple[str, ...] = ()  # the fresh peers' URLs, when it last listed them
    _asked: float = 0.0  # when it last asked them (monotonic)
    _reaching: str | None = None  # a peer that answered it reaches the store (last round)
    outage: str | None = None  # why it serves on though cut off (``/status``), or None

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
            self._peer_urls = tuple(r.url for r in peers if r.url)
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
        :attr:`gone_after` seconds while a peer answered that it reaches the store (this one may
        serve a version they moved away from; operations stop waiting for it then). None
        otherwise: a store restart or a whole-store outage (no peer reaches it either, or none
        answers) drains nothing, nor does an outage of a lone replica's store.
        """
        if self.store_error is None or self._peers == 0 or self._reaching is None:
            return None
        cut_off = time.monotonic() - self._reached
        if cut_off < self.gone_after:
            return None
        return (
            f"cannot see the store for {cut_off:.0f} s while the replica at {self._reaching} does: "
            f"may serve a stale version ({self.store_error})"
        )

    def ask_peers(self) -> None:
        """While cut off from the store, ask the peers last listed whether they reach it (the
        heartbeat thread's job: :meth:`fenced` reads the verdict from memory)."""
        cut_off = time.monotonic() - self._reached
        if self.store_error is None or cut_off < self.gone_after / 2:
            self._reaching = self.outage = None
            return
        if time.monotonic() - self._asked < ASK_EVERY:
            return
        self._asked = time.monotonic()
        self._reaching = next((url for url in self._peer_urls if _reaches_store(url)), None)
        if self._reaching is None:
            asked = ", ".join(self._peer_urls) or "none with a URL"
            self.outage = (
                f"cannot see the store for {cut_off:.0f} s, and no peer reaches it either (asked: {asked}): "
                "a store outage, serving on"
            )
        else:
            self.outage = None


def _reaches_store(url: str) -> bool:
    """Whether the replica at ``url`` answers that it reached the store within STALE_AFTER seconds."""
    try:
        seen = httpx.get(f"{url.rstrip('/')}/healthz", timeout=ASK_TIMEOUT).json().get("store_seen_s")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return isinstance(seen, int | float) and seen < replicas_table.STALE_AFTER


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
