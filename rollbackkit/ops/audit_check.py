"""``rollbackkit audit verify`` of a published trail: works from a fresh clone (no journal, no local state).

Checks, in ``audit/`` of the work tree (regular files only: a symbolic link is never followed,
a file is read up to MAX_FILE_BYTES): every manifest's Ed25519 signature, its link to the
previous one and its signer (``--key``, else the first published key git's history shows);
every file the last manifest lists, by sha256; the journal export's hash chain and its head
against the manifest; that every manifest's head is still in the export and no published
notebook vanishes or changes later (append-only); each notebook the export records against its
recorded sha256; notebooks no manifest lists; commits that changed a published manifest
(:mod:`rollbackkit.ops.audit_history`). One line per problem. The trail's layout is
:mod:`rollbackkit.ops.audit_trail`'s."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.audit_history import TrailHistory, trail_history
from rollbackkit.ops.audit_trail import JOURNAL_EXPORT, MANIFESTS, RUNBOOKS, canonical, published_path
from rollbackkit.ops.runbook_record import AuditReport, verify_audit
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.audit_keys import fingerprint, verifies
from rollbackkit.registry.gitrepo import find_root
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.journal_chain import GENESIS, check_chain


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
    pinned: str | None = None  # how the signer is pinned: "--key", "the first published key", None
    listed: dict[str, str] = field(default_factory=dict)  # the last manifest's files (path -> sha256)

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
            "pinned": self.pinned,
            "problems": [vars(p) for p in self.problems],
        }


def has_trail(repo: str | Path = ".") -> bool:
    """True when the repository's work tree holds a published trail (``audit/manifests/*.json``)."""
    return any((find_root(repo) / MANIFESTS).glob("*.json"))


MAX_FILE_BYTES = 256 << 20  # a bigger file in the trail is a problem, not read


