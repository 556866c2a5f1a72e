"""What git's history says about a published audit trail (``rollbackkit audit verify``).

The work tree can be made self-consistent by anyone who re-signs every manifest with a new key,
and a revert of the last publish deletes its manifest. Git's history cannot be rewritten that
quietly in a clone: the first commit that added ``audit/signing-key.pub`` pins the signer
(trust on first use), and a published manifest is never modified, deleted or renamed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

from rollbackkit.errors import GitError
from rollbackkit.ops.audit_trail import MANIFESTS, PUBLIC_KEY
from rollbackkit.registry.audit_keys import fingerprint
from rollbackkit.registry.gitrepo import Git

CHANGES = {"D": "deleted", "M": "modified", "R": "renamed", "T": "replaced"}


@dataclass(frozen=True)
class ManifestChange:
    """A commit that changed a published manifest (``change``: deleted, modified, renamed)."""

    path: str
    change: str
    commit: str


@dataclass(frozen=True)
class TrailHistory:
    """The first published signer (``first_key`` added in ``first_commit``) and every manifest change.

    ``published`` is the first commit that added a manifest or the signing key (None: never published).
    """

    first_key: str | None = None
    first_commit: str | None = None
    changes: list[ManifestChange] = field(default_factory=list)
    published: str | None = None


def trail_history(root: Path) -> TrailHistory:
    """Read HEAD's ancestry (empty when there is no commit or git cannot tell)."""
    git = Git(root)
    try:
        if git.head() is None:
            return TrailHistory()
        added = git.run("log", "--format=%H", "--reverse", "--diff-filter=A", "--", PUBLIC_KEY).decode().split()
        first = added[0] if added else None
        key = fingerprint(base64.b64decode(git.blob(first, PUBLIC_KEY).strip(), validate=True)) if first else None
        ever = git.run("log", "--format=%H", "--diff-filter=A", "--", MANIFESTS, PUBLIC_KEY).decode().split()
        log = git.run("log", "--format=>%H", "--name-status", "--diff-filter=DMRT", "--", MANIFESTS).decode()
    except (GitError, ValueError, binascii.Error):
        return TrailHistory()
    changes, commit = [], ""
    for line in log.splitlines():
        if line.startswith(">"):
            commit = line[1:]
        elif "\t" in line:
            status, path = line.split("\t")[0], line.split("\t")[1]
            changes.append(ManifestChange(path, CHANGES.get(status[:1], "changed"), commit))
    return TrailHistory(key, first, changes, ever[-1] if ever else None)
