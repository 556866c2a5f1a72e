"""The store's tables: the one home of their SQL, and the idempotent migration.

Everything lives in the PostgreSQL schema :data:`SCHEMA` (connections set ``search_path`` to it,
so SQL says ``predictions``). :func:`migrate` creates what is missing under a transaction-level
advisory lock (concurrent replicas starting at once make one schema) and records
:data:`SCHEMA_VERSION` in ``meta``; a store written by a newer rollbackkit is refused.
"""

from __future__ import annotations

from typing import Any

from rollbackkit.errors import StoreError, StoreNotCreated, StoreSchemaTooNew
from rollbackkit.serving.gate_history import GATE_COLUMNS
from rollbackkit.serving.predlog.schema import ROW_COLUMNS, quote

SCHEMA = "rollbackkit"
"""The PostgreSQL schema holding every rollbackkit table."""

SCHEMA_VERSION = 2
"""The layout this rollbackkit writes; bump it with a migration step in :func:`_upgrade`
(2: ``replicas`` keyed by ``(name, env, replica)``, not by the replica alone). Only a change
an older rollbackkit cannot live with bumps it: an added table (the watchdog's
``gate_evaluations``, :data:`_ADDED`) is created where missing under the same lock, and a
reader treats it as empty where it is not there yet, so replicas on either side of an
upgrade share the store."""

ROW_TABLES = ("predictions", "predictions_staging", "predictions_shadow")
"""The tables of logged rows (same columns as the DuckDB log's, plus :data:`STORE_COLUMNS`)."""

PRODUCTION_VIEW = "predictions_production"
"""What downstream consumers read: production rows that are ``ok`` or ``backfill``."""

