"""The shared PostgreSQL store: N ``rollbackkit serve`` replicas acting as one environment.

``store: postgresql://...`` in ``.rollbackkit/config.yaml`` (or ``ROLLBACKKIT_STORE``) puts the
prediction log, labels, quarantine, backfill records, recent inputs, gate windows and the live
routing state in one PostgreSQL database, in the schema ``rollbackkit``. Without a store nothing
here is used: the DuckDB log and per-process routing stay the default.

- :mod:`.store`: the setting, connections, and psycopg errors as one-line :class:`StoreError`.
- :mod:`.schema`: the tables (one home of their SQL) and the idempotent migration.
- The prediction log (:class:`.log.PostgresLog`, the DuckDB log's surface): :mod:`.logbase`,
  :mod:`.writer` and :mod:`.rows` (the write side), :mod:`.encode` (what a row stores),
  :mod:`.labels`, :mod:`.reads` and :mod:`.frames` (answers as the DuckDB log's frames),
  :mod:`.lifecycle` (promote, quarantine, backfill, prune).
- Replicas as one environment: :mod:`.routing` (the published routing state, LISTEN/NOTIFY),
  :mod:`.replicas` (heartbeats), :mod:`.leader` (one watchdog, an advisory lock).
"""
