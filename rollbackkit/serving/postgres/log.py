"""The prediction log in the shared store: :class:`PostgresLog`, the whole log surface.

Every ``rollbackkit serve`` replica of an environment writes its rows into one PostgreSQL
store, so gate windows, ``affected``, ``backfill``, labels and preflight's recent inputs see the
rows of every replica. It answers every call of
:class:`~rollbackkit.serving.predlog.surface.LogCalls` exactly as the DuckDB
:class:`~rollbackkit.serving.predlog.log.PredictionLog` does (same frames, dicts, counts and
errors; ``tests/test_store_contract.py`` runs one set of tests against both). Composed of
:mod:`.writer` (buffered batches off the request path), :mod:`.labels`, :mod:`.reads` and
:mod:`.lifecycle` over :mod:`.logbase`.
"""

from __future__ import annotations

from rollbackkit.serving.postgres.gatelog import PgLogGates
from rollbackkit.serving.postgres.labels import PgLogLabels
from rollbackkit.serving.postgres.lifecycle import PgLogLifecycle
from rollbackkit.serving.postgres.writer import PgLogWriter
from rollbackkit.serving.predlog.surface import PredictionStore


class PostgresLog(PgLogLifecycle, PgLogLabels, PgLogGates, PgLogWriter, PredictionStore):
    """The durable prediction log of an environment's replicas, in the shared store.

    Open a project's with :func:`~rollbackkit.serving.logs.open_log` (when ``store:`` is set).

    Args:
        store: The opened store (:func:`~rollbackkit.serving.postgres.store.open_store`).
        flush_interval: Seconds between the writer's commits.
        batch_rows: Rows that make a batch (and trigger an early commit).
        buffer_rows: The most rows held in memory while the store is away; more are dropped, counted.
        replica: This replica's id (each row's ``replica``).
    """

    dialect = "postgresql"
    """Which SQL :meth:`query` speaks (the DuckDB log has none: ``duckdb``)."""

    def close(self, wait: float = 10.0) -> int | None:
        """Write what is buffered (up to ``wait`` seconds), stop the writer, close the connections.

        Returns:
            None when everything was written, else the requests left unwritten.
        """
        try:
            return super().close(wait)
        finally:
            frames = getattr(self, "_duck_frames", None)
            if frames is not None:
                frames.close()
