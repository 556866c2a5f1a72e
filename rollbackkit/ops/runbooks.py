"""Runbooks (every template: rollback, deploy, incident review): papermill-executed notebooks,
saved read-only as the audit record.

A runbook is a notebook template with a cell tagged ``parameters``, written only against
the public API, so plain ``papermill`` runs it as well. :func:`run` adds what an incident
needs around papermill:

1. **Parameters are validated before anything starts**: an unknown name or a value of the
   wrong type (against the template's declared defaults) is a one-line error. Values reach
   the notebook only as literals: the cell papermill injects is parsed back and must be
   exactly ``name = <literal>`` assignments equal to the given values, so no value can
   inject code.
2. **Execution** on the ``rollbackkit`` kernel, installed into this environment on first
   use and reached over IPC (no TCP port, no transport warning), with a progress callback
   per code cell (``cell i/n: title``).
3. **The executed notebook is saved** as ``audit/runbooks/<UTC time>-<template>-<incident>
   .ipynb`` (configurable), read-only, and its sha256 goes to the journal. A failed run is
   saved too, with papermill's error cell in place and the failure recorded.
4. **Machine-readable results**: cells call :func:`record` (verdict, versions, gate
   report, counts, timings); the values are gathered into the notebook's metadata
   (``metadata.rollbackkit``) so tools read them without re-running anything.

Templates and their parameters are in :mod:`rollbackkit.ops.runbook_templates`; reading a
saved runbook's record and the audit check in :mod:`rollbackkit.ops.runbook_record`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollbackkit.cards import Card, HasCard, redacted
from rollbackkit.errors import InvalidPath, RunbookError
from rollbackkit.ops import notices
from rollbackkit.ops.runbook_record import RESULTS_MIME, display_path, failed_cell, gathered_results, runbook_card
from rollbackkit.ops.runbook_templates import check_injection, coerce_parameters, declared_parameters, template_path
from rollbackkit.project import refuse_metadata_dir
from rollbackkit.registry import people
from rollbackkit.short_text import short

KERNEL = "rollbackkit"

Progress = Callable[[int, int, str], None]
"""Called with ``(0, n, "starting the kernel")``, then before each code cell with (its number
among the code cells from 1, the number of code cells ``n``, its title: the markdown heading
just before it, else its first line of code)."""


@dataclass(frozen=True)
class RunbookResult(HasCard):
    """The outcome of one executed runbook.

    ``seconds`` is the whole run's time (kernel start to saved record), as its record and the
    journal say; None when not known. It is not part of :meth:`to_dict` (the JSON's shape).
    """

    notebook: Path
    sha256: str
    status: str
    verdict: str
    results: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"notebook", "sha256", "status", "verdict", "results", "error"}``."""
        data = {**asdict(self), "notebook": str(self.notebook)}
        del data["seconds"]
        return data

    def card(self) -> Card:
        """Its card: status, verdict, error, how long, the notebook, and the values its cells recorded."""
        shown = [(str(k), redacted(str(k), v)) for k, v in self.results.items() if k != "verdict"][:12]
        return runbook_card(
            f"Runbook {Path(self.notebook).stem}",
            self.status,
            [
                ("verdict", self.verdict),
                ("error", self.error),
                ("took", f"{self.seconds:g} s" if self.seconds is not None else None),
                ("notebook", str(self.notebook)),
                ("sha256", self.sha256[:12]),
                *((f"result {k}", short(v)) for k, v in shown),
            ],
        )


# --------------------------------------------------------------------------- inside a runbook
def record(**results: Any) -> None:
    """Record machine-readable results from inside a runbook (gathered into its metadata).

    Values must be JSON-serialisable or typed results (recorded as their ``to_dict()``).
    Later calls add keys or override earlier ones.

    Args:
        **results: The values to record, by key (``verdict`` is the runbook's verdict).

    Returns:
        None: the values are displayed as a ``RESULTS_MIME`` output, which :func:`run`
        gathers into the notebook's ``metadata.rollbackkit.results``.

    Raises:
        ImportError: IPython is not installed (``record`` runs inside a notebook kernel).
    """
    from IPython.display import display

    payload = json.loads(json.dumps(results, default=_jsonable))
    text = ", ".join(f"{k}={v}" for k, v in payload.items() if not isinstance(v, dict | list))
    display({RESULTS_MIME: payload, "text/plain": f"recorded: {text}"}, raw=True)


def _jsonable(value: Any) -> Any:
    """A typed result as its JSON dict; anything else as its text."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


# --------------------------------------------------------------------------- execution
def ensure_kernel(name: str = KERNEL) -> str:
    """Install the ``rollbackkit`` kernel into this environment if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(kernel_name=name, display_name="Python (rollbackkit)", prefix=sys.prefix)
    return name


def run(
    template: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    repo: str | Path = ".",
    audit_dir: str | Path | None = None,
    kernel: str = KERNEL,
    progress: Progress | None = None,
    timeout: float | None = 600,
) -> RunbookResult:
    """Validate, execute and save a runbook; the saved notebook is the audit record.

    Args:
        template: A template name (``rollback``, ``deploy``, ``incident_review``) or a path.
        parameters: Values for the template's declared parameters (strings are converted).
        repo: The project; the notebook runs with it as working directory.
        audit_dir: Where executed notebooks go (default: ``audit/runbooks`` in the project).
        kernel: The Jupyter kernel name.
        progress: Called with ``(0, n, "starting the kernel")``, then before each code
            cell with ``(i, n, title)`` (see :data:`Progress`).
        timeout: Seconds one cell may run.

    Returns:
        The saved notebook, its sha256, ``status`` (``ok``/``failed``), the ``verdict`` the
        notebook recorded, and all its recorded results.
    """
    from rollbackkit.registry.repository import Repository

    path = template_path(template)
    values = coerce_parameters(parameters or {}, declared_parameters(path))
    check_injection(values, kernel)
    registry = Repository(repo)
    paths = registry.paths
    if audit_dir:
        refuse_metadata_dir(Path(audit_dir), paths.root, "--audit-dir")
    folder = Path(audit_dir) if audit_dir else paths.audit / "runbooks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidPath(
            f"The audit folder {folder} cannot be created: {exc.strerror}.", "Choose a folder you can write to."
        ) from exc
    target = _audit_name(folder, path.stem, str(values.get("incident", "")))
    partial = target.with_name(f".{target.stem}.partial.ipynb")
    started = time.perf_counter()
    error = ""
    try:
        _execute(path, partial, values, kernel, paths.root, progress, timeout)
    except Exception as exc:  # papermill saved the notebook with its error cell before raising
        if not partial.exists():
            raise RunbookError(f"The runbook could not start: {exc}.", "Check the kernel and the template.") from exc
        error = _one_line(exc)
    result = _finalise(partial, target, path.stem, values, error, time.perf_counter() - started, paths)
    notices.send(paths, notices.runbook_notice(result, path.stem, values, paths.root))
    return result


