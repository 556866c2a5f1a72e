"""The record a runbook leaves: its results, its failed cell, the journal's list, the audit check.

Cells record results as outputs of type :data:`RESULTS_MIME`
(:func:`rollbackkit.ops.runbooks.record`); the executed notebook keeps them in its metadata
(``metadata.rollbackkit``), its sha256 is in the journal, and :func:`verify_audit` checks
every saved notebook against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import InvalidPath, RunbookError

RESULTS_MIME = "application/vnd.rollbackkit.results+json"


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project ``root`` when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def gathered_results(notebook: Any) -> dict[str, Any]:
    """Every value the cells recorded with :func:`rollbackkit.ops.runbooks.record`, later ones winning."""
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


RECORD_KEYS = ("notebook", "template", "status", "verdict", "incident", "time", "sha256", "seconds")


@dataclass(frozen=True)
class RunbookRecord(HasCard, Mapping[str, Any]):
    """One executed runbook as the journal records it.

    Attributes:
        notebook: The executed notebook's path (relative to the project when inside it).
        template: The runbook template (``rollback``, ``investigate``, ...).
        status: ``succeeded`` or ``failed``.
        verdict: What the runbook concluded.
        incident: The incident it ran for ("" or None: none).
        time: When it ran (ISO 8601, UTC).
        sha256: The saved notebook's hash (:func:`verify_audit` checks it).
        seconds: How long the run took (None: not recorded).

    It is also a read-only mapping (``record["time"]``, ``record.get("incident")``), the shape
    :func:`executed` returned before.
    """

    notebook: str | None = None
    template: str | None = None
    status: str | None = None
    verdict: str | None = None
    incident: str | None = None
    time: str | None = None
    sha256: str | None = None
    seconds: float | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in RECORD_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(RECORD_KEYS)

    def __len__(self) -> int:
        return len(RECORD_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit runbook list --json``)."""
        return asdict(self)

    def card(self) -> Card:
        """Its card: template, status, verdict, incident, when, how long, the notebook."""
        return runbook_card(
            f"Runbook {self.template or '?'}",
            self.status,
            [
                ("verdict", self.verdict),
                ("incident", self.incident),
                ("when", self.time),
                ("took", f"{self.seconds:g} s" if isinstance(self.seconds, int | float) else None),
                ("notebook", self.notebook),
                ("sha256", (self.sha256 or "")[:12]),
            ],
        )


def runbook_card(title: str, status: str | None, fields: list[tuple[str, Any]]) -> Card:
    """A runbook's card (a journal record or a run's result)."""
    return Card(title, status=status or None, fields=fields, css="rollbackkit-runbook-card")


def executed(repo: str | Path = ".") -> list[RunbookRecord]:
    """Runbooks executed in this project, oldest first, from the journal."""
    from rollbackkit.registry.journal import Journal
    from rollbackkit.registry.repository import Repository

    paths = Repository(repo).paths
    entries = [e for e in Journal(paths.journal).entries() if e.get("event") == "runbook"]
    return [RunbookRecord(**{k: e.get(k) for k in RECORD_KEYS}) for e in entries]


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
    from rollbackkit.registry.repository import Repository

    paths = Repository(repo).paths
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
            problems.append({"notebook": display_path(file, paths.root), "problem": "not in the journal"})
    return AuditReport(len(recorded), problems)
