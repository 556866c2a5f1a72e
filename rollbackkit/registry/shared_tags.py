"""Assignment tags shared through the project's git remote: replicas on several hosts keep one record.

Replicas of one environment on a shared store may each run from their own clone of the
project. Git stays the record, one tag per assignment: under the environment-wide operation
lock, :func:`sharing` fetches the model's tags from the remote ``origin`` before the operation
numbers its tag and picks its rollback target (so they follow what every host did), then
pushes the tags the operation made. A project without that remote is unchanged (its replicas
share one checkout). A fetch or push that fails never undoes the operation: it is journaled,
handed to ``on_error`` (counted), and said in the operation's answer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rollbackkit.errors import GitError, RollbackkitError
from rollbackkit.registry.gitrepo import Git
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.tags import parse_stage_tag

REMOTE = "origin"
"""The remote every host's clone shares."""

GIT_TIMEOUT_S = 10.0
"""How long a fetch or a push may take (the environment's operation lock is held meanwhile)."""

_BATCH_SSH = {"GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
"""Never a password prompt: a remote that wants one fails at once."""


@dataclass
class SharedRecord:
    """What sharing did around one operation: the tags pushed to ``remote``, or why not (``error``)."""

    remote: str
    pushed: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """``{"remote", "pushed", "error"}`` for the operation's answer."""
        return {"remote": self.remote, "pushed": list(self.pushed), "error": self.error}


def remote_url(git: Git, remote: str = REMOTE) -> str | None:
    """The URL of ``remote`` (None: the repository has no such remote)."""
    return git.run("remote", "get-url", remote, check=False).decode().strip() or None


def stage_tags(git: Git, name: str) -> set[str]:
    """The assignment tags of ``name`` (every environment's: one numbering per model) in this clone."""
    out = git.run("for-each-ref", "--format=%(refname:strip=2)", f"refs/tags/{name}#*").decode()
    return {tag for tag in out.split() if (stage := parse_stage_tag(tag)) is not None and stage.name == name}


def fetch_tags(git: Git, name: str, remote: str = REMOTE, timeout: float = GIT_TIMEOUT_S) -> str | None:
    """Fetch ``name``'s version and assignment tags from ``remote`` (every host's operations);
    None when done, else why not (one line, credentials scrubbed). Never raises."""
    specs = [f"refs/tags/{name}@*:refs/tags/{name}@*", f"refs/tags/{name}#*:refs/tags/{name}#*"]
    try:
        git.run("fetch", "--quiet", "--no-tags", remote, *specs, env=_BATCH_SSH, timeout=timeout)
    except GitError as exc:
        return f"{name}'s tags not fetched from {remote}: {_scrubbed(exc.message)}"
    return None


@contextmanager
def sharing(
    git: Git, name: str, journal: Journal, on_error: Callable[[str], None], remote: str = REMOTE
) -> Iterator[SharedRecord | None]:
    """Fetch ``name``'s tags from ``remote``, run the operation, push the assignment tags it made.

    Yields None (and does nothing) when the repository has no ``remote``. Hold the
    environment's operation lock: another host's operation then never numbers a tag between
    this fetch and this push. The push runs only when the operation returns.
    """
    if remote_url(git, remote) is None:
        yield None
        return
    record = SharedRecord(remote)
    unfetched = fetch_tags(git, name, remote)
    if unfetched is not None:
        _failed(record, journal, on_error, [], unfetched)
    before = stage_tags(git, name)
    yield record
    made = sorted(stage_tags(git, name) - before, key=lambda tag: parse_stage_tag(tag).number)  # type: ignore[union-attr]
    if not made:
        return
    refs = [f"refs/tags/{tag}:refs/tags/{tag}" for tag in made]
    try:
        git.run("push", "--quiet", remote, *refs, env=_BATCH_SSH, timeout=GIT_TIMEOUT_S)
    except GitError as exc:
        said = f"{', '.join(made)} not pushed to {remote}: {_scrubbed(exc.message)}"
        _failed(record, journal, on_error, made, said + f" Other hosts do not see it; run: git push {remote} --tags")
        return
    record.pushed = made


def _failed(record: SharedRecord, journal: Journal, on_error: Callable[[str], None], tags: list[str], why: str) -> None:
    """Keep the first failure in ``record``; journal it and hand it to ``on_error``."""
    record.error = record.error or why
    try:
        journal.append("record-not-shared", remote=record.remote, tags=tags, error=why)
    except RollbackkitError as exc:  # the operation stands: say it, never raise after it
        why += f" (not journaled: {exc.message})"
    on_error(why)


def _scrubbed(text: str) -> str:
    """``text`` without the credentials a remote URL may carry (``https://user:token@host``)."""
    return re.sub(r"://[^/@\s]*@", "://***@", text)
