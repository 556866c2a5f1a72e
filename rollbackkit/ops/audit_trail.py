"""``rollbackkit audit publish``: the audit record committed to git, signed, so it outlives the machine.

The trail lives in ``audit/`` of the repository:

- ``audit/runbooks/*.ipynb``: the executed runbook notebooks (where ``runbook run`` saves them;
  one saved elsewhere is copied in under its own name);
- ``audit/journal/journal.jsonl``: the journal as it stood, line for line (its hash chain intact);
- ``audit/signing-key.pub``: the Ed25519 public key (the private one stays in ``.rollbackkit/local/``);
- ``audit/manifests/NNNNNN.json``: one signed manifest per publication: every file's sha256, the
  journal's head, the public key and the sha256 of the previous manifest (a chain).

The commit is built in a private index and moves the branch with a compare-and-swap, so the
user's staged and unstaged work is neither committed nor touched, and a failure before the
branch moves leaves nothing behind. :mod:`rollbackkit.ops.audit_check` verifies a trail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.errors import AuditTrailError, GitError
from rollbackkit.locking import repo_lock
from rollbackkit.registry.audit_keys import signer
from rollbackkit.registry.gitrepo import Git
from rollbackkit.registry.journal import GENESIS, Journal
from rollbackkit.registry.repository import Repository

RUNBOOKS = "audit/runbooks"
JOURNAL_EXPORT = "audit/journal/journal.jsonl"
PUBLIC_KEY = "audit/signing-key.pub"
MANIFESTS = "audit/manifests"
FORMAT = 1
PUSH_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PublishResult:
    """What ``audit publish`` did: ``published`` False when nothing was new (no commit made)."""

    published: bool
    commit: str | None
    manifest: str | None
    files: int
    journal_seq: int
    key: str
    pushed: bool

    def to_dict(self) -> dict[str, Any]:
        """``{"published", "commit", "manifest", "files", "journal_seq", "key", "pushed"}``."""
        return dict(vars(self))


def canonical(manifest: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: its canonical JSON without ``signature``."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def manifest_name(seq: int) -> str:
    """``audit/manifests/000007.json`` for publication 7."""
    return f"{MANIFESTS}/{seq:06d}.json"


def published_path(notebook: str) -> str:
    """Where a journal ``runbook`` entry's notebook is published (repo-relative POSIX path)."""
    path = PurePosixPath(notebook)
    if not path.is_absolute() and str(path.parent) == RUNBOOKS:
        return str(path)
    return f"{RUNBOOKS}/{path.name}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _notebooks(root: Path, entries: list[dict[str, Any]]) -> dict[str, bytes]:
    """Every notebook the journal recorded, checked against its sha256 before it is published."""
    found: dict[str, bytes] = {}
    for entry in entries:
        if entry.get("event") != "runbook" or not isinstance(entry.get("notebook"), str):
            continue
        source = Path(entry["notebook"])
        source = source if source.is_absolute() else root / source
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise AuditTrailError(
                f"The runbook notebook {entry['notebook']} the journal records cannot be read ({exc.strerror}).",
                "Run 'rollbackkit audit verify' to see the record's problems; nothing was published.",
            ) from exc
        if _sha(data) != entry.get("sha256"):
            raise AuditTrailError(
                f"{entry['notebook']} was edited after it ran (its sha256 differs from the journal's).",
                "An edited record is not published; run 'rollbackkit audit verify'.",
            )
        found[published_path(entry["notebook"])] = data
    return found


def _previous(git: Git) -> tuple[int, str, dict[str, Any] | None]:
    """The last committed manifest: its number, its sha256 and its content (0, genesis, None if none)."""
    head = git.head()
    names = sorted(git.ls_tree(head, MANIFESTS)) if head else []
    if not names:
        return 0, GENESIS, None
    raw = git.blob(head or "", names[-1])
    try:
        content = json.loads(raw)
    except ValueError:
        content = None
    return len(names), _sha(raw), content if isinstance(content, dict) else None


def _nothing_new(previous: dict[str, Any] | None, files: dict[str, bytes], entries: list[dict[str, Any]]) -> bool:
    """True when the last manifest already lists these notebooks and only ``audit-published`` followed it."""
    if previous is None:
        return False
    listed = {p: h for p, h in previous.get("files", {}).items() if p.startswith(RUNBOOKS)}
    if listed != {p: _sha(d) for p, d in files.items() if p.startswith(RUNBOOKS)}:
        return False
    seq = int(previous.get("journal", {}).get("seq", -1))
    return all(e.get("event") == "audit-published" for e in entries if int(e.get("seq", 0)) > seq)


