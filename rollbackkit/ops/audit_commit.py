"""How ``audit publish`` commits: a private index, a compare-and-swap on HEAD, git's index lock held.

The user's index is never read into the commit: the commit is HEAD's tree plus the trail's files.
The user's next index (theirs, plus the trail's files as committed) is built beside git's own
``index.lock`` before the branch moves and renamed into place right after, so it never stages
the trail's deletion.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rollbackkit.errors import AuditTrailError
from rollbackkit.registry.gitrepo import Git


def blobs(git: Git, files: dict[str, bytes]) -> dict[str, str]:
    """Write ``files`` into git's object store: their blob ids."""
    return {path: git.run("hash-object", "-w", "--stdin", input=data).decode().strip() for path, data in files.items()}


def _add(git: Git, index: Path, ids: dict[str, str]) -> None:
    """Stage the blobs ``ids`` (path -> blob id) in the index file ``index``."""
    for path, blob in ids.items():
        git.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env={"GIT_INDEX_FILE": str(index)})


def _tree(git: Git, base: str | None, ids: dict[str, str]) -> str:
    """The tree of commit ``base`` plus the blobs ``ids``."""
    with tempfile.TemporaryDirectory(prefix="rollbackkit-audit-") as tmp:
        index = Path(tmp) / "index"
        git.run("read-tree", *([base] if base else ["--empty"]), env={"GIT_INDEX_FILE": str(index)})
        _add(git, index, ids)
        return git.run("write-tree", env={"GIT_INDEX_FILE": str(index)}).decode().strip()


class IndexLock:
    """Git's own lock on the user's index (``index.lock``), held while HEAD moves under it.

    The new index (the user's, plus the trail's files as committed) is built beside it before
    the branch moves, then renamed into place: the index never stages the trail's deletion.
    """

    def __init__(self, git: Git) -> None:
        self.index = Path(git.run("rev-parse", "--path-format=absolute", "--git-path", "index").decode().strip())
        self.lock = self.index.with_name(self.index.name + ".lock")
        self.git = git

    def __enter__(self) -> IndexLock:
        try:
            os.close(os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise AuditTrailError(
                f"Git is busy: {self.lock} exists (another git command holds the index); nothing was published.",
                f"Wait for it to finish (or remove {self.lock} if no git is running), then publish again.",
            ) from None
        return self

    def stage(self, ids: dict[str, str]) -> Path:
        """The user's index plus the blobs ``ids``, written to a file beside the lock (not yet in place)."""
        staged = self.index.with_name("rollbackkit-audit-index")
        if self.index.exists():
            shutil.copyfile(self.index, staged)
        else:
            staged.unlink(missing_ok=True)
            self.git.run("read-tree", "--empty", env={"GIT_INDEX_FILE": str(staged)})
        _add(self.git, staged, ids)
        return staged

    def install(self, staged: Path) -> None:
        """Put ``staged`` in place of the index (git's lock protocol: via ``index.lock``)."""
        os.replace(staged, self.lock)
        os.replace(self.lock, self.index)

    def __exit__(self, *exc: object) -> None:
        self.lock.unlink(missing_ok=True)
        self.index.with_name("rollbackkit-audit-index").unlink(missing_ok=True)


def commit_files(git: Git, files: dict[str, bytes], message: str, lock: IndexLock) -> tuple[str, Path]:
    """Commit exactly ``files`` on top of HEAD; the branch moves only if HEAD did not (compare-and-swap).

    Returns the commit and the user's next index (staged, put in place by the caller).
    """
    parent, written = git.head(), blobs(git, files)
    tree = _tree(git, parent, written)
    commit = git.run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message).decode().strip()
    staged = lock.stage(written)
    git.run("update-ref", "-m", "rollbackkit audit publish", "HEAD", commit, *([parent] if parent else []))
    return commit, staged
