"""The prediction log: staging vs production, quarantine, backfill (:class:`PredictionLog`).

Every scored row is logged to a DuckDB file (``.rollbackkit/local/predictions.duckdb`` by
default) with request id, row, time, environment, version, bundle id, slot, deployment
(the assignment tag), input hash (DuckDB's 64-bit hash of the row's input values, in hex:
equal inputs, equal hash), outputs (JSON, typed: text, booleans, integers, floats; see
:func:`decode_outputs`), the primary output (``primary_output``: a numeric copy of a
numeric or boolean primary, null for a text label), latency and error.

- **Inputs, typed and exact.** A row's inputs go to a typed table per input signature
  (``inputs_<hash of column names and dtypes>``), keyed by ``(request_id, row)`` and named
  in the row's ``inputs_table``. Floats round-trip bit for bit, so a backfill re-scores
  exactly what the bad version saw, and gate windows read features without parsing JSON.
- **Off the request path.** :meth:`PredictionLog.record` only appends the request's frames
  to a queue. A writer thread commits one DuckDB transaction per batch, every
  ``flush_interval`` seconds or ``batch_rows`` rows, built as one Arrow table per input
  signature (DuckDB scans Arrow without sniffing object columns). Each batch records its row count in
  ``log_batches`` in the same transaction, so a half-written batch never exists. A server
  runs this class in its own process (:mod:`rollbackkit.serving.predlog.process`), so the writer's
  work never competes with scoring for the GIL.
- **Durability bound.** A crash (``kill -9``) of the writer loses at most what was queued
  and not yet committed: the requests of the last ``flush_interval`` seconds (0.2 s by
  default here, 0.5 s in a server's writer process), at most ``batch_rows`` rows, plus
  the batch being committed at that instant.
  Committed batches survive and the file is never left corrupted (DuckDB's write-ahead
  log). A ``kill -9`` of a server alone loses only its last hand-over (0.05 s): its writer
  process commits the rest, then exits. Both tested.
- **Staging vs production.** Rows of a deployment under evaluation (a canary, or a fresh
  deploy until its gates have passed for the bake time) land in ``predictions_staging``;
  :meth:`promote` moves them to ``predictions`` in one transaction. Downstream consumers
  read the view ``predictions_production``: never a staged, quarantined or superseded row.
- **Quarantine and backfill.** A rollback marks every row of the bad version
  ``quarantined`` (never deleted); :meth:`affected` lists them. :meth:`backfill` re-scores
  their stored inputs with the version now serving, writes corrected rows (status
  ``backfill``, ``replaces`` = ``request_id:row``) to production one transaction per batch,
  records old -> new per row in ``backfill_audit`` and marks the originals ``backfilled``.
  Running it again changes nothing.
- **Retention.** Inputs live as long as their rows: forever unless you call
  :meth:`prune`, which never drops a quarantined row that still awaits its backfill.
- **Sinks.** User-owned downstream tables (:mod:`rollbackkit.serving.predlog.sinks`) get every committed
  batch, promote, quarantine and backfill under the same contract; a sink that missed
  batches (crash, outage) is caught up from the log by batch id, exactly once.

DuckDB allows one writing process per file: while a server runs, the CLI asks it (admin
API) for ``affected`` and ``backfill``; otherwise it opens the file itself. Past one
machine, :meth:`export_parquet` writes the log as Parquet for DuckDB or Dask.

The class is composed of one module per job: :mod:`~rollbackkit.serving.predlog.schema`
(tables and columns), :mod:`~rollbackkit.serving.predlog.database` (the file and its
transactions), :mod:`~rollbackkit.serving.predlog.writer` with
:mod:`~rollbackkit.serving.predlog.batches` (queue, batches, sinks),
:mod:`~rollbackkit.serving.predlog.queries` (reads),
:mod:`~rollbackkit.serving.predlog.lifecycle` (promote, quarantine, backfill, prune) and
:mod:`~rollbackkit.serving.predlog.labels` (labels that arrive later, joined when a window is read).
"""

from __future__ import annotations

from rollbackkit.serving.predlog.gatelog import LogGates
from rollbackkit.serving.predlog.labels import LogLabels
from rollbackkit.serving.predlog.lifecycle import LogLifecycle
from rollbackkit.serving.predlog.surface import PredictionStore


class PredictionLog(LogLifecycle, LogLabels, LogGates, PredictionStore):
    """The durable prediction log of one project, in this process.

    Open a project's log with :func:`~rollbackkit.serving.predlog.opening.open_log`; it
    implements the log's call surface (:class:`~rollbackkit.serving.predlog.surface.LogCalls`).

    Args:
        path: The DuckDB file.
        flush_interval: Seconds between writer flushes.
        batch_rows: Rows that trigger an early flush (and bound a crash's loss).
        sinks: Downstream tables that mirror the staging/production contract.
        lock_wait: Seconds to wait for another process to release the file (a server's
            writer process finishing its last batch after the server stopped).
        threads: DuckDB's worker threads (None: one per core). A server's log uses one,
            so that it never takes the core a request is scored on.

    A batch the writer cannot commit (inputs or outputs neither Arrow nor DuckDB can
    store, such as complex numbers) is rolled back whole and written again one request
    at a time: only the requests that cannot be stored are lost, each logged, listed in
    ``write_errors`` and counted in :meth:`status` (``unwritten``). The writer goes on.
    """
