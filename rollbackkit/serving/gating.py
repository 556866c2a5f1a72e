"""Gates over what was logged: a version's gates evaluated over a window file or its rows in the log.

The evaluation itself is pure (:func:`rollbackkit.analysis.gates.evaluate`); this module
finds the version in the registry and reads its window from the prediction log.
"""

from __future__ import annotations

from pathlib import Path

from rollbackkit.analysis.gates import GateReport, evaluate
from rollbackkit.errors import InvalidInput
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.predlog.opening import open_log


def evaluate_logged(
    registry: Repository, ref: str, *, window: str | Path | None = None, env: str | None = None
) -> GateReport:
    """Evaluate ``ref``'s gates over a window file, or over its latest rows in ``env``'s log.

    Args:
        registry: The project's repository.
        ref: ``NAME@VERSION``.
        window: A Parquet/CSV window (exclusive with ``env``).
        env: Read the window from the prediction log (the version's latest rows, as many
            as a served window holds).
    """
    if window is not None and env is None:
        return evaluate(describe(registry, resolve(registry, ref)), window)
    if env is None or window is not None:
        raise InvalidInput("Give exactly one of --window PATH or --env ENV.", "See rollbackkit gates check --help.")
    bundle = describe(registry, resolve(registry, ref))
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        frame = log.window(bundle.name, validate_name(env, "environment name"), version=bundle.version)
    finally:
        log.close()
    return evaluate(bundle, frame)
