"""``rollbackkit audit publish``: the audit record committed to git, signed, so it outlives the machine.

The trail lives in ``audit/`` of the repository:

- ``audit/runbooks/*.ipynb``: the executed runbook notebooks (where ``runbook run`` saves them;
  one saved elsewhere is copied in under its own name);
- ``audit/journal/journal.jsonl``: the journal as it stood, line for line (its hash chain intact);
- ``audit/signing-key.pub``: the Ed25519 public key (the private one stays in ``.rollbackkit/local/``);
- ``audit/manifests/NNNNNN.json``: one signed manifest per publication: every file's sha256, the
  journal's head, the public key and the sha256 of the previous manifest (a chain).

The commit is built in a private index and moves the branch with a compare-and-swap under git's
index lock (:mod:`rollbackkit.ops.audit_commit`), so the user's staged and unstaged work is
neither committed nor touched, and a failure before the branch moves leaves nothing behind. A
journal that does not extend the published one, and a detached HEAD, are refused.
:mod:`rollbackkit.ops.audit_check` verifies a trail.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.errors import AuditTrailError, GitError
from rollbackkit.locking import repo_lock
from rollbackkit.ops.audit_commit import IndexLock, blobs, commit_files
from rollbackkit.registry.audit_keys import Signer, signer
from rollbackkit.registry.gitrepo import Git
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.journal_chain import GENESIS
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
        target = published_path(entry["notebook"])
        if found.get(target, data) != data:
            raise AuditTrailError(
                f"Two recorded notebooks would be published as {target} ({entry['notebook']} is one).",
                "Nothing was published: the journal names both, and they cannot share one path in audit/runbooks.",
            )
        found[target] = data
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


def _committed(git: Git, count: int) -> dict[str, bytes]:
    """The trail's files as HEAD holds them (the last manifest and what it lists)."""
    head, name = git.head() or "", manifest_name(count)
    listed = list(json.loads(git.blob(head, name)).get("files", {}))
    return {p: d for p, d in git.blobs(head, [*listed, name]).items() if d is not None}


def _no_links(root: Path, files: dict[str, bytes]) -> None:
    """Refuse a trail path that is, or goes through, a symbolic link (it could point outside the repository)."""
    for path in files:
        for part in [*reversed(PurePosixPath(path).parents[:-1]), PurePosixPath(path)]:
            if (root / part).is_symlink():
                raise AuditTrailError(
                    f"{part} is a symbolic link: the trail is not written through it; nothing was published.",
                    f"Remove the link ({root / part}) and publish again.",
                )


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Make the work tree hold ``files`` (never through a symbolic link)."""
    _no_links(root, files)
    for path, data in files.items():
        target = root / path
        if not (target.is_file() and target.read_bytes() == data):
            atomic_write(target, data)


def _follow(git: Git, root: Path, files: dict[str, bytes]) -> None:
    """Make the work tree and the index hold ``files`` as committed (other paths untouched)."""
    _write_tree(root, files)
    with IndexLock(git) as lock:
        lock.install(lock.stage(blobs(git, files)))


def _extends(previous: dict[str, Any] | None, entries: list[dict[str, Any]]) -> None:
    """Refuse a journal that does not extend the published one (the same entry, by hash, at its head)."""
    head = (previous or {}).get("journal")
    if not isinstance(head, dict):
        return
    seq = head.get("seq")
    mine = entries[seq - 1] if isinstance(seq, int) and 0 < seq <= len(entries) else None
    if mine is None or mine.get("hash") != head.get("hash"):
        raise AuditTrailError(
            f"This journal does not extend the published one (its entry {seq} is "
            f"{'missing' if mine is None else 'another'}); publishing would erase the published history.",
            "Publish from the machine whose journal the trail holds (a clone's journal is its own).",
        )


def _branch(git: Git, detached: bool) -> str | None:
    """The branch HEAD is on; a detached HEAD is refused unless ``detached``."""
    branch = git.run("symbolic-ref", "-q", "--short", "HEAD", check=False).decode().strip() or None
    if branch is None and not detached:
        raise AuditTrailError(
            "HEAD is detached: a trail committed here would be on no branch, and the next checkout would "
            "delete its notebooks.",
            "Check out a branch first (git switch -c audit), or pass --detached if your CI pushes the commit.",
        )
    return branch


def publish(
    repo: str | Path = ".", *, message: str | None = None, push: bool = False, detached: bool = False
) -> PublishResult:
    """Commit the executed notebooks and a signed journal export to ``audit/``; journal ``audit-published``.

    Args:
        repo: Any path inside the project.
        message: The commit message (default: one naming the journal entry and the notebooks).
        push: Push the commit to ``origin`` (to the branch HEAD is on) afterwards.
        detached: Commit on a detached HEAD (refused otherwise: the commit would be on no branch).

    Raises:
        AuditTrailError: The journal is damaged, empty or does not extend the published one, a
            recorded notebook is missing or edited, the key is unusable, HEAD is detached, or git
            refused the commit (then nothing was published); or the commit landed and what follows
            it failed (the message names the commit and what to do).
    """
    repository = Repository(repo)
    paths, git = repository.paths, repository.git
    repository.require_initialised()
    branch = _branch(git, detached)
    if push and branch is None:
        raise AuditTrailError(
            "--push needs a branch: HEAD is detached.", "Push the commit yourself, or check out a branch."
        )
    with repo_lock(paths.lock_file):
        journal = Journal(paths.journal)
        raw, entries = _journal_export(journal)
        count, previous_hash, previous = _previous(git)
        _extends(previous, entries)
        files = _notebooks(paths.root, entries)
        key = _trail_key(paths.local, previous)
        if _nothing_new(previous, files, entries):
            seq = int(previous["journal"]["seq"]) if previous else 0
            _follow(git, paths.root, _committed(git, count))  # after a crash between commit and work tree
            return PublishResult(False, None, None, 0, seq, key.fingerprint, False)
        files[JOURNAL_EXPORT] = raw
        files[PUBLIC_KEY] = base64.b64encode(key.public_key) + b"\n"
        head = entries[-1]
        name, listed = manifest_name(count + 1), len(files)
        files[name] = _signed_manifest(files, key, count + 1, head, previous_hash)
        notebooks = sum(p.startswith(RUNBOOKS) for p in files)
        text = message or f"audit: publish the trail to journal entry {head['seq']} ({notebooks} runbook notebooks)"
        _no_links(paths.root, files)
        commit, failed = _land(git, files, text)
        journal.append(
            "audit-published", commit=commit, manifest=name, files=listed, journal_seq=head["seq"],
            key=key.fingerprint, **({"index_updated": False} if failed else {}),
        )  # fmt: skip
        if failed:
            raise AuditTrailError(
                f"The trail was published in commit {commit[:12]}, but your index was not updated ({failed}): "
                "it stages the trail's deletion.",
                "Run 'rollbackkit audit publish' again before you commit anything (it updates the index).",
            )
        _updated(git, paths.root, files, commit)
    if push:
        _push(git, str(branch), commit)
    return PublishResult(True, commit, name, listed, head["seq"], key.fingerprint, push)


def _journal_export(journal: Journal) -> tuple[bytes, list[dict[str, Any]]]:
    """The journal's complete lines and their entries (one read), refused when damaged or empty."""
    journal.check_appendable()
    damage = journal.verify()
    if damage:
        raise AuditTrailError(
            f"The journal is damaged (line {damage[0].line}: {damage[0].problem}); it is not published.",
            "Run 'rollbackkit journal verify' and 'rollbackkit recover' first.",
        )
    raw = journal.path.read_bytes() if journal.path.exists() else b""
    raw = raw[: raw.rfind(b"\n") + 1]  # complete lines only: a server may be appending right now
    entries = [json.loads(line) for line in raw.splitlines()]
    if not entries:
        raise AuditTrailError("The journal is empty: there is nothing to publish.", "Register or deploy first.")
    return raw, entries


