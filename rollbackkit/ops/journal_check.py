"""``rollbackkit journal verify``: the journal's hash chain, checked line by line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollbackkit.registry.journal import Journal
from rollbackkit.registry.journal_chain import JournalProblem
from rollbackkit.registry.store import Registry

__all__ = ["JournalCheck", "verify_journal"]


@dataclass(frozen=True)
class JournalCheck:
    """What :func:`verify_journal` found.

    Attributes:
        entries: How many entries the journal holds.
        problems: Each edited, deleted or truncated line (``line``, ``problem``), first first.
    """

    entries: int
    problems: tuple[JournalProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``journal verify --json`` prints: ``ok``, ``entries``, ``problems``."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "problems": [{"line": p.line, "problem": p.problem} for p in self.problems],
        }


def verify_journal(repo: str | Path = ".") -> JournalCheck:
    """Check the journal's hash chain and head: an edited, deleted or truncated line is a problem.

    Args:
        repo: Any path inside the project.

    Returns:
        :class:`JournalCheck`: ``ok``, the number of ``entries`` and the ``problems``.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
    """
    journal = Journal(Registry(repo).paths.journal)
    problems = tuple(journal.verify())
    return JournalCheck(entries=len(journal.entries()), problems=problems)
