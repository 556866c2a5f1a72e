"""The shared store's front door: which URL a project uses, and every way opening it can go wrong.

Each failure is one line with a hint, names the store by its redacted URL, and never shows the
password. Against a real PostgreSQL (tests/postgres.py) with scram-sha-256 over TCP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from rollbackkit.errors import (
    InvalidInput,
    RollbackkitError,
    StoreAuthFailed,
    StoreError,
    StoreSchemaTooNew,
    StoreUnavailable,
)
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.postgres import store as store_module
from rollbackkit.serving.postgres.schema import ROW_TABLES, SCHEMA_VERSION, migrate
from rollbackkit.serving.postgres.store import STORE_ENV, Store, mapped, open_store, redacted, store_of
from rollbackkit.serving.postgres.store import store_url as configured_store

from .postgres import PgCluster, free_port

SECRET = "Tr0ub4dor&3-horse"
"""A password no message may ever show."""


def one_line(error: RollbackkitError, *secrets: str) -> str:
    """The error as the CLI prints it, checked: one line, a hint, no secret."""
    text = str(error)
    assert "\n" not in text, text
    assert error.hint, text
    for secret in (SECRET, *secrets):
        assert secret not in text, text
    return text


def project(root: Path, config: str = "") -> ProjectPaths:
    """A project directory whose ``.rollbackkit/config.yaml`` holds ``config``."""
    (root / ".rollbackkit").mkdir(parents=True, exist_ok=True)
    (root / ".rollbackkit" / "config.yaml").write_text(config)
    return ProjectPaths(root)


@pytest.fixture()
def no_store_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The test decides ``ROLLBACKKIT_STORE`` (unset to start with)."""
    monkeypatch.delenv(STORE_ENV, raising=False)
    yield monkeypatch


def tables(url: str) -> list[tuple[str, str]]:
    """Every relation in the rollbackkit schema, with its kind."""
    with psycopg.connect(url) as con:
        query = (
            "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'rollbackkit' ORDER BY 1"
        )
        return [(name, kind) for name, kind in con.execute(query).fetchall()]


# -- which store ------------------------------------------------------------------------------


def test_no_setting_means_no_store(tmp_path: Path, no_store_env: pytest.MonkeyPatch) -> None:
    paths = project(tmp_path, "gates: {}\n")
    assert configured_store(paths) is None
    assert store_of(paths) is None
    assert configured_store(ProjectPaths(tmp_path / "never-initialised")) is None


def test_the_environment_variable_beats_the_config(tmp_path: Path, no_store_env: pytest.MonkeyPatch) -> None:
    paths = project(tmp_path, "store: postgresql://config@db.internal/rk\n")
    assert configured_store(paths) == "postgresql://config@db.internal/rk"
    no_store_env.setenv(STORE_ENV, "postgres://env@db.internal:6432/rk")
    assert configured_store(paths) == "postgres://env@db.internal:6432/rk"
    no_store_env.setenv(STORE_ENV, "")  # set and empty: this process uses no store, whatever the config says
    assert configured_store(paths) is None
    assert store_of(paths) is None


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{SECRET}@127.0.0.1/rk",
        "sqlite:///rk.db",
        f"host=db.internal password={SECRET} dbname=rk",
        "db.internal:5432/rk",
        "postgresql:/missing-slashes",
        f"postgresql://postgres:{SECRET}@[::1:5432/rk",  # a malformed IPv6 host
    ],
)
def test_a_url_that_is_not_postgresql_is_refused(url: str, tmp_path: Path, no_store_env: pytest.MonkeyPatch) -> None:
    no_store_env.setenv(STORE_ENV, url)
    with pytest.raises(InvalidInput) as from_env:
        configured_store(project(tmp_path))
    assert STORE_ENV in one_line(from_env.value)
    with pytest.raises(InvalidInput) as opened:
        open_store(url, timeout=2)
    assert "PostgreSQL URL" in one_line(opened.value)


