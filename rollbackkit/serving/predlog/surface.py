"""The prediction log's call surface, defined once.

:class:`LogCalls` lists the calls a server makes on its log. The in-process
:class:`~rollbackkit.serving.predlog.log.PredictionLog` implements them; the writer
process (:mod:`rollbackkit.serving.predlog.process`) runs exactly these (:data:`CALLS` is
its whitelist) and :class:`~rollbackkit.serving.predlog.process.LogProcess` forwards them
by name. Adding a call to the log means adding it to :class:`LogCalls` and implementing it
in ``PredictionLog``; nothing else lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS

if TYPE_CHECKING:
    from rollbackkit.serving.gate_history import GateEvaluation

Rescore = Callable[[pd.DataFrame], tuple[pd.DataFrame, str, str]]
"""Scores a frame of stored inputs; returns ``(outputs, version, bundle_id)``."""


class LogCalls(Protocol):
    """The calls a server makes on its prediction log, in this process or in the writer process."""

    def set_stage(self, deployment: str, name: str, env: str, version: str, stage: str) -> None:
        """Declare where a deployment's rows go (``staging``, ``production`` or ``shadow``)."""
        ...

    def knows(self, deployment: str) -> bool:
        """Whether a stage was ever declared for ``deployment``."""
        ...

    def stage_of(self, deployment: str) -> str:
        """``staging``, ``production`` or ``shadow`` (deployments never declared: production)."""
        ...

    def promote(self, deployment: str) -> int:
        """Move a deployment's staged rows to production; returns the rows moved."""
        ...

    def quarantine(self, name: str, env: str, version: str) -> int:
        """Mark every row the version wrote in ``env`` quarantined; returns the rows under quarantine."""
        ...

    def affected(
        self, name: str, env: str, version: str, since: str | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """Rows a version wrote in ``env`` (since ``since``): counts, time range, tables, rows."""
        ...

    def backfill(
        self, name: str, env: str, version: str, rescore: Rescore, batch: int = 5000, primary: str | None = None
    ) -> dict[str, Any]:
        """Re-score every quarantined row of ``version`` and write corrected rows to production."""
        ...

    def window(
        self,
        name: str,
        env: str,
        *,
        deployment: str | None = None,
        version: str | None = None,
        limit: int = WINDOW_ROWS,
        since: str | None = None,
        until: str | None = None,
        answered: bool = False,
        sent: bool = False,
    ) -> pd.DataFrame:
        """The latest ``limit`` rows of a deployment (or version) as a gate window, with labels
        (rows at or after ISO time ``since`` and at or before ``until``, and with ``answered`` only
        rows without an error, bounded before the limit; ``sent``: which input columns each row's
        request sent)."""
        ...

    def binned(
        self,
        name: str,
        env: str,
        column: str,
        edges: list[Any],
        start: str | None = None,
        end: str | None = None,
        windows: int = 24,
        by: str | None = None,
        versions: list[str] | None = None,
        output: bool = False,
        known: list[str] | None = None,
        cuts: list[int] | None = None,
    ) -> dict[str, Any]:
        """Counts per slice, time window and bin of one column, counted where the log lives
        (:mod:`~rollbackkit.serving.predlog.binning`)."""
        ...

    def add_labels(
        self, name: str, env: str, labels: pd.DataFrame, on: str, *, all_rows: bool = False
    ) -> dict[str, Any]:
        """Store labels for logged rows (by ``request_id``/``row`` or ``key``; a key matching more
        than 1,000 rows only with ``all_rows``), all or nothing."""
        ...

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query against the log (after flushing)."""
        ...

    def production(self, name: str | None = None) -> pd.DataFrame:
        """What downstream consumers see: the production view."""
        ...

    def record_gates(self, name: str, env: str, evaluation: GateEvaluation) -> None:
        """Store one watchdog evaluation (thinned: :mod:`rollbackkit.serving.gate_history`)."""
        ...

    def gate_history(
        self,
        name: str,
        env: str,
        since: datetime | None = None,
        until: datetime | None = None,
        version: str | None = None,
    ) -> list[GateEvaluation]:
        """The watchdog's recorded evaluations of NAME/ENV, oldest first."""
        ...

    def status(self) -> dict[str, Any]:
        """The writer's health (``write_errors``, ``last_write_error``, ``unwritten``, ``sink_errors``)."""
        ...


CALLS = frozenset(name for name, member in vars(LogCalls).items() if callable(member) and not name.startswith("_"))
"""The names of :class:`LogCalls`: what the writer process runs and :class:`LogProcess` forwards."""


class PredictionStore(LogCalls, Protocol):
    """Either log: in this process (CLI, notebooks) or in a writer process (a server)."""

    def record(self, meta: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame | None) -> None:
        """Queue one request's rows (no I/O on the caller's thread)."""
        ...

    def start(self) -> None:
        """Start writing in the background (and catch sinks up with the log first)."""
        ...
