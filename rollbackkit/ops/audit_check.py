"""``rollbackkit audit verify`` of a published trail: works from a fresh clone (no journal, no local state).

Checks, in ``audit/`` of the work tree: every manifest's Ed25519 signature and its link to the
previous one (and, with ``--key``, the signer's fingerprint); every file the last manifest lists,
by sha256; the journal export's hash chain and its head against the manifest; each notebook the
journal export records against its recorded sha256; notebooks no manifest lists. One line per
problem. The trail's layout is :mod:`rollbackkit.ops.audit_trail`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.audit_trail import JOURNAL_EXPORT, MANIFESTS, RUNBOOKS, canonical, published_path
from rollbackkit.ops.runbook_record import AuditReport, verify_audit
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.audit_keys import fingerprint, verifies
from rollbackkit.registry.gitrepo import find_root
from rollbackkit.registry.journal import GENESIS, Journal, _digest


@dataclass(frozen=True)
class TrailProblem:
    """One problem of a published trail: the file it is in and what is wrong, one line."""

    path: str
    problem: str


@dataclass
class TrailReport:
    """Result of :func:`verify_published`."""

    manifests: int = 0
    files: int = 0
    key: str | None = None
    problems: list[TrailProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the trail is intact."""
        return not self.problems

    def add(self, path: str, problem: str) -> None:
        """Record one problem."""
        self.problems.append(TrailProblem(path, problem))

    def to_dict(self) -> dict[str, Any]:
        """``{"ok", "manifests", "files", "key", "problems": [{"path", "problem"}]}``."""
        return {
            "ok": self.ok,
            "manifests": self.manifests,
            "files": self.files,
            "key": self.key,
            "problems": [vars(p) for p in self.problems],
        }


def has_trail(repo: str | Path = ".") -> bool:
    """True when the repository's work tree holds a published trail (``audit/manifests/*.json``)."""
    return any((find_root(repo) / MANIFESTS).glob("*.json"))


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _manifests(root: Path, report: TrailReport, key: str | None) -> dict[str, Any] | None:
    """Check the chain of manifests; the last one's content (None when none is readable)."""
    names = sorted((root / MANIFESTS).glob("*.json"))
    report.manifests = len(names)
    if not names:
        report.add(MANIFESTS, "no published manifest: run 'rollbackkit audit publish'")
        return None
    previous, signer, last = GENESIS, None, None
    for number, path in enumerate(names, start=1):
        where = f"{MANIFESTS}/{path.name}"
        raw = path.read_bytes()
        previous_hash, previous = previous, hashlib.sha256(raw).hexdigest()
        try:
            manifest = json.loads(raw)
            public = base64.b64decode(manifest["public_key"], validate=True)
            signed = verifies(public, manifest["signature"], canonical(manifest))
        except (ValueError, KeyError, TypeError, binascii.Error):
            report.add(where, "not a readable signed manifest")
            last = None
            continue
        last = manifest
        owner = fingerprint(public)
        if not signed or manifest.get("key") != owner:
            report.add(where, "signature does not verify (the manifest was edited)")
        if path.name != f"{number:06d}.json" or manifest.get("seq") != number:
            report.add(where, f"is not manifest {number} (one was removed or renamed)")
        if manifest.get("previous") != previous_hash:
            report.add(where, "does not chain to the previous manifest (one was removed, replaced or reordered)")
        if key and not owner.startswith(key.lower()):
            report.add(where, f"signed by key {owner[:16]}, not the expected {key[:16]}")
        elif signer is not None and owner != signer:
            report.add(where, f"signed by key {owner[:16]}, not {signer[:16]} like the manifest before it")
        signer = owner
    report.key = signer
    return last


def _journal(root: Path, head: dict[str, Any], report: TrailReport) -> list[dict[str, Any]]:
    """Check the journal export's chain and its last entry against the manifest's ``head``; its entries."""
    path = root / JOURNAL_EXPORT
    lines = path.read_bytes().splitlines() if path.is_file() else []
    entries, prev, seq = [], GENESIS, 0
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            report.add(JOURNAL_EXPORT, f"line {number} is not valid JSON")
            continue
        if not isinstance(entry, dict):
            report.add(JOURNAL_EXPORT, f"line {number} is not a journal entry")
            continue
        if entry.get("hash") != _digest(entry):
            report.add(JOURNAL_EXPORT, f"line {number}: content does not match its hash (edited)")
        if entry.get("prev") != prev or entry.get("seq") != seq + 1:
            report.add(JOURNAL_EXPORT, f"line {number}: does not follow the line before it (deleted or reordered)")
        prev, seq = str(entry.get("hash")), seq + 1
        entries.append(entry)
    if (seq, prev) != (head.get("seq"), head.get("hash")):
        report.add(JOURNAL_EXPORT, f"ends at entry {seq}, the manifest's head is entry {head.get('seq')} (truncated)")
    return entries