def test_a_store_setting_that_is_not_text_is_refused(tmp_path: Path, no_store_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput) as raised:
        configured_store(project(tmp_path, "store:\n  host: db.internal\n"))
    assert "config.yaml" in one_line(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://rk:{SECRET}@db:5432/rk", "postgresql://rk:***@db:5432/rk"),
        (
            f"postgresql://rk@db/rk?sslmode=require&password={quote(SECRET, safe='')}",
            "postgresql://rk@db/rk?sslmode=require&password=***",
        ),
        ("postgresql://rk@db/rk", "postgresql://rk@db/rk"),
        (f"postgresql://rk:{SECRET}@db1:5432,db2:5432/rk", "postgresql://rk:***@db1:5432,db2:5432/rk"),
    ],
)
def test_redacted_hides_the_password_and_nothing_else(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert Store(url).where == shown
    assert SECRET not in repr(Store(url)) and quote(SECRET, safe="") not in repr(Store(url))


# -- opening it: every way it goes wrong ------------------------------------------------------


def test_nothing_listening_on_the_port(postgres: PgCluster) -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/rk"
    with pytest.raises(StoreUnavailable) as raised:
        open_store(url, timeout=2)
    text = one_line(raised.value)
    assert "Cannot reach the store postgresql://postgres:***@127.0.0.1:" in text
    assert "refused" in text.lower()


def test_a_host_name_that_does_not_resolve() -> None:
    with pytest.raises(StoreUnavailable) as raised:
        open_store(f"postgresql://rk:{SECRET}@no-such-store.invalid:5432/rk", timeout=2)
    assert "no-such-store.invalid" in one_line(raised.value)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts the TCP connection, never speaks PostgreSQL
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql://rk:{SECRET}@127.0.0.1:{silent.getsockname()[1]}/rk"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            open_store(url, timeout=1)
    assert time.monotonic() - started < 10
    assert "Cannot reach the store" in one_line(raised.value)


def test_a_wrong_password_or_an_unknown_role(postgres: PgCluster, store_url: str) -> None:
    database = store_url.rsplit("/", 1)[1]
    postgres.execute(f"CREATE ROLE ada LOGIN PASSWORD '{SECRET}'")
    try:
        with pytest.raises(StoreAuthFailed) as wrong:
            open_store(postgres.url(database, user="ada", password="not-" + SECRET), timeout=2)
        text = one_line(wrong.value, "not-" + SECRET)
        assert "refused the credentials" in text and 'user "ada"' in text and "postgresql://ada:***@" in text
        with pytest.raises(StoreAuthFailed) as unknown:
            open_store(postgres.url(database, user="nobody", password=SECRET), timeout=2)
        assert "nobody" in one_line(unknown.value)
    finally:
        postgres.execute("DROP ROLE ada")


def test_a_role_without_rights_on_the_database(postgres: PgCluster, store_url: str) -> None:
    database = store_url.rsplit("/", 1)[1]
    postgres.execute(f"CREATE ROLE reader LOGIN PASSWORD '{SECRET}'")
    try:
        postgres.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC', database)  # the default, said
        with pytest.raises(StoreAuthFailed) as raised:
            open_store(postgres.url(database, user="reader", password=SECRET), timeout=2)
        assert "permission denied" in one_line(raised.value)
    finally:
        postgres.execute("DROP ROLE reader")


def test_a_database_that_does_not_exist(postgres: PgCluster) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        open_store(postgres.url("rk_never_created"), timeout=2)
    text = one_line(raised.value, postgres.password)
    assert 'database "rk_never_created" does not exist' in text and "Create it" in text


def test_a_store_written_by_a_newer_rollbackkit(postgres: PgCluster, store_url: str) -> None:
    store = open_store(store_url)
    with store.connect(autocommit=True) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreSchemaTooNew) as raised:
        open_store(store_url)
    text = one_line(raised.value, postgres.password)
    assert f"(schema 99, this one reads {SCHEMA_VERSION})" in text and store.where in text
    assert isinstance(raised.value, StoreError)


