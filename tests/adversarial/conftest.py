"""The standing corpus of hostile and careless inputs: shared checks.

Every case asserts the same three things: the exit code (or HTTP status), one line that
says what went wrong and what to do (never a traceback, never "This is a bug"), and that
nothing was lost or half-written: registry tags, HEAD, the working tree, the journal's
chain and the prediction log are as they were (or as the one intended change left them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..conftest import git


@dataclass(frozen=True)
class Outcome:
    """What a CLI call printed and how it ended."""

    code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def rollbackkit(*args: str, cwd: Path) -> Outcome:
    """Run the CLI in this process, as the console script does (``rollbackkit.cli.main``).

    In-process keeps a corpus of a hundred cases fast; the error handling is the
    console script's own, so what is asserted here is what a user sees.
    """
    from rollbackkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    code = 0
    with _cwd(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["rollbackkit", *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_clean_line(outcome: Outcome, *mentions: str, code: int = 1) -> None:
    """Exit ``code`` with one ``error:`` line naming ``mentions``; no traceback, no "bug"."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert outcome.code == code, (outcome.code, outcome.stdout[-500:], outcome.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr[-2000:]
    assert "Traceback" not in outcome.stderr and "This is a bug" not in outcome.stderr, outcome.stderr
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])


@dataclass(frozen=True)
class State:
    """Everything a failed command must leave as it was."""

    tags: str
    head: str
    tree: str
    journal: str
    prediction_rows: int | None


def state(repo: Path) -> State:
    """Tags with their targets, HEAD, the working tree's status, the journal's bytes and the log's row count."""
    status = git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    log = repo / ".rollbackkit" / "local" / "predictions.duckdb"
    rows = None
    if log.exists():
        import duckdb

        with duckdb.connect(str(log), read_only=True) as con:
            counts = [
                con.execute(f"SELECT count(*) FROM {t}").fetchone() for t in ("predictions", "predictions_staging")
            ]
            rows = sum(int(c[0]) for c in counts if c)
    return State(
        git(repo, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", "refs/tags"),
        git(repo, "rev-parse", "HEAD"),
        "\n".join(s for s in status if not s.startswith("!! .dvc/cache/")),
        hashlib.sha256(journal.read_bytes()).hexdigest() if journal.exists() else "",
        rows,
    )


def assert_journal_whole(repo: Path) -> None:
    """``rollbackkit journal verify`` passes: the hash chain is unbroken."""
    outcome = rollbackkit("journal", "verify", cwd=repo)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