def _trail_key(local: Path, previous: dict[str, Any] | None) -> Signer:
    """This machine's signing key, which must be the published trail's (made only for a first manifest)."""
    key = signer(local, create=previous is None)  # a trail's key is never made up on the spot
    if previous is not None and previous.get("key") not in (None, key.fingerprint):
        raise AuditTrailError(
            f"The published trail is signed by key {str(previous['key'])[:16]}, and this machine's key is "
            f"{key.fingerprint[:16]} (from {key.source}).",
            "Set ROLLBACKKIT_AUDIT_KEY to the trail's private key (PEM text or file); nothing was published.",
        )
    return key


def _signed_manifest(
    files: dict[str, bytes], key: Signer, seq: int, head: dict[str, Any], previous_hash: str | None
) -> bytes:
    """Manifest ``seq``: every file's sha256, the journal's head and the previous manifest's hash, signed."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "seq": seq,
        "published": head.get("time"),
        "journal": {"file": JOURNAL_EXPORT, "seq": head["seq"], "hash": head["hash"]},
        "files": {p: _sha(d) for p, d in sorted(files.items())},
        "previous": previous_hash,
        "public_key": base64.b64encode(key.public_key).decode(),
        "key": key.fingerprint,
    }
    manifest["signature"] = key.sign(canonical(manifest))
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def _push(git: Git, branch: str, commit: str) -> None:
    """Push the trail's commit to ``origin``'s ``branch``; a failure names the commit (already published)."""
    try:
        git.run("push", "-q", "origin", f"HEAD:refs/heads/{branch}", timeout=PUSH_TIMEOUT_S)
    except GitError as exc:
        raise AuditTrailError(
            f"The trail was committed ({commit[:12]}) but not pushed: {exc.message}",
            f"Push it with 'git push origin {branch}' (or rerun with --push).",
        ) from exc


def _land(git: Git, files: dict[str, bytes], message: str) -> tuple[str, str | None]:
    """Commit ``files``, move the branch and put the user's updated index in place.

    Returns the commit and, when the index still lacks the trail after the branch moved, why.
    """
    with IndexLock(git) as lock:
        try:
            commit, staged = commit_files(git, files, message, lock)
        except GitError as exc:
            raise AuditTrailError(f"{exc.message.rstrip('.')}: nothing was published.", exc.hint) from exc
        try:
            lock.install(staged)
            return commit, None
        except OSError as exc:
            failed = exc.strerror or str(exc)
    try:  # the lock is released: git updates the index itself
        git.run("reset", "-q", "--", *files)
    except GitError as exc:
        return commit, f"{failed}; git reset: {exc.message.rstrip('.')}"
    return commit, None


def _updated(git: Git, root: Path, files: dict[str, bytes], commit: str) -> None:
    """Write the committed trail into the work tree; a failure names the commit (already published)."""
    try:
        _write_tree(root, files)
    except OSError as exc:
        raise AuditTrailError(
            f"The trail was published in commit {commit[:12]}, but its files were not written here ({exc.strerror}).",
            "Fix that, then run 'rollbackkit audit publish' again: it brings the work tree up to date.",
        ) from exc