_PG_TYPES = {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION", "INTEGER": "INTEGER", "TIMESTAMPTZ": "TIMESTAMPTZ"}

STORE_COLUMNS: dict[str, str] = {"replica": "TEXT", "inputs_batch": "TEXT", "input_at": "INTEGER"}
"""PostgreSQL-only row columns: who wrote the row, and where its inputs are
(``log_inputs`` at ``(inputs_batch, inputs_table)``, position ``input_at`` in the blob)."""

PG_ROW_COLUMNS: dict[str, str] = {
    **{
        name: _PG_TYPES[kind] + (" NOT NULL" if name in ("request_id", "row") else "")
        for name, kind in ROW_COLUMNS.items()
    },
    **STORE_COLUMNS,
}
"""Every column of the row tables, in table order: name -> PostgreSQL type."""

_ADVISORY_KEY = "rollbackkit schema"

_ROW_INDEXES = (("name", "env", "deployment", "time"), ("name", "env", "version"), ("request_id", "row"))

_KEY_INDEX = 'CREATE INDEX IF NOT EXISTS {table}_key_hash ON {table} USING hash ("key")'
"""Keys are only ever joined on equality; a hash index holds a key of any length (a btree
entry must fit a third of a page: one long client key would make every batch with it fail)."""

_INDEXES = (
    'CREATE INDEX IF NOT EXISTS labels_name_env_request_id_row ON labels (name, env, request_id, "row", seq DESC)',
)
"""Indexes beside the tables': a row's latest label (every gate window, every label ingest)."""

_ADDED = (
    "CREATE TABLE IF NOT EXISTS gate_evaluations (" + GATE_COLUMNS.replace("VARCHAR", "TEXT") + ")",
    "CREATE INDEX IF NOT EXISTS gate_evaluations_name_env_time ON gate_evaluations (name, env, time)",
    'CREATE TABLE IF NOT EXISTS log_input_values (batch_id TEXT NOT NULL, signature TEXT NOT NULL, "column" TEXT '
    "NOT NULL, kind TEXT NOT NULL, numbers DOUBLE PRECISION[], texts TEXT[], "
    'PRIMARY KEY (batch_id, signature, "column", kind), FOREIGN KEY (batch_id, signature) '
    "REFERENCES log_inputs (batch_id, signature) ON DELETE CASCADE)",
)
"""Tables added without a schema bump (an older rollbackkit ignores them): created at every migration."""

_ADDED_TABLES = ("gate_evaluations", "log_input_values")
"""The tables :data:`_ADDED` creates: a migration skips the DDL only when every one exists."""

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log_inputs (batch_id TEXT NOT NULL, signature TEXT NOT NULL, "
    "arrow BYTEA NOT NULL, PRIMARY KEY (batch_id, signature))",
    "CREATE TABLE IF NOT EXISTS log_batches (batch_id TEXT PRIMARY KEY, rows INTEGER, written TIMESTAMPTZ, "
    "replica TEXT)",
    "CREATE TABLE IF NOT EXISTS log_deployments (deployment TEXT PRIMARY KEY, name TEXT, env TEXT, version TEXT, "
    "stage TEXT, updated TIMESTAMPTZ)",
    "CREATE TABLE IF NOT EXISTS log_quarantine (name TEXT, env TEXT, version TEXT, since TIMESTAMPTZ, "
    "PRIMARY KEY (name, env, version))",
    'CREATE TABLE IF NOT EXISTS backfill_audit (request_id TEXT, "row" INTEGER, env TEXT, name TEXT, '
    "old_version TEXT, new_version TEXT, old_outputs TEXT, new_outputs TEXT, time TIMESTAMPTZ)",
    "CREATE SEQUENCE IF NOT EXISTS label_seq",
    'CREATE TABLE IF NOT EXISTS labels (name TEXT, env TEXT, request_id TEXT, "row" INTEGER, label TEXT, '
    "received TIMESTAMPTZ, batch_id TEXT, seq BIGINT NOT NULL DEFAULT nextval('label_seq'), joined_on TEXT, "
    '"key" TEXT)',
    "CREATE TABLE IF NOT EXISTS routing (name TEXT, env TEXT, generation BIGINT NOT NULL, state JSONB NOT NULL, "
    "action TEXT NOT NULL, changed_by TEXT NOT NULL, changed_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (name, env))",
    "CREATE TABLE IF NOT EXISTS replicas (replica TEXT NOT NULL, name TEXT NOT NULL, env TEXT NOT NULL, "
    "host TEXT, pid INTEGER, url TEXT, started TIMESTAMPTZ, heartbeat TIMESTAMPTZ, generation BIGINT, "
    "serving JSONB, last_switch TIMESTAMPTZ, error TEXT, PRIMARY KEY (name, env, replica))",
    "CREATE TABLE IF NOT EXISTS watchdog (name TEXT, env TEXT, leader TEXT, since TIMESTAMPTZ, report JSONB, "
    "evaluated TIMESTAMPTZ, PRIMARY KEY (name, env))",
)


def row_table_sql(table: str) -> list[str]:
    """The statements creating one row table and its indexes."""
    columns = ", ".join(f"{quote(name)} {kind}" for name, kind in PG_ROW_COLUMNS.items())
    statements = [f"CREATE TABLE IF NOT EXISTS {table} ({columns})"]
    for index in _ROW_INDEXES:
        listed = ", ".join(quote(column) for column in index)
        statements.append(f"CREATE INDEX IF NOT EXISTS {table}_{'_'.join(index)} ON {table} ({listed})")
    statements.append(_KEY_INDEX.format(table=table))
    return statements


def migrate(con: Any, where: str = "") -> int:
    """Create the store's schema where missing (idempotent, safe to run concurrently).

    Runs in one transaction on ``con`` (a psycopg connection) under
    ``pg_advisory_xact_lock``; returns :data:`SCHEMA_VERSION`. ``where`` names the store in
    messages (its redacted URL).

    Raises:
        StoreSchemaTooNew: ``meta`` records a newer schema than this rollbackkit reads.
        StoreError: ``meta`` holds no readable schema version.
    """
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_ADVISORY_KEY,))
        found = _version(con)
        if found == SCHEMA_VERSION:
            _add(con)
            return found
        if found is not None and found > SCHEMA_VERSION:
            raise StoreSchemaTooNew(
                f"The store {where + ' ' if where else ''}was created by a newer rollbackkit "
                f"(schema {found}, this one reads {SCHEMA_VERSION}).",
                "Upgrade rollbackkit on this host (pip install -U rollbackkit), or point it at another store.",
            )
        _upgrade(con, found)
    return SCHEMA_VERSION


