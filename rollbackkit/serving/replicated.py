"""A served environment that is one replica of many on a shared PostgreSQL store.

It is a :class:`~rollbackkit.serving.environment.ServingEnvironment` whose watchdog evaluates
only while it leads (:class:`~rollbackkit.serving.postgres.leader.Leadership`), and whose
``/status`` also names the store, the watchdog's leader and every replica of the environment
(their heartbeat rows). The replica's id comes from ``serve --replica``, else
``ROLLBACKKIT_REPLICA``, else the host's name and the port (or the process id).
"""

from __future__ import annotations

import os
import re
import socket
import threading
from datetime import UTC, datetime
from typing import Any

from rollbackkit.errors import InvalidInput, StoreError
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.postgres.leader import Leadership
from rollbackkit.serving.postgres.replicas import ReplicaTable
from rollbackkit.serving.postgres.store import Store
from rollbackkit.serving.replica_status import ReplicaStatus

REPLICA_ENV = "ROLLBACKKIT_REPLICA"
"""The environment variable naming this replica when ``--replica`` is not given."""
_REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def replica_id(given: str | None, port: int) -> str:
    """This replica's id: ``given``, else ``$ROLLBACKKIT_REPLICA``, else ``HOST-PORT`` (``HOST-PID``
    when the port is picked at bind time).

    Raises:
        InvalidInput: The id is not 1-63 letters, digits, dots, dashes or underscores.
    """
    origin = "--replica"
    if given is None and os.environ.get(REPLICA_ENV):
        given, origin = os.environ[REPLICA_ENV], f"${REPLICA_ENV}"
    if given is None:
        host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]) or "replica"
        return f"{host[:40]}-{port or os.getpid()}"
    if not _REPLICA_ID.fullmatch(given):
        raise InvalidInput(
            f"{origin} {given!r} is not a replica id.",
            "Use 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. web-1).",
        )
    return given


def advertised(url: str, host: str) -> str:
    """The URL other hosts reach a server bound to ``url`` at: this host's name for 0.0.0.0/::."""
    if host in ("0.0.0.0", "::", ""):
        port = url.rsplit(":", 1)[1]
        return f"http://{socket.getfqdn()}:{port}"
    return url


class ReplicaEnvironment(ServingEnvironment):
    """One replica of NAME/ENV on ``store`` (see the module's docstring).

    Args:
        args: As :class:`ServingEnvironment`.
        store: The shared store.
        replica: This replica's id.
        kwargs: As :class:`ServingEnvironment`.
    """

    def __init__(self, *args: Any, store: Store, replica: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self.replica = replica
        self.leaving = False
        self.leadership = Leadership(store, self.name, self.env, replica)
        self.leadership.unfit = self._unfit
        self.watchdog.leadership = self.leadership
        self.replica_table = ReplicaTable(store)

    def _unfit(self) -> str | None:
        if self.leaving:
            return f"replica {self.replica} is stopping"
        return self.sync.unfit_to_lead() if self.sync is not None else None

    def leave(self) -> None:
        """Start leaving (SIGTERM): ``/healthz`` answers 503 so the balancer drains this replica
        while it finishes its requests, and the watchdog's lead goes at once to another replica
        (released in a thread: a signal handler never waits on the store)."""
        self.leaving = True
        threading.Thread(target=self.leadership.release, name="rollbackkit-leave", daemon=True).start()

    def status(self) -> dict[str, Any]:
        """:meth:`ServingEnvironment.status` with ``store``, ``watchdog`` (leader, leading) and
        ``replicas`` (each replica's heartbeat row; None with ``replicas_error`` when the store
        does not answer)."""
        said = super().status()
        watchdog = self.leadership.status()
        try:
            records = self.replica_table.list(self.name, self.env)
        except StoreError as exc:
            return {**said, "store": self.store.where, "watchdog": watchdog, "replicas": None,
                    "replicas_error": exc.message}  # fmt: skip
        now = datetime.now(UTC)
        replicas = [ReplicaStatus.of(r, leader=watchdog["leader"], now=now).to_dict() for r in records]
        return {**said, "store": self.store.where, "watchdog": watchdog, "replicas": replicas}

    def close(self) -> None:
        """Give the watchdog's lead up and close this replica's own store connections."""
        self.leadership.release()
        self.replica_table.close()
