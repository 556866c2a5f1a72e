"""Rollback runbooks: papermill-executed notebooks, saved read-only as the audit record.

A runbook is a notebook template with a cell tagged ``parameters``, written only against
the public API, so plain ``papermill`` runs it as well. :func:`run` adds what an incident
needs around papermill:

1. **Parameters are validated before anything starts**: an unknown name or a value of the
   wrong type (against the template's declared defaults) is a one-line error. Values reach
   the notebook only as literals: the cell papermill injects is parsed back and must be
   exactly ``name = <literal>`` assignments equal to the given values, so no value can
   inject code.
2. **Execution** on the ``rollbackkit`` kernel, installed into this environment on first
   use, with a progress callback per cell (``cell i/n``).
3. **The executed notebook is saved** as ``audit/runbooks/<UTC time>-<template>-<incident>
   .ipynb`` (configurable), read-only, and its sha256 goes to the journal. A failed run is
   saved too, with papermill's error cell in place and the failure recorded.
4. **Machine-readable results**: cells call :func:`record` (verdict, versions, gate
   report, counts, timings); the values are gathered into the notebook's metadata
   (``metadata.rollbackkit``) so tools read them without re-running anything.
"""

from __future__ import annotations

import ast
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

from rollbackkit.errors import InvalidInput, InvalidPath, RunbookError
from rollbackkit.project import TEMPLATES as PACKAGE_TEMPLATES
from rollbackkit.project import refuse_metadata_dir
from rollbackkit.registry import people

KERNEL = "rollbackkit"
RESULTS_MIME = "application/vnd.rollbackkit.results+json"
TEMPLATES = PACKAGE_TEMPLATES / "runbooks"
_TEMPLATE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PARAM_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}

Progress = Callable[[int, int, str], None]
"""Called before each cell with (cell number from 1, number of cells, the cell's first line)."""


@dataclass(frozen=True)
class Parameter:
    """A parameter a template declares in its ``parameters`` cell."""

    name: str
    type: str
    default: Any
    help: str = ""


@dataclass(frozen=True)
class RunbookResult:
    """The outcome of one executed runbook."""

    notebook: Path
    sha256: str
    status: str
    verdict: str
    results: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"notebook", "sha256", "status", "verdict", "results", "error"}``."""
        return {**asdict(self), "notebook": str(self.notebook)}


# --------------------------------------------------------------------------- templates
def templates() -> dict[str, Path]:
    """The runbook templates shipped with rollbackkit, by name."""
    return {p.stem: p for p in sorted(TEMPLATES.glob("*.ipynb"))}


def template_path(template: str | Path) -> Path:
    """A template by name (``rollback``) or a path to a notebook with a ``parameters`` cell."""
    text = str(template)
    if _TEMPLATE_RE.fullmatch(text):
        found = templates().get(text)
        if found is None:
            raise InvalidInput(f"There is no runbook template {text!r}.", f"Use one of: {', '.join(templates())}.")
        return found
    path = Path(text)
    if path.suffix != ".ipynb" or not path.is_file():
        raise InvalidPath(f"{text} is neither a template name nor a notebook file.", "See rollbackkit runbook list.")
    return path


def declared_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a template declares: name, type, default, help.

    The type is the cell's annotation (``since: str = ""``), else the default's type.
    """
    import papermill

    declared = papermill.inspect_notebook(str(path))
    if not declared:
        raise InvalidInput(f"{path} has no cell tagged 'parameters'.", "Tag the cell that holds the defaults.")
    params = {}
    for name, info in declared.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = None
        annotated = str(info.get("inferred_type_name") or "")
        kind = annotated if annotated in _PARAM_TYPES else type(default).__name__
        kind = kind if kind in _PARAM_TYPES else "str"
        params[name] = Parameter(name, kind, default, str(info.get("help") or ""))
    return params


def coerce_parameters(given: Mapping[str, Any], declared: Mapping[str, Parameter]) -> dict[str, Any]:
    """Check names and types; strings from the command line become the declared type.

    Raises:
        InvalidInput: an unknown name, or a value that is not of (or convertible to) its type.
    """
    values: dict[str, Any] = {}
    for name, value in given.items():
        param = declared.get(name)
        if param is None:
            raise InvalidInput(f"The runbook has no parameter {name!r}.", f"Its parameters are: {', '.join(declared)}.")
        values[name] = _coerce(param, value)
    return values


def _coerce(param: Parameter, value: Any) -> Any:
    wanted = _PARAM_TYPES[param.type]
    if type(value) is wanted:
        return value
    if wanted is float and type(value) is int:
        return float(value)
    if isinstance(value, str):
        try:
            if wanted is bool:
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return wanted(value)
        except ValueError:
            pass
    raise InvalidInput(
        f"Parameter {param.name!r} must be {param.type}, got {value!r}.",
        f"Pass a {param.type} (its default is {param.default!r}).",
    )


def _check_injection(values: Mapping[str, Any], kernel: str) -> None:
    """Parse papermill's injected cell back: it must assign exactly these literals."""
    from papermill.translators import translate_parameters

    source = translate_parameters(kernel, "python", dict(values), "Parameters")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput("A parameter value cannot be passed safely.", "Remove unusual characters.") from exc
    seen = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise InvalidInput("A parameter value would have become code.", "Pass plain values only.")
        seen[node.targets[0].id] = ast.literal_eval(node.value)
    if seen != dict(values):
        raise InvalidInput("A parameter value would not reach the notebook unchanged.", "Pass plain values only.")


