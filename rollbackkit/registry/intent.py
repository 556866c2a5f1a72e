"""The intent record a register (or a recover tagging its commit) keeps while it works.

``.rollbackkit/local/intents/current.json`` names the op, bundle and version before a register
touches the workspace; ``commit`` once the register has committed (the local proof that a register
of this clone made that commit, which recover needs before it tags one); ``tagging`` when only a
recover's tag is under way (the workspace was not touched). It is removed after the journal record,
so a kill between the tag and the record leaves it to say so (:func:`unrecorded_tag`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import atomic_write
from rollbackkit.errors import RollbackkitError
from rollbackkit.refs import validate_name
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.tags import version_tag

_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def intent_file(repo: Repository) -> Path:
    """Where a register in progress records what it is doing."""
    return repo.paths.intents / "current.json"


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
    try:
        record = json.loads(intent_file(repo).read_bytes().decode("utf-8"))
        if not isinstance(record, dict) or record.get("op") != "register":
            return None
        name, version = validate_name(record["name"]), record["version"]
        version_tag(name, version)
        commit = record.get("commit", "")
        if commit and not (isinstance(commit, str) and _COMMIT_RE.fullmatch(commit)):
            return None
    except (OSError, ValueError, KeyError, TypeError, RollbackkitError):
        return None
    tagging = "yes" if record.get("tagging") is True else ""
    return {"op": "register", "name": name, "version": str(version), "commit": commit, "tagging": tagging}


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