def verify_published(repo: str | Path = ".", key: str | None = None) -> TrailReport:
    """Check the published audit trail in the work tree (see the module docstring).

    Args:
        repo: Any path inside the repository (a fresh clone will do).
        key: The expected signer's fingerprint (or a prefix of 16+ hex digits); None trusts the committed key.
    """
    if key is not None and not re.fullmatch(r"[0-9a-fA-F]{16,64}", key):
        raise InvalidInput(
            f"--key {key!r} is not a key fingerprint.", "Give 16 to 64 hex digits, as 'audit publish' printed them."
        )
    root = find_root(repo)
    report = TrailReport()
    manifest = _manifests(root, report, key)
    if manifest is None:
        return report
    files, head = manifest.get("files"), manifest.get("journal")
    if not isinstance(files, dict) or not isinstance(head, dict):
        report.add(MANIFESTS, "the last manifest has no file list or journal head")
        return report
    listed = {str(rel): str(digest) for rel, digest in files.items()}
    report.files = len(listed)
    for rel, digest in sorted(listed.items()):
        if not rel.startswith("audit/") or ".." in rel.split("/"):
            report.add(rel, "listed outside audit/ (a forged manifest)")
        elif (found := _sha(root / rel)) is None:
            report.add(rel, "missing")
        elif found != digest:
            report.add(rel, "edited: sha256 differs from the manifest")
    entries = _journal(root, head, report)
    for entry in entries:
        if entry.get("event") == "runbook" and isinstance(entry.get("notebook"), str):
            rel = published_path(entry["notebook"])
            found = _sha(root / rel)
            if found is not None and found != entry.get("sha256") and rel in listed:
                report.add(rel, "edited: sha256 differs from the journal's runbook entry")
            elif rel not in listed:
                report.add(rel, "recorded in the journal export but not in the manifest")
    _unlisted(root, listed, report)
    return report


def _unlisted(root: Path, listed: dict[str, str], report: TrailReport) -> None:
    """Notebooks in ``audit/runbooks`` no manifest lists (one run since the last publish is not a problem)."""
    local = Journal(ProjectPaths(root).journal)
    recorded = {
        published_path(e["notebook"])
        for e in local.entries()
        if e.get("event") == "runbook" and isinstance(e.get("notebook"), str)
    }
    for path in sorted((root / RUNBOOKS).glob("*.ipynb")):
        rel = f"{RUNBOOKS}/{path.name}"
        if rel not in listed and rel not in recorded:
            report.add(rel, "not in the published manifest nor in this machine's journal")


@dataclass(frozen=True)
class AuditVerdict:
    """What ``rollbackkit audit verify`` found: the local check and, when there is one, the published trail's."""

    local: AuditReport
    published: TrailReport | None
    local_skipped: bool = False

    @property
    def ok(self) -> bool:
        """True when both checks pass."""
        return self.local.ok and (self.published is None or self.published.ok)

    def to_dict(self) -> dict[str, Any]:
        """The local check's ``{"ok", "checked", "problems"}``, plus ``"published"`` when a trail was checked."""
        published = {"published": self.published.to_dict()} if self.published is not None else {}
        return {**self.local.to_dict(), "ok": self.ok, **published}


def verify_audit_trail(
    repo: str | Path = ".", audit_dir: str | Path | None = None, key: str | None = None
) -> AuditVerdict:
    """The local check (notebooks against this machine's journal) and the published trail's.

    The published trail is checked when ``audit/manifests`` has one or ``key`` is given; the local
    check is skipped in a clone without a journal that holds a published trail.
    """
    published = verify_published(repo, key) if key or has_trail(repo) else None
    local = published is None or ProjectPaths(find_root(repo)).journal.exists()
    return AuditVerdict(verify_audit(repo, audit_dir) if local else AuditReport(0, []), published, not local)