# --------------------------------------------------------------------------- inside a runbook
def record(**results: Any) -> None:
    """Record machine-readable results from inside a runbook (gathered into its metadata).

    Values must be JSON-serialisable or typed results (recorded as their ``to_dict()``).
    Later calls add keys or override earlier ones.
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
        progress: Called before each cell with ``(i, n, first line)``.
        timeout: Seconds one cell may run.

    Returns:
        The saved notebook, its sha256, ``status`` (``ok``/``failed``), the ``verdict`` the
        notebook recorded, and all its recorded results.
    """
    from rollbackkit.registry.store import Registry

    path = template_path(template)
    values = coerce_parameters(parameters or {}, declared_parameters(path))
    _check_injection(values, kernel)
    registry = Registry(repo)
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
    return _finalise(partial, target, path.stem, values, error, time.perf_counter() - started, paths)


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
            notebook=_display_path(target, paths.root),
            sha256=digest,
            template=template,
            status=status,
            verdict=verdict,
            incident=str(values.get("incident", "")),
            seconds=round(seconds, 3),
        )
    return RunbookResult(target, digest, status, verdict, results, error)


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


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


# --------------------------------------------------------------------------- reading the record
def gathered_results(notebook: Any) -> dict[str, Any]:
    """Every value the cells recorded with :func:`record`, later ones winning."""
    results: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULTS_MIME in data:
                payload = data[RESULTS_MIME]
                results.update(json.loads(payload) if isinstance(payload, str) else payload)
    return results


def failed_cell(notebook: Any) -> dict[str, Any] | None:
    """The first cell with an error output: ``{"execution_count", "source", "error"}``
    (``source`` is the cell's first line, ``error`` the ``Name: message`` line), or None."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue") or "")
                return {
                    "execution_count": cell.get("execution_count"),
                    "source": (cell.source.splitlines() or [""])[0][:120],
                    "error": f"{output.get('ename', 'Error')}: {value.splitlines()[0] if value else ''}".strip(),
                }
    return None


def show(path: str | Path) -> dict[str, Any]:
    """A saved runbook's record (metadata), without re-running it.

    A notebook executed by plain papermill has no metadata block; its recorded results
    are read from the cell outputs instead (and an error output makes its status
    ``failed``). A failed run's record names its ``failed_cell``.
    """
    import nbformat

    file = Path(path)
    if not file.is_file():
        raise InvalidPath(f"There is no notebook at {file}.", "See rollbackkit runbook list.")
    try:
        notebook = nbformat.read(str(file), as_version=4)
    except Exception as exc:
        raise RunbookError(f"{file} is not a readable notebook: {exc}.", "Is it an .ipynb file?") from exc
    meta = dict(notebook.metadata.get("rollbackkit", {}))
    if not meta:
        results = gathered_results(notebook)
        meta = {"status": "unknown", "verdict": str(results.get("verdict", "unknown")), "results": results}
    if meta.get("failed_cell") is None and meta.get("status") in ("failed", "unknown"):
        meta["failed_cell"] = failed_cell(notebook)
        if meta["failed_cell"] is not None:
            meta["status"] = "failed"
            meta["error"] = meta.get("error") or meta["failed_cell"]["error"]
    return {"notebook": str(file), **meta}


def executed(repo: str | Path = ".") -> list[dict[str, Any]]:
    """Runbooks executed in this project, oldest first, from the journal."""
    from rollbackkit.registry.journal import Journal
    from rollbackkit.registry.store import Registry

    paths = Registry(repo).paths
    entries = [e for e in Journal(paths.journal).entries() if e.get("event") == "runbook"]
    keys = ("notebook", "template", "status", "verdict", "incident", "time", "sha256", "seconds")
    return [{k: e.get(k) for k in keys} for e in entries]


@dataclass(frozen=True)
class AuditReport:
    """Result of :func:`verify_audit`."""

    checked: int
    problems: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        """True when every saved notebook matches its recorded hash."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """``{"ok", "checked", "problems": [{"notebook", "problem"}]}``."""
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems}


def verify_audit(repo: str | Path = ".", audit_dir: str | Path | None = None) -> AuditReport:
    """Check every executed runbook against the sha256 the journal recorded for it.

    Also reports notebooks in the audit folder that the journal does not know.
    """
    from rollbackkit.registry.store import Registry

    paths = Registry(repo).paths
    problems: list[dict[str, str]] = []
    recorded = executed(repo)
    known = set()
    for entry in recorded:
        file = Path(entry["notebook"])
        file = file if file.is_absolute() else paths.root / file
        known.add(file.resolve())
        if not file.exists():
            problems.append({"notebook": entry["notebook"], "problem": "missing"})
        elif hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append({"notebook": entry["notebook"], "problem": "edited: sha256 differs from the journal"})
    folder = Path(audit_dir) if audit_dir else paths.audit / "runbooks"
    for file in sorted(folder.glob("*.ipynb")) if folder.exists() else []:
        if file.resolve() not in known and not file.name.startswith("."):
            problems.append({"notebook": _display_path(file, paths.root), "problem": "not in the journal"})
    return AuditReport(len(recorded), problems)