def _commit(git: Git, files: dict[str, bytes], message: str) -> str:
    """Commit exactly ``files`` on top of HEAD from a private index; the branch moves only if HEAD did not."""
    parent = git.head()
    with tempfile.TemporaryDirectory(prefix="rollbackkit-audit-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("read-tree", *([parent] if parent else ["--empty"]), env=env)
        for path, data in files.items():
            blob = git.run("hash-object", "-w", "--stdin", input=data).decode().strip()
            git.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git.run("write-tree", env=env).decode().strip()
        commit = git.run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message).decode().strip()
    git.run("update-ref", "-m", "rollbackkit audit publish", "HEAD", commit, *([parent] if parent else []))
    return commit


def _committed(git: Git, count: int) -> dict[str, bytes]:
    """The trail's files as HEAD holds them (the last manifest and what it lists)."""
    head, name = git.head() or "", manifest_name(count)
    listed = list(json.loads(git.blob(head, name)).get("files", {}))
    return {p: d for p, d in git.blobs(head, [*listed, name]).items() if d is not None}


def _follow(git: Git, root: Path, files: dict[str, bytes]) -> None:
    """Make the work tree and the index hold ``files`` as committed (other paths untouched)."""
    for path, data in files.items():
        target = root / path
        if not (target.is_file() and target.read_bytes() == data):
            atomic_write(target, data)
    git.run("reset", "-q", "--", *files)


def publish(repo: str | Path = ".", *, message: str | None = None, push: bool = False) -> PublishResult:
    """Commit the executed notebooks and a signed journal export to ``audit/``; journal ``audit-published``.

    Args:
        repo: Any path inside the project.
        message: The commit message (default: one naming the journal entry and the notebooks).
        push: Push the commit to ``origin`` afterwards.

    Raises:
        AuditTrailError: The journal is damaged or empty, a recorded notebook is missing or edited,
            the key is unusable, or git refused the commit (then nothing was published).
    """
    repository = Repository(repo)
    paths, git = repository.paths, repository.git
    repository.require_initialised()
    with repo_lock(paths.lock_file):
        journal = Journal(paths.journal)
        journal.check_appendable()
        damage = journal.verify()
        if damage:
            raise AuditTrailError(
                f"The journal is damaged (line {damage[0].line}: {damage[0].problem}); it is not published.",
                "Run 'rollbackkit journal verify' and 'rollbackkit recover' first.",
            )
        raw = journal.path.read_bytes() if journal.path.exists() else b""
        raw = raw[: raw.rfind(b"\n") + 1]  # complete lines only: a server may be appending right now
        entries = [json.loads(line) for line in raw.splitlines()]  # the export and its head: one read
        if not entries:
            raise AuditTrailError("The journal is empty: there is nothing to publish.", "Register or deploy first.")
        key = signer(paths.local)
        files = _notebooks(paths.root, entries)
        count, previous_hash, previous = _previous(git)
        if previous is not None and previous.get("key") not in (None, key.fingerprint):
            raise AuditTrailError(
                f"The published trail is signed by key {str(previous['key'])[:16]}, and this machine's key is "
                f"{key.fingerprint[:16]} (from {key.source}).",
                "Set ROLLBACKKIT_AUDIT_KEY to the trail's private key (PEM text or file); nothing was published.",
            )
        if _nothing_new(previous, files, entries):
            seq = int(previous["journal"]["seq"]) if previous else 0
            _follow(git, paths.root, _committed(git, count))  # after a crash between commit and work tree
            return PublishResult(False, None, None, 0, seq, key.fingerprint, False)
        files[JOURNAL_EXPORT] = raw
        files[PUBLIC_KEY] = base64.b64encode(key.public_key) + b"\n"
        head = entries[-1]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "seq": count + 1,
            "published": head.get("time"),
            "journal": {"file": JOURNAL_EXPORT, "seq": head["seq"], "hash": head["hash"]},
            "files": {p: _sha(d) for p, d in sorted(files.items())},
            "previous": previous_hash,
            "public_key": base64.b64encode(key.public_key).decode(),
            "key": key.fingerprint,
        }
        manifest["signature"] = key.sign(canonical(manifest))
        name = manifest_name(count + 1)
        files[name] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        notebooks = sum(p.startswith(RUNBOOKS) for p in files)
        text = message or f"audit: publish the trail to journal entry {head['seq']} ({notebooks} runbook notebooks)"
        try:
            commit = _commit(git, files, text)
        except GitError as exc:
            raise AuditTrailError(f"{exc.message[:-1]}: nothing was published.", exc.hint) from exc
        _follow(git, paths.root, files)
        journal.append(
            "audit-published", commit=commit, manifest=name, files=len(files), journal_seq=head["seq"],
            key=key.fingerprint,
        )  # fmt: skip
    pushed = False
    if push:
        try:
            git.run("push", "-q", "origin", "HEAD", timeout=PUSH_TIMEOUT_S)
        except GitError as exc:
            raise AuditTrailError(
                f"The trail was committed ({commit[:12]}) but not pushed: {exc.message}",
                "Push it with 'git push origin HEAD' (or rerun with --push) once origin answers.",
            ) from exc
        pushed = True
    return PublishResult(True, commit, name, len(files), head["seq"], key.fingerprint, pushed)
