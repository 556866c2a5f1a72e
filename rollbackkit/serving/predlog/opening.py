"""Opening a project's prediction log: the one place that does.

In this process (the CLI, notebooks, gate checks) the log is a
:class:`~rollbackkit.serving.predlog.log.PredictionLog`; a server runs it in a writer
process (:class:`~rollbackkit.serving.predlog.process.LogProcess`). Either way it is the
project's file (``ProjectPaths.prediction_log``) with the sinks ``.rollbackkit/config.yaml``
declares (``sinks:``).
"""

from __future__ import annotations

from typing import Any, Literal, overload

from rollbackkit.errors import InvalidInput
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.predlog.log import PredictionLog
from rollbackkit.serving.predlog.process import LogProcess
from rollbackkit.serving.predlog.sinks import sinks_from_config


@overload
def open_log(
    paths: ProjectPaths, *, process: Literal[False] = False, existing: bool = False, sinks: bool = True, **options: Any
) -> PredictionLog: ...


@overload
def open_log(
    paths: ProjectPaths, *, process: Literal[True], existing: bool = False, sinks: bool = True, **options: Any
) -> LogProcess: ...


def open_log(
    paths: ProjectPaths, *, process: bool = False, existing: bool = False, sinks: bool = True, **options: Any
) -> PredictionLog | LogProcess:
    """The project's prediction log.

    Args:
        paths: The project's paths.
        process: Run the log in a writer process (a server), not in this one.
        existing: Refuse when the log file does not exist yet (a read would create it).
        sinks: Mirror to the sinks the config declares; False for a read that writes nothing.
        options: Passed on to :class:`PredictionLog` or :class:`LogProcess`.

    Raises:
        InvalidInput: ``existing`` and there is no log yet, a sink is misconfigured, or
            another process holds the file.
    """
    path = paths.prediction_log
    if existing and not path.exists():
        raise InvalidInput(f"There is no prediction log at {path}.", "Serve with rollbackkit serve to create one.")
    entries = paths.read_config().get("sinks") if sinks else None
    if process:
        # The surface is forwarded by __getattr__, which the type checker cannot see as implementing it.
        return LogProcess(path, sinks=entries, **options)  # type: ignore[abstract]
    return PredictionLog(path, sinks=sinks_from_config(entries), **options)
