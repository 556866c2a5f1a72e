"""The intent record a register (or a recover tagging its commit) keeps while it works.

``.rollbackkit/local/intents/current.json`` names the op, bundle and version before a register
touches the workspace; ``commit`` once the register has committed (the local proof that a register
of this clone made that commit, which recover needs before it tags one); ``tagging`` when only a
recover's tag is under way (the workspace was not touched). It is removed after the journal record,
so a kill between the tag and the record leaves it to say so (:func:`unrecorded_tag`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.registry.proofs import intent_path, parse_intent
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import version_tag


def intent_file(repo: Repository) -> Path:
    """Where a register in progress records what it is doing."""
    return intent_path(repo.paths)


def write_intent(repo: Repository, record: dict[str, Any]) -> None:
    """Record a register about to touch the workspace, or (``commit``) its commit, made (read back by
    :func:`rollbackkit.registry.recover.recover_locked`)."""
    atomic_write(intent_file(repo), json.dumps(record))


def clear_intent(repo: Repository) -> None:
    """The register finished: nothing to undo."""
    intent_file(repo).unlink(missing_ok=True)


def read_intent(repo: Repository) -> dict[str, str] | None:
    """The intent record (``commit`` and ``tagging`` are ``""`` when absent), or None when it is not one
    that :func:`write_intent` wrote."""
    return parse_intent(intent_file(repo))


def unrecorded_tag(repo: Repository, record: dict[str, str] | None = None) -> str | None:
    """The tag of a register (or recover) killed after its tag, before its journal record, else None.

    That is: the intent record (``record``, else the one on disk) names a commit, its tag is on that
    commit, and the journal has no record of registering it. ``verify --all`` reports it; the next
    :func:`~rollbackkit.registry.recover.recover_locked` appends the record.
    """
    if record is None:
        record = read_intent(repo) if intent_file(repo).exists() else None
    if record is None or not record["commit"]:
        return None
    tag = version_tag(record["name"], record["version"])
    if not repo.git.tag_exists(tag) or tag in repo.registrations():
        return None
    return tag if repo.git.text("rev-list", "-n1", tag) == record["commit"] else None
