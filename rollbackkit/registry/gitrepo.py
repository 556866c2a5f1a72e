"""A thin, fast layer over the ``git`` binary: tags, blobs at commits, path-limited commits.

Every call is one ``git`` subprocess with a fixed environment, so behaviour does not depend
on the user's pager or locale. Nothing here force-moves or deletes a tag: versions are
immutable and this module offers no way around that.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollbackkit.errors import GitError, NotAGitRepo

_FIELD = "\x1f"
_RECORD = "\x1e"


@dataclass(frozen=True)
class TagInfo:
    """One annotated tag: its name, the commit it points to, tagger time and message."""

    name: str
    commit: str
    timestamp: int
    tagger: str
    message: str


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat")
    if extra:
        env.update(extra)
    return env


def find_root(path: str | os.PathLike[str] = ".") -> Path:
    """Top of the git work tree containing ``path``; raise NotAGitRepo otherwise."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
        )
    except FileNotFoundError as exc:  # pragma: no cover - git is a documented requirement
        raise NotAGitRepo("git is not installed.", "Install git and try again.") from exc
    if out.returncode != 0:
        raise NotAGitRepo(
            f"{Path(path).resolve()} is not inside a git repository.",
            "Run 'git init' there first (or pass --repo).",
        )
    return Path(out.stdout.strip())


class Git:
    """Run git in one repository.

    Args:
        root: The top of the work tree.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> bytes:
        """Run ``git ARGS`` and return stdout; raise GitError with git's message on failure
        (or when it runs longer than ``timeout`` seconds: a remote that does not answer)."""
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.root), *args],
                input=input,
                capture_output=True,
                env=_env(env),
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {args[0]} did not finish in {timeout:g} s.", "Check that the git remote answers."
            ) from None
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            if "tell me who you are" in stderr or "unable to auto-detect email" in stderr:
                raise GitError(
                    "git does not know who you are, so it cannot commit or tag.",
                    "Run: git config --global user.name 'Your Name' && git config --global user.email you@example.com",
                )
            detail = (stderr.strip() or proc.stdout.decode(errors="replace").strip()).splitlines()  # commit: stdout
            raise GitError(
                f"git {args[0]} failed: {detail[-1][:200] if detail else 'exit ' + str(proc.returncode)}.",
                "Check the repository state with 'git status'.",
            )
        return proc.stdout

    def text(self, *args: str) -> str:
        """Like :meth:`run` but decoded and stripped."""
        return self.run(*args).decode().strip()

    def head(self) -> str | None:
        """The commit HEAD points to, or None in a repository with no commits."""
        out = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        return out.decode().strip() or None

    def tags(self) -> list[TagInfo]:
        """Every annotated tag in one call, peeled to its commit."""
        fmt = (
            _FIELD.join(["%(refname:strip=2)", "%(*objectname)", "%(taggerdate:unix)", "%(taggername)", "%(contents)"])
            + _RECORD
        )
        raw = self.run("for-each-ref", f"--format={fmt}", "refs/tags").decode(errors="replace")
        tags = []
        for record in raw.split(_RECORD):
            fields = record.lstrip("\n").split(_FIELD)
            if len(fields) != 5 or not fields[1]:
                continue  # lightweight tags have no tagger or peeled object
            name, commit, stamp, tagger, message = fields
            tags.append(TagInfo(name, commit, int(stamp or 0), tagger, message))
        return tags

    def tag_exists(self, name: str) -> bool:
        """True when ``refs/tags/NAME`` exists."""
        return self.succeeds("rev-parse", "-q", "--verify", f"refs/tags/{name}")

    def create_tag(self, name: str, commit: str, message: str, timestamp: int | None = None) -> None:
        """Create an annotated tag; never overwrite one (no ``-f``).

        Args:
            name: Tag name.
            commit: Commit to tag.
            message: Tag message.
            timestamp: Tagger time (unix seconds); GTO orders events by it.
        """
        env = {"GIT_COMMITTER_DATE": f"{timestamp} +0000"} if timestamp is not None else None
        self.run("tag", "-a", name, "-m", message, commit, env=env)

    def blob(self, commit: str, path: str) -> bytes:
        """The bytes of ``path`` at ``commit`` (no checkout)."""
        return self.run("cat-file", "blob", f"{commit}:{path}")

    def blobs(self, commit: str, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Many files at ``commit`` in one ``git cat-file --batch`` call (None when absent)."""
        if not paths:
            return {}
        request = "".join(f"{commit}:{p}\n" for p in paths).encode()
        out = self.run("cat-file", "--batch", input=request)
        result: dict[str, bytes | None] = {}
        pos = 0
        for path in paths:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) != 3 or header[1] != b"blob":
                result[path] = None  # "<object> missing", or a tree
                if len(header) == 3:
                    pos += int(header[2]) + 1
                continue
            size = int(header[2])
            result[path] = out[pos : pos + size]
            pos += size + 1
        return result

    def has_path(self, commit: str, path: str) -> bool:
        """True when ``path`` exists in ``commit``."""
        return self.succeeds("cat-file", "-e", f"{commit}:{path}")

    def succeeds(self, *args: str) -> bool:
        """True when ``git ARGS`` exits 0 (output discarded)."""
        proc = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, env=_env(), check=False)
        return proc.returncode == 0

    def ls_tree(self, commit: str, path: str) -> list[str]:
        """Paths of the files below ``path`` at ``commit``."""
        out = self.run("ls-tree", "-r", "--name-only", "-z", commit, "--", path)
        return [p for p in out.decode().split("\0") if p]

    def dirty_paths(self, paths: Sequence[str] = ()) -> list[str]:
        """Tracked paths with uncommitted changes (staged or not), limited to ``paths``."""
        out = self.run("status", "--porcelain", "-z", "--untracked-files=no", "--", *paths)
        return [entry[3:] for entry in out.decode().split("\0") if len(entry) > 3]

    def commit_paths(self, paths: Iterable[str], message: str) -> str:
        """Stage ``paths`` and commit exactly them (other staged work stays staged)."""
        paths = list(paths)
        self.run("add", "-A", "--", *paths)
        self.run("commit", "-q", "--no-verify", "-m", message, "--only", "--", *paths)
        head = self.head()
        if head is None:
            raise GitError(f"git commit left no HEAD in {self.root}.", "Check the repository with `git status`.")
        return head
