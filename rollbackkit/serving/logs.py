"""Opening a project's prediction log: the DuckDB file, or the shared store when one is set.

Without a store (``store:`` in ``.rollbackkit/config.yaml`` or ``ROLLBACKKIT_STORE``) this is
:func:`rollbackkit.serving.predlog.opening.open_log`, unchanged. With one, every process (a
replica, the CLI, a notebook) opens a :class:`~rollbackkit.serving.postgres.log.PostgresLog` on
it: there is no file to own, so no writer process and no "held by the server" refusal.
(It lives here, not in ``predlog``: the store's log is built on ``predlog``, never the reverse.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from rollbackkit.errors import InvalidInput
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.postgres.store import open_store, store_url
from rollbackkit.serving.predlog import opening
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.process import LogProcess

if TYPE_CHECKING:
    from rollbackkit.serving.postgres.log import PostgresLog  # psycopg: loaded only with a store

STORE_OPTIONS = ("flush_interval", "batch_rows", "buffer_rows", "replica")
"""The options a store's log takes (the DuckDB-only ones, such as ``threads``, are ignored)."""


@overload
def open_log(
    paths: ProjectPaths, *, process: Literal[False] = False, existing: bool = False, sinks: bool = True, **options: Any
) -> PredictionLog | PostgresLog: ...


@overload
def open_log(
    paths: ProjectPaths, *, process: Literal[True], existing: bool = False, sinks: bool = True, **options: Any
) -> LogProcess | PostgresLog: ...


def open_log(
    paths: ProjectPaths, *, process: bool = False, existing: bool = False, sinks: bool = True, **options: Any
) -> PredictionLog | LogProcess | PostgresLog:
    """The project's prediction log: in the store when one is set, else the DuckDB file.

    Args:
        paths: The project's paths.
        process: Without a store, run the log in a writer process (a server). With one, ignored:
            the store's writer is a thread.
        existing: Without a store, refuse when the log file does not exist yet.
        sinks: Mirror to the sinks the config declares. A store takes no sinks: a config
            declaring both is refused (unless ``sinks`` is False: a read).
        options: Passed on to the log (with a store, only :data:`STORE_OPTIONS`).

    Raises:
        InvalidInput: see :func:`~rollbackkit.serving.predlog.opening.open_log`; or both
            ``store:`` and ``sinks:`` are configured.
        StoreError: the store is unreachable, refuses us, or was created by a newer rollbackkit.
    """
    url = store_url(paths)
    if url is None:
        return opening.open_log(paths, process=process, existing=existing, sinks=sinks, **options)  # type: ignore[call-overload,no-any-return]
    if sinks and paths.read_config().get("sinks"):
        raise InvalidInput(
            f"{paths.config_file} sets both store: and sinks:; a shared store's log mirrors to no sink.",
            "Read downstream tables from the store's predictions_production view, or remove sinks:.",
        )
    from rollbackkit.serving.postgres.log import PostgresLog

    return PostgresLog(open_store(url), **{k: v for k, v in options.items() if k in STORE_OPTIONS})