def _execute(
    path: Path,
    output: Path,
    values: dict[str, Any],
    kernel: str,
    cwd: Path,
    progress: Progress | None,
    timeout: float | None,
) -> None:
    import papermill

    from rollbackkit.ops.runbook_engine import ENGINE, register

    if kernel == KERNEL:
        ensure_kernel(kernel)
    register()
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters=values,
        kernel_name=kernel,
        engine_name=ENGINE,
        progress_bar=False,
        cwd=str(cwd),
        execution_timeout=timeout,
        rollbackkit_progress=progress,
        store_widget_state=False,  # an audit record: outputs only, never ~5 MB of plotly.js per FigureWidget
    )


def _finalise(
    partial: Path,
    target: Path,
    template: str,
    values: dict[str, Any],
    error: str,
    seconds: float,
    paths: Any,
) -> RunbookResult:
    import nbformat

    from rollbackkit.locking import repo_lock
    from rollbackkit.registry.journal import Journal

    notebook = nbformat.read(str(partial), as_version=4)
    results = gathered_results(notebook)
    status = "failed" if error else "ok"
    verdict = str(results.get("verdict") or ("failed" if error else "unknown"))
    notebook.metadata["rollbackkit"] = {
        "template": template,
        "parameters": values,
        "status": status,
        "verdict": verdict,
        "error": error,
        "failed_cell": failed_cell(notebook) if error else None,
        "results": results,
        "executed": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "actor": people.actor(paths.root),
    }
    nbformat.write(notebook, str(partial))
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
        digest = hashlib.sha256(fh.read()).hexdigest()
    os.chmod(partial, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(partial, target)
    with repo_lock(paths.lock_file):
        Journal(paths.journal).append(
            "runbook",
            notebook=display_path(target, paths.root),
            sha256=digest,
            template=template,
            status=status,
            verdict=verdict,
            incident=str(values.get("incident", "")),
            seconds=round(seconds, 3),
        )
    return RunbookResult(target, digest, status, verdict, results, error, seconds=round(seconds, 3))


def _audit_name(folder: Path, template: str, incident: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", incident).strip("-.")[:64] or "no-incident"
    candidate = folder / f"{stamp}-{template}-{label}.ipynb"
    n = 2
    while candidate.exists() or candidate.with_name(f".{candidate.stem}.partial.ipynb").exists():
        candidate = folder / f"{stamp}-{template}-{label}-{n}.ipynb"
        n += 1
    return candidate


def _one_line(exc: BaseException) -> str:
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    where = f" in cell {cell}" if cell else ""
    return f"{name}{where}: {str(value).splitlines()[0] if value else ''}".strip()