def _read(root: Path, rel: str, report: TrailReport, missing: str = "missing") -> bytes | None:
    """A regular file of the trail (no symbolic link followed, at most MAX_FILE_BYTES); None and a problem else."""
    current, mode = root, 0
    try:
        for part in PurePosixPath(rel).parts:
            current = current / part
            mode = current.lstat().st_mode
            if stat.S_ISLNK(mode):
                report.add(rel, f"{current.relative_to(root).as_posix()} is a symbolic link (not followed)")
                return None
        if not stat.S_ISREG(mode):
            report.add(rel, "is not a regular file")
            return None
        with open(os.open(current, os.O_RDONLY | os.O_NOFOLLOW), "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        report.add(rel, missing)
        return None
    except OSError as exc:
        report.add(rel, f"cannot be read ({exc.strerror})")
        return None
    if len(data) > MAX_FILE_BYTES:
        report.add(rel, f"is larger than {MAX_FILE_BYTES >> 20} MiB (not read)")
        return None
    return data


def _sha(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _names(root: Path, report: TrailReport) -> list[str]:
    """The manifests' file names (``audit/manifests`` itself must be a real folder)."""
    for folder in ("audit", MANIFESTS):
        if (root / folder).is_symlink():
            report.add(folder, "is a symbolic link (not followed)")
            return []
    try:
        return sorted(entry.name for entry in os.scandir(root / MANIFESTS) if entry.name.endswith(".json"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        report.add(MANIFESTS, f"cannot be read ({exc.strerror})")
        return []


def _manifests(
    root: Path, report: TrailReport, pin: str | None, why: str, published: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Check the chain of manifests (signature, number, link, signer); each one's content, in order.

    An unreadable manifest's content is ``{}`` (and ``report`` says why); ``published`` is the commit
    that first published a trail, whose absence is then a removal, not a trail yet to publish.
    """
    names = _names(root, report)
    report.manifests = len(names)
    if not names and published:
        report.add(
            MANIFESTS, f"the published trail is gone (published in commit {published[:12]}; restore it from git)"
        )
        return []
    if not names:
        report.add(MANIFESTS, "no published manifest: run 'rollbackkit audit publish'")
        return []
    previous, signer = GENESIS, None
    chain: list[tuple[str, dict[str, Any]]] = []
    for number, name in enumerate(names, start=1):
        where = f"{MANIFESTS}/{name}"
        raw = _read(root, where, report)
        previous_hash, previous = previous, _sha(raw) or ""
        try:
            manifest = json.loads(raw or b"")
            public = base64.b64decode(manifest["public_key"], validate=True)
            signed = verifies(public, manifest["signature"], canonical(manifest))
        except (ValueError, KeyError, TypeError, binascii.Error):
            if raw is not None:
                report.add(where, "not a readable signed manifest")
            chain.append((where, {}))
            continue
        chain.append((where, manifest))
        owner = fingerprint(public)
        if not signed or manifest.get("key") != owner:
            report.add(where, "signature does not verify (the manifest was edited)")
        if name != f"{number:06d}.json" or manifest.get("seq") != number:
            report.add(where, f"is not manifest {number} (one was removed or renamed)")
        if manifest.get("previous") != previous_hash:
            report.add(where, "does not chain to the previous manifest (one was removed, replaced or reordered)")
        if pin and not owner.startswith(pin.lower()):
            report.add(where, f"signed by key {owner[:16]}, not the expected {pin[:16]}{why}")
        elif signer is not None and owner != signer:
            report.add(where, f"signed by key {owner[:16]}, not {signer[:16]} like the manifest before it")
        signer = owner
    report.key = signer
    return chain


def _append_only(chain: list[tuple[str, dict[str, Any]]], entries: list[dict[str, Any]], report: TrailReport) -> None:
    """Every manifest's journal head is in the current export, and no published notebook vanishes or changes."""
    for (where, manifest), (later, after) in zip(chain, [*chain[1:], ("", {})], strict=True):
        head = manifest.get("journal")
        seq, digest = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else (None, None)
        if manifest and not (
            isinstance(seq, int) and 0 < seq <= len(entries) and entries[seq - 1].get("hash") == digest
        ):
            report.add(where, f"its journal head (entry {seq}) is not in the journal export: history was rewritten")
        files, kept = manifest.get("files"), after.get("files")
        if not later or not isinstance(files, dict) or not isinstance(kept, dict):
            continue
        for path, digest in sorted(files.items()):
            if str(path).startswith(RUNBOOKS) and kept.get(path) != digest:
                report.add(later, f"{'drops' if path not in kept else 'changes'} {path}, published by {where}")


def _journal(root: Path, head: dict[str, Any], report: TrailReport) -> list[dict[str, Any]]:
    """Check the journal export's chain and its last entry against the manifest's ``head``; its entries."""
    lines = (_read(root, JOURNAL_EXPORT, TrailReport()) or b"").splitlines()  # listed: its problems come from there
    chain = check_chain(lines)  # the journal's own chain rules (Journal.verify uses them too)
    for problem in chain.problems:
        report.add(JOURNAL_EXPORT, f"line {problem.line}: {problem.problem}")
    seq, prev = chain.head
    if (seq, prev) != (head.get("seq"), head.get("hash")):
        late = isinstance(head.get("seq"), int) and seq > head["seq"]
        report.add(
            JOURNAL_EXPORT,
            f"ends at entry {seq}, the manifest's head is entry {head.get('seq')} "
            f"({'written to after publishing' if late else 'truncated'})",
        )
    return chain.entries


def verify_published(
    repo: str | Path = ".", key: str | None = None, history: TrailHistory | None = None
) -> TrailReport:
    """Check the published audit trail in the work tree (see the module docstring).

    Args:
        repo: Any path inside the repository (a fresh clone will do).
        key: The expected signer's fingerprint (or a prefix of 16+ hex digits); None trusts the committed key.
        history: What git's history says (read here when not given).
    """
    if key is not None and not re.fullmatch(r"[0-9a-fA-F]{16,64}", key):
        raise InvalidInput(
            f"--key {key!r} is not a key fingerprint.", "Give 16 to 64 hex digits, as 'audit publish' printed them."
        )
    root = find_root(repo)
    report, history = TrailReport(), history or trail_history(root)
    for change in history.changes:
        report.add(change.path, f"{change.change} in commit {change.commit[:12]}: a published manifest never changes")
    pin, why = key, ""
    if key:
        report.pinned = "--key"
    elif history.first_key:
        pin, report.pinned = history.first_key, "the first published key"
        why = f" (the first published key, commit {str(history.first_commit)[:12]}; pass --key to accept another)"
    chain = _manifests(root, report, pin, why, history.published)
    manifest = chain[-1][1] if chain else {}
    if not manifest:
        return report
    files, head = manifest.get("files"), manifest.get("journal")
    if not isinstance(files, dict) or not isinstance(head, dict):
        report.add(MANIFESTS, "the last manifest has no file list or journal head")
        return report
    listed = report.listed = {str(rel): str(digest) for rel, digest in files.items()}
    report.files = len(listed)
    for rel, digest in sorted(listed.items()):
        if not rel.startswith("audit/") or ".." in rel.split("/"):
            report.add(rel, "listed outside audit/ (a forged manifest)")
        elif (found := _sha(_read(root, rel, report))) is not None and found != digest:
            report.add(rel, "edited: sha256 differs from the manifest")
    entries = _journal(root, head, report)
    _append_only(chain, entries, report)
    for entry in entries:
        if entry.get("event") == "runbook" and isinstance(entry.get("notebook"), str):
            rel = published_path(entry["notebook"])
            found = _sha(_read(root, rel, TrailReport())) if rel in listed else None
            if found is not None and found != entry.get("sha256"):
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
    folder = root / RUNBOOKS
    names = [] if folder.is_symlink() or not folder.is_dir() else sorted(os.listdir(folder))
    for rel in (f"{RUNBOOKS}/{name}" for name in names if name.endswith(".ipynb")):
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

    The published trail is checked when ``audit/manifests`` has one, ``key`` is given or git's history
    shows one was ever published (its removal is a problem); the local check is skipped in a clone
    without a journal that holds or held a published trail.
    """
    history = trail_history(find_root(repo))
    checked = key or has_trail(repo) or history.published
    published = verify_published(repo, key, history) if checked else None
    local = published is None or ProjectPaths(find_root(repo)).journal.exists()
    report = verify_audit(repo, audit_dir) if local else AuditReport(0, [])
    if published is not None:  # a published notebook is the trail's to check, against its own export
        known = [
            p for p in report.problems if p["problem"] != "not in the journal" or p["notebook"] not in published.listed
        ]
        report = AuditReport(report.checked, known)
    return AuditVerdict(report, published, not local)
