"""Replicas converge: one environment's routing state shared through the store.

A :class:`ReplicaSync` makes one serving process (a replica) follow the environment's
published routing state (:class:`~rollbackkit.serving.postgres.routing.RoutingTable`): on
each NOTIFY, and every ``poll`` seconds, it loads what it lacks warm, then switches
(:func:`~rollbackkit.serving.reconcile.reconcile`). A version it cannot load leaves it
serving what it serves, with the reason in :attr:`ReplicaSync.error` (its heartbeat,
``/status``, and a 503 ``/healthz`` while another replica serves the published state:
:mod:`~rollbackkit.serving.replica_health`). Its operations publish the state they made and wait
until every live replica serves it (:class:`Convergence`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from rollbackkit.errors import RoutingError, StoreError
from rollbackkit.serving.convergence import Convergence, Superseding, wait_converged
from rollbackkit.serving.desired import desired_of
from rollbackkit.serving.postgres.replicas import ReplicaTable
from rollbackkit.serving.postgres.routing import Published, RoutingTable
from rollbackkit.serving.postgres.store import Store
from rollbackkit.serving.reconcile import CannotLoad, fill_standby, reconcile
from rollbackkit.serving.replica_health import ReplicaHealth
from rollbackkit.serving.router import Router

if TYPE_CHECKING:
    from rollbackkit.bundle.model import LoadedBundle
    from rollbackkit.registry.assignments import Deployments
    from rollbackkit.serving.background import Background


class Followed(Protocol):
    """What a :class:`ReplicaSync` reads and drives on its served environment."""

    name: str
    env: str
    router: Router
    deployments: Deployments
    sync: ReplicaSync | None
    background: Background
    _ops: threading.Lock

    def _bundle(self, version: str) -> LoadedBundle: ...

    def adopted(self, relabelled: Sequence[tuple[str, str]]) -> None: ...


RETRY_S = 5.0
"""A version this replica failed to load is tried again after this many seconds (or on a new publication)."""


class ReplicaSync(ReplicaHealth):
    """Keep ``environment`` serving what the store says its environment serves; publish what it changes.

    Args:
        environment: The served environment (started: it serves git's state).
        store: The shared store.
        replica: This replica's id (unique across the environment's replicas).
        heartbeat: Seconds between heartbeats.
        poll: Seconds between reads of the published state (NOTIFY is the fast path).
        converge_timeout: How long an operation waits for the other replicas.
        gone_after: Seconds cut off from the store (while a peer reaches it) before ``/healthz`` drains it.
    """

    environment: Followed

    def __init__(
        self,
        environment: Followed,
        store: Store,
        replica: str,
        *,
        heartbeat: float = 1.0,
        poll: float = 1.0,
        converge_timeout: float = 10.0,
        gone_after: float | None = None,
    ) -> None:
        self.environment = environment
        self.store = store
        self.replica = replica
        self.heartbeat = heartbeat
        self.poll = poll
        self.converge_timeout = converge_timeout
        if gone_after is not None:
            self.gone_after = gone_after
        self.routing = RoutingTable(store)
        self.replicas = ReplicaTable(store)
        self.url = ""
        self.generation = 0  # the published generation this replica serves
        self.failures = 0  # store errors and versions it could not load, since start (/metrics)
        self.in_sync = False
        self.error: str | None = None
        self.store_error: str | None = None  # the last failure to reach the store (cleared on success)
        self.last_switch: datetime | None = None
        self._wanted = 0  # the newest generation tried
        self._failed_at = 0.0
        self._unpublished: str | None = None  # an operation's action whose publication failed
        self._started = datetime.now(UTC)
        self._reached = time.monotonic()  # when this replica last reached the store
        self._followed = time.monotonic()  # when its listener last read the published state
        self._peers = 0  # other replicas with a fresh heartbeat, when it last listed them
        self._peers_serve = False  # one of them serves the generation this replica wants (last listed)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------- life
    def start(self) -> None:
        """Adopt the published state (load warm, then switch), or publish git's when none is; start threads."""
        env = self.environment
        self._refuse_twin()
        self.replicas.sweep(env.name, env.env)  # replicas killed long ago: their rows go
        if env.sync is None:
            env.sync = self
        published = self.routing.read(env.name, env.env)
        if published is not None and not self._git_is_newer(published):
            with env._ops:  # loaded without the environment's lock: no operation waits for this start
                self._adopt(published)
        else:
            with self.exclusive(), env._ops:  # publish git's state, unless another replica just did
                published = self.routing.read(env.name, env.env)
                if published is None or self._git_is_newer(published):
                    self._publish_locked("serve")
                else:
                    self._adopt(published)
        self._beat()
        self._see_peers()
        for target, what in ((self._listen, "listener"), (self._beat_loop, "heartbeat")):
            thread = threading.Thread(target=target, name=f"rollbackkit-sync-{what}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads and forget this replica's row."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        with contextlib.suppress(StoreError):
            self.replicas.forget(self.replica, self.environment.name, self.environment.env)
        if any(thread.is_alive() for thread in self._threads):
            return  # a thread still inside libpq keeps its connection: never closed under it
        self.routing.close()
        self.replicas.close()

    def _git_is_newer(self, published: Published) -> bool:
        """Git holds an assignment newer than every tag published (made while no replica ran)."""
        env = self.environment
        history = env.deployments.history(env.name, env.env)
        tags = {p.tag for _, p in published.desired.placements()}
        numbers = [a.number for a in history if a.tag in tags]
        return bool(history) and bool(numbers) and max(a.number for a in history) > max(numbers)

    # ------------------------------------------------------------------------- operations
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The environment-wide operation lock (:meth:`RoutingTable.exclusive`)."""
        env = self.environment
        with self.routing.exclusive(env.name, env.env, timeout=max(30.0, self.converge_timeout)):
            yield

    def catch_up(self) -> None:
        """Serve the newest published state before an operation (hold :meth:`exclusive` and ``_ops``).

        Raises:
            RoutingError: This replica cannot serve it (another replica can take the operation).
        """
        self._failed_at = 0.0  # an operation always tries again
        published = self.routing.read(self.environment.name, self.environment.env)
        if self._unpublished is not None:  # nobody published since: ours is the newest state
            if published is None or published.generation == self.generation:
                self._publish_locked(self._unpublished)
                return
            self._unpublished = None  # another replica's operation came after: it wins
        if published is None or (published.generation <= self.generation and self.in_sync):
            return
        if not self._adopt(published):
            raise RoutingError(
                f"Replica {self.replica} cannot serve generation {published.generation}: {self.error}.",
                "Send the operation to another replica, or fix this one (rollbackkit status lists them).",
            )

    def publish(self, action: str) -> int:
        """Publish the environment's router state after a local operation (hold :meth:`exclusive`).

        Raises:
            StoreError: Not published (retried by the listener while the lock is free of others).
        """
        self._unpublished = action
        return self._publish_locked(action)

    def _publish_locked(self, action: str) -> int:
        env = self.environment
        desired = desired_of(env.router.state)
        published = self.routing.publish(env.name, env.env, desired, action=action, by=self.replica)
        self._unpublished = None
        self.generation = self._wanted = published.generation
        self.in_sync, self.error = True, None
        self.last_switch = datetime.now(UTC)
        self._beat()
        return published.generation

    def undo(self, action: str) -> None:
        """Serve the published state again after a local ``action`` failed after its shift (hold
        :meth:`exclusive` and ``_ops``); nothing is published. When it cannot be served now, this
        replica is out of sync (``error``) and its listener adopts it as soon as it can."""
        env = self.environment
        self._unpublished = None
        self.generation = 0  # what it serves is no published generation
        try:
            published = self.routing.read(env.name, env.env)
            if published is not None and self._adopt(published):
                return
        except Exception as exc:
            env.background.failed(f"replica sync: undoing a failed {action}: {_one_line(exc)}")
        self.in_sync = False
        self.error = self.error or f"a failed {action} left an unpublished state here; it serves the published one next"
        self._beat()

    def wait_converged(self, generation: int, timeout: float | None = None) -> Convergence:
        """Wait until every replica not gone serves ``generation`` (:mod:`~rollbackkit.serving.convergence`)."""
        env = self.environment
        wait = self.converge_timeout if timeout is None else timeout
        return wait_converged(
            lambda: self.replicas.list(env.name, env.env), generation, wait, me=self.replica,
            newest=lambda: self._newer_than(generation),
        )  # fmt: skip

    def _newer_than(self, generation: int) -> Superseding | None:
        env = self.environment
        published = self.routing.read(env.name, env.env)
        if published is None or published.generation <= generation:
            return None
        return Superseding(published.generation, published.action, published.changed_by)

    # ------------------------------------------------------------------------- following
    def _follow(self) -> None:
        """The listener's callback: adopt a newer publication (or retry a failed one)."""
        env = self.environment
        if self._unpublished is not None:
            with contextlib.suppress(StoreError, RoutingError), self.exclusive(), env._ops:
                self.catch_up()
            return
        published = self.routing.read(env.name, env.env)
        self._reached = self._followed = time.monotonic()
        self.store_error = None
        self._see_peers()
        if published is None or published.generation <= self.generation:
            return
        if published.generation == self._wanted and time.monotonic() - self._failed_at < RETRY_S:
            return
        with env._ops:  # read again under the lock: a local operation may have published a newer one
            published = self.routing.read(env.name, env.env)
            if published is not None and published.generation > self.generation:
                self._adopt(published)

    def _adopt(self, published: Published) -> bool:
        """Serve ``published`` (hold ``_ops``): warm, then switch; False (and :attr:`error`) when impossible."""
        env = self.environment
        self._wanted = max(self._wanted, published.generation)
        try:
            done = reconcile(env.router, published.desired, env._bundle)
        except CannotLoad as exc:
            self.in_sync, self.error, self._failed_at = False, str(exc), time.monotonic()
            self.failures += 1
            self._beat()
            self._see_peers()
            return False
        if done.switched:
            self.last_switch = datetime.now(UTC)
            env.adopted(done.relabelled)
        self.generation, self.in_sync, self.error = published.generation, True, None
        self._beat()
        if done.standby is not None and fill_standby(
            env.router, done.standby, env._bundle, on_error=self._standby_failed
        ):
            self._beat()
        return True

    def _follow_counted(self) -> None:
        """:meth:`_follow`, its failures kept: the store's in :attr:`store_error`, any other counted
        in the environment's ``background`` (``/status``), never lost with the listener."""
        try:
            self._follow()
        except StoreError as exc:
            self._store_failed(exc.message)
        except Exception as exc:
            self.environment.background.failed(f"replica sync: following the published state: {_one_line(exc)}")

    def _standby_failed(self, error: str) -> None:
        self.environment.background.failed(f"replica sync: warm standby not loaded (a rollback loads cold): {error}")

    def _listen(self) -> None:
        env = self.environment
        self.routing.listen(
            self._follow_counted, self._stop, self.poll, name=env.name, env=env.env, on_error=self._lost
        )

    def _lost(self, error: str) -> None:
        self._store_failed(error)

    def _store_failed(self, error: str) -> None:
        """Keep the store's error (``store_error``) and count it (``failures``)."""
        self.store_error = error
        self.failures += 1

    # ------------------------------------------------------------------------- heartbeat
    def announce(self, url: str) -> None:
        """Set the URL this replica answers on and write its row at once (not a heartbeat later),
        so a CLI that finds it through the store right after start-up gets its URL."""
        self.url = url
        self._beat()

    def _beat(self) -> None:
        """Write this replica's row now (a failure is kept in :attr:`store_error`, never raised);
        nothing once stopping (a stopped replica's row stays forgotten)."""
        if self._stop.is_set():
            return
        env = self.environment
        serving = desired_of(env.router.state).to_json() | {"wanted": self._wanted}
        try:
            self.replicas.beat(
                self.replica, name=env.name, env=env.env, host=socket.gethostname(), pid=os.getpid(),
                url=self.url or None, started=self._started, generation=self.generation, serving=serving,
                last_switch=self.last_switch, error=self.error,
            )  # fmt: skip
        except StoreError as exc:
            self._store_failed(exc.message)
        else:
            self._reached = time.monotonic()

    def _beat_loop(self) -> None:
        beats, env = 0, self.environment
        while not self._stop.wait(self.heartbeat):
            beats += 1
            try:
                self._beat()
                self.ask_peers()
                env.background.retry(env._ops)  # a quarantine or row promotion that failed after a shift
                if beats % max(1, round(300 / self.heartbeat)) == 0:  # every 5 minutes
                    with contextlib.suppress(StoreError):
                        self.replicas.sweep(env.name, env.env)
            except Exception as exc:  # the heartbeat never dies: a replica without one looks gone
                self.environment.background.failed(f"replica sync: heartbeat: {_one_line(exc)}")

    def status(self) -> dict[str, Any]:
        """``/status``'s ``replica``: ``{replica, generation, in_sync, error, last_switch, store_error,
        url, store_seen_s, followed_s, following, outage}`` — ``following`` false when the listener has
        not read the published state for 3 polls (a hung connection: this replica no longer follows);
        ``outage``: why it serves on though cut off from the store (no peer reaches it either)."""
        now = time.monotonic()
        followed = round(now - self._followed, 3)
        return {
            "replica": self.replica,
            "generation": self.generation,
            "in_sync": self.in_sync,
            "error": self.error,
            "last_switch": self.last_switch.isoformat() if self.last_switch else None,
            "store_error": self.store_error,
            "url": self.url or None,
            "store_seen_s": round(now - self._reached, 3),
            "followed_s": followed,
            "following": followed <= 3 * self.poll + 1.0,
            "outage": self.outage,
        }


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (a RollbackkitError's message, else ``str``)."""
    return " ".join(f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split())