def check(con: Any, where: str = "") -> int:
    """The store's schema version, read only (nothing created, nothing upgraded).

    Raises:
        StoreSchemaTooNew: ``meta`` records a newer schema than this rollbackkit reads.
        StoreNotCreated: The store holds no schema yet, or an older one: a replica creates it.
    """
    found = _version(con)
    if found == SCHEMA_VERSION:
        return found
    store = f"The store {where + ' ' if where else ''}"
    if found is not None and found > SCHEMA_VERSION:
        raise StoreSchemaTooNew(
            f"{store}was created by a newer rollbackkit (schema {found}, this one reads {SCHEMA_VERSION}).",
            "Upgrade rollbackkit on this host (pip install -U rollbackkit), or point it at another store.",
        )
    held = "holds no rollbackkit schema yet" if found is None else f"holds schema {found}, older than {SCHEMA_VERSION}"
    raise StoreNotCreated(
        f"{store}{held}: no replica of this rollbackkit has started on it.",
        "Start one (rollbackkit serve NAME --env ENV creates or upgrades it); status never changes the store.",
    )


def _version(con: Any) -> int | None:
    """The schema version ``meta`` records; None when the store is new."""
    if con.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()[0] is None:
        return None
    row = con.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError:
        raise StoreError(
            f"The store's schema version {row[0]!r} (table {SCHEMA}.meta) is not a number.",
            "Repair the row key='schema_version' or point rollbackkit at another store.",
        ) from None


def _upgrade(con: Any, found: int | None) -> None:
    """Bring a store at version ``found`` (None: empty) to :data:`SCHEMA_VERSION`."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"SET LOCAL search_path TO {SCHEMA}")
    for statement in _TABLES:
        con.execute(statement)
    for table in ROW_TABLES:
        for statement in row_table_sql(table):
            con.execute(statement)
    for statement in _INDEXES:
        con.execute(statement)
    _add(con)
    _rekey_replicas(con)
    listed = ", ".join(quote(name) for name in ROW_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE VIEW {PRODUCTION_VIEW} AS SELECT {listed} FROM predictions "
        "WHERE status IN ('ok', 'backfill')"
    )
    con.execute(
        "INSERT INTO meta (key, value) VALUES ('created', now()::text) ON CONFLICT (key) DO NOTHING",
    )
    con.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (str(SCHEMA_VERSION),),
    )


def _add(con: Any) -> None:
    """Create the tables :data:`_ADDED` lists where they are missing (a store of the same schema)."""
    names = [f"{SCHEMA}.{table}" for table in _ADDED_TABLES]
    found = con.execute("SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) t", (names,)).fetchone()
    if found[0]:  # each may be missing alone: a store of the release before has gate_evaluations only
        return
    con.execute(f"SET LOCAL search_path TO {SCHEMA}")
    for statement in _ADDED:
        con.execute(statement)


_REPLICAS_KEY = "PRIMARY KEY (name, env, replica)"


def _rekey_replicas(con: Any) -> None:
    """Key a schema-1 ``replicas`` table (by the replica alone) by ``(name, env, replica)``; rows kept."""
    found = con.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'replicas'::regclass AND contype = 'p'"
    ).fetchone()
    if found is not None and found[1] == _REPLICAS_KEY:
        return
    if found is not None:
        con.execute(f'ALTER TABLE replicas DROP CONSTRAINT "{found[0]}"')
    con.execute(f"ALTER TABLE replicas ADD {_REPLICAS_KEY}")
