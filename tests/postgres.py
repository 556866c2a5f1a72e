"""A real PostgreSQL for tests: a throwaway cluster from Debian's packages on 127.0.0.1.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as the ``postgres``
user (``runuser``) in a directory that user owns. TCP connections authenticate with
scram-sha-256 (wrong passwords really fail); the superuser ``postgres`` has a random password
that :meth:`PgCluster.url` puts in the URL. The unix socket lives in the cluster directory, so
nothing touches the machine's own clusters.

Fixtures: ``postgres`` (one cluster per session and xdist worker, stopped at its end) and
``store_url`` (a fresh database on it per test).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "postgres"
_pristine: tuple[Path, str] | None = None
"""A fresh data directory (and its superuser password) that later clusters of this process copy."""
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
    "dynamic_shared_memory_type": "mmap",
    "max_parallel_workers_per_gather": "0",
    "log_min_messages": "warning",
}
"""Appended to the cluster's postgresql.conf (kept across restarts); port and socket added per cluster."""


def pg_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make pytest` (it apt-installs postgresql).")
    return found[-1].parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster in its own directory; :meth:`start` it, :meth:`stop` it at the end.

    Args:
        root: Where to keep the cluster when the server user can enter it; as root a fresh
            directory under the system temp dir (owned by ``postgres``) is used instead.
    """

    def __init__(self, root: Path) -> None:
        self.as_root = os.geteuid() == 0
        base = None if self.as_root or len(str(root)) > 60 else root
        self.dir = Path(tempfile.mkdtemp(prefix="rk-pg-", dir=base))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.bin = pg_bin()
        if self.as_root:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, SUPERUSER, SUPERUSER)
        if _pristine is None:
            self.password = secrets.token_hex(12)
            self._initdb()
            self._keep_pristine()
        else:  # a copy of this process's first fresh cluster: 0.4 s instead of initdb's 1.5 s
            self.password = _pristine[1]
            self._run("cp", "-a", str(_pristine[0]), str(self.data))
        self._configure()

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` over TCP (the superuser's password by default)."""
        secret = self.password if password is None and user == SUPERUSER else password
        auth = f"{user}:{secret}" if secret else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the server runs (``pg_ctl status``)."""
        if not self.data.exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self, *, new_port_if_taken: bool = False) -> None:
        """Start the server and wait until it accepts connections; fails fast with its log.

        ``new_port_if_taken``: on a first start, move to another free port when one was taken
        meanwhile (a restart keeps its port: clients hold the URL).
        """
        for attempt in range(3 if new_port_if_taken else 1):
            result = self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "start", check=False)
            if result.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if new_port_if_taken and "could not bind" in log and attempt < 2:  # another process took the port meanwhile
                self.port = free_port()
                self._configure()
                continue
            raise RuntimeError(f"PostgreSQL did not start: {result.stdout}{result.stderr}\n{log[-3000:]}")

    def restart(self) -> None:
        """Stop (fast: connections cut, nothing committed lost) and start again on the same port."""
        self.stop(remove=False)
        self.start()

    def stop(self, *, remove: bool = False) -> None:
        """Stop the server (``pg_ctl -m fast stop``); ``remove`` deletes its directory too."""
        if self.running:
            result = self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not stop: {result.stdout}{result.stderr}")
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE, roles)."""
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as con:
            con.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """Create the database ``name`` and return its URL (a file copy of template1: faster here)."""
        strategy = " STRATEGY FILE_COPY" if int(self.bin.parent.name) >= 15 else ""
        self.execute(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def _initdb(self) -> None:
        """Create the cluster: UTF-8, C locale, scram-sha-256 over TCP, trust on its own socket."""
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(pwfile, SUPERUSER, SUPERUSER)
        try:
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink()

    def _keep_pristine(self) -> None:
        """Copy the fresh data directory for this process's later clusters (removed at exit)."""
        global _pristine
        keep = Path(tempfile.mkdtemp(prefix="rk-pg-pristine-"))
        if self.as_root:
            os.chmod(keep, 0o755)
            shutil.chown(keep, SUPERUSER, SUPERUSER)
        self._run("cp", "-a", str(self.data), str(keep / "data"))
        atexit.register(shutil.rmtree, keep, True)
        _pristine = (keep / "data", self.password)

    def _configure(self) -> None:
        """Write this cluster's settings (port, socket in its directory) into postgresql.conf."""
        lines = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.dir}'"}
        conf = self.data / "postgresql.conf"
        marker = "# rollbackkit tests\n"
        text = conf.read_text().split(marker)[0]
        conf.write_text(text + marker + "".join(f"{key} = {value}\n" for key, value in lines.items()))

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args, check=check)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the ``postgres`` user when we are root."""
        command = ["runuser", "-u", SUPERUSER, "--", *argv] if self.as_root else list(argv)
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result


def start_cluster(root: Path) -> PgCluster:
    """A private running cluster (for tests that restart or stop it); ``stop(remove=True)`` it after."""
    cluster = PgCluster(root)
    cluster.start(new_port_if_taken=True)
    return cluster


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One running cluster for the session (per xdist worker), stopped and removed at its end."""
    cluster = start_cluster(tmp_path_factory.mktemp("postgres"))
    yield cluster
    cluster.stop(remove=True)


@pytest.fixture()
def store_url(postgres: PgCluster) -> str:
    """The URL (with password) of a fresh, empty database on the session cluster."""
    return postgres.create_database(f"rk_{secrets.token_hex(6)}")