def test_a_connection_the_server_cuts_is_unavailable(postgres: PgCluster, store_url: str) -> None:
    store = open_store(store_url)
    with store.connect(purpose="victim") as con:
        pid = con.info.backend_pid
        postgres.execute(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(psycopg.Error) as cut:
            con.execute("SELECT 1")
    error = mapped(cut.value, store.where)
    assert isinstance(error, StoreUnavailable), error
    one_line(error, postgres.password)


def test_a_read_only_database_says_so(postgres: PgCluster, store_url: str) -> None:
    database = store_url.rsplit("/", 1)[1]
    postgres.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')  # like a standby
    with pytest.raises(StoreError) as raised:
        open_store(store_url)
    assert "is read-only" in one_line(raised.value, postgres.password) and "target_session_attrs" in raised.value.hint


def test_a_server_too_old_is_refused(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MIN_SERVER_VERSION", 990001)  # a release after the one running here
    with pytest.raises(StoreError) as raised:
        open_store(store_url)
    assert "rollbackkit needs 99.1 or newer" in one_line(raised.value) and "runs PostgreSQL 1" in str(raised.value)


def test_a_failed_statement_is_not_called_unreachable() -> None:
    conflict = mapped(psycopg.errors.SerializationFailure("could not serialize access"), "postgresql://rk:***@db/rk")
    assert type(conflict) is StoreError and "failed: could not serialize access" in one_line(conflict)
    refused = mapped(ConnectionRefusedError(111, "Connection refused"), "postgresql://rk:***@db/rk")
    assert isinstance(refused, StoreUnavailable)
    scrubbed = mapped(psycopg.OperationalError(f"oops {SECRET}"), "W", url=f"postgresql://rk:{SECRET}@db/rk")
    assert "oops ***" in one_line(scrubbed)


# -- the schema -------------------------------------------------------------------------------


def test_a_fresh_store_gets_the_whole_schema_and_connections_find_it(store_url: str) -> None:
    store = open_store(store_url)
    created = dict(tables(store_url))
    for table in (*ROW_TABLES, "meta", "log_inputs", "log_batches", "log_deployments", "log_quarantine"):
        assert created[table] == "r", table
    for table in ("backfill_audit", "labels", "routing", "replicas", "watchdog"):
        assert created[table] == "r", table
    assert created["predictions_production"] == "v" and created["label_seq"] == "S"
    with store.connect(purpose="reader", keepalive=True) as con:
        assert con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # handed over idle
        assert con.execute("SHOW search_path").fetchone() == ("rollbackkit",)
        assert con.execute("SHOW application_name").fetchone() == ("rollbackkit reader",)
        keepalive = con.info.get_parameters()
        assert (keepalive["keepalives_idle"], keepalive["tcp_user_timeout"]) == ("5", "10000")
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert con.execute("SELECT count(*) FROM predictions_production").fetchone() == (0,)
        columns = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'predictions' "
            "AND table_schema = 'rollbackkit' ORDER BY ordinal_position"
        ).fetchall()
        assert [c[0] for c in columns][-3:] == ["replica", "inputs_batch", "input_at"]


def test_migrating_twice_or_concurrently_makes_one_schema(store_url: str) -> None:
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(store_url, timeout=10)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    first = tables(store_url)
    with psycopg.connect(store_url) as con:
        assert migrate(con, "again") == SCHEMA_VERSION
        rows = con.execute("SELECT key, value FROM rollbackkit.meta WHERE key = 'schema_version'").fetchall()
    assert rows == [("schema_version", str(SCHEMA_VERSION))]
    assert tables(store_url) == first


def test_a_store_from_before_replica_rows_were_keyed_by_model_is_rekeyed_once(store_url: str) -> None:
    """A store made when ``replicas`` was keyed by replica alone: upgraded, its rows kept, twice is once."""
    open_store(store_url)
    with psycopg.connect(store_url, autocommit=True) as con:
        con.execute("SET search_path TO rollbackkit")
        con.execute("DROP TABLE replicas")
        con.execute(
            "CREATE TABLE replicas (replica TEXT PRIMARY KEY, name TEXT NOT NULL, env TEXT NOT NULL, host TEXT, "
            "pid INTEGER, url TEXT, started TIMESTAMPTZ, heartbeat TIMESTAMPTZ, generation BIGINT, serving JSONB, "
            "last_switch TIMESTAMPTZ, error TEXT)"
        )
        con.execute("INSERT INTO replicas (replica, name, env, host) VALUES ('r1', 'wine', 'prod', 'vm1')")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    for _ in range(2):
        open_store(store_url)
    with psycopg.connect(store_url) as con:
        key = con.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'rollbackkit.replicas'::regclass AND contype = 'p'"
        ).fetchall()
        assert key == [("PRIMARY KEY (name, env, replica)",)]
        upsert = (
            "INSERT INTO rollbackkit.replicas (replica, name, env, host) VALUES ('r1', %s, 'prod', 'vm2') "
            "ON CONFLICT (name, env, replica) DO UPDATE SET host = EXCLUDED.host"
        )
        con.execute(upsert, ("wine",))
        con.execute(upsert, ("diabetes",))  # one replica id serving a second model: its own row
        rows = con.execute("SELECT name, host FROM rollbackkit.replicas ORDER BY name").fetchall()
        assert rows == [("diabetes", "vm2"), ("wine", "vm2")]
        assert con.execute("SELECT value FROM rollbackkit.meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
