"""The tag grammar, in one place: registration tags, assignment (stage) tags, their trailers.

A version is the annotated GTO tag ``NAME@vX.Y.Z`` on the commit that registered it; its
message ends in trailers that name the bundle id and the commit. An assignment of a version
to an environment is the annotated tag ``NAME#ENV#N`` (GTO's stage-tag format) whose message
ends in one JSON trailer (action, reason, incident, ...). Names and versions follow the
kernel's rules (:data:`rollbackkit.refs.NAME_RE`, :class:`rollbackkit.refs.Version`); the
references a user types (``NAME@latest``, ``NAME#ENV``) are parsed by
:class:`rollbackkit.refs.Reference`, not here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollbackkit.bundle.version import VersionInfo
from rollbackkit.refs import NAME_RE, Version, validate_name
from rollbackkit.registry.gitrepo import TagInfo

# Matched whole (fullmatch); the version part is checked by Version.is_valid after the match.
REGISTRATION_TAG_RE = re.compile(rf"(?P<name>{NAME_RE.pattern})@(?P<version>v\S+)")
STAGE_TAG_RE = re.compile(rf"(?P<name>{NAME_RE.pattern})#(?P<env>{NAME_RE.pattern})#(?P<n>[0-9]+)")
TRAILER_ID = "Rollbackkit-Bundle-Id"
TRAILER_COMMIT = "Rollbackkit-Commit"
TRAILER_ASSIGNMENT = "Rollbackkit-Assignment"
_TRAILER_PREFIX = "Rollbackkit-"


@dataclass(frozen=True)
class StageTag:
    """The parts of an assignment tag ``NAME#ENV#N``."""

    name: str
    env: str
    number: int


# ---------------------------------------------------------------------------- registration tags
def version_tag(name: str, version: str) -> str:
    """The GTO registration tag for a version: ``NAME@vX.Y.Z`` (both parts validated)."""
    return f"{validate_name(name)}@{Version.parse(version)}"


def tag_version(tag: str) -> str:
    """The version part of a registration tag name (``""`` when it has none)."""
    return tag.partition("@")[2]


def registration_message(name: str, version: str, bundle_id: str, commit: str, message: str, source: str = "") -> str:
    """The message of a registration tag: a GTO headline, the user's text, then the trailers
    (``source``: one more trailer line naming where the model came from, e.g. MLflow)."""
    head = f"Registering artifact {name} version {version}"
    body = f"\n\n{message.strip()}" if message.strip() else ""
    extra = f"{source.strip()}\n" if source.strip() else ""
    return f"{head}{body}\n\n{TRAILER_ID}: {bundle_id}\n{TRAILER_COMMIT}: {commit}\n{extra}"


def _trailer(message: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)\s*$", message, re.MULTILINE)
    return match.group(1) if match else ""


def _user_message(message: str) -> str:
    lines = message.strip().splitlines()[1:]
    return "\n".join(ln for ln in lines if not ln.startswith(_TRAILER_PREFIX)).strip()


def version_from_tag(tag: TagInfo) -> VersionInfo | None:
    """Parse a registration tag into a VersionInfo (None for other tags)."""
    match = REGISTRATION_TAG_RE.fullmatch(tag.name)
    if not match or not Version.is_valid(match["version"]):
        return None
    return VersionInfo(
        name=match["name"],
        version=match["version"],
        bundle_id=_trailer(tag.message, TRAILER_ID),
        created=datetime.fromtimestamp(tag.timestamp, UTC).isoformat(),
        commit=tag.commit,
        tag=tag.name,
        author=tag.tagger,
        message=_user_message(tag.message),
        recorded_commit=_trailer(tag.message, TRAILER_COMMIT),
    )


def versions_in(tags: Iterable[TagInfo], name: str | None = None) -> list[VersionInfo]:
    """The versions (of ``name``, or all) that ``tags`` register, sorted by name then semver."""
    infos = [v for t in tags if (v := version_from_tag(t)) and (name is None or v.name == name)]
    return sorted(infos, key=lambda v: (v.name, Version.parse(v.version)))


# ---------------------------------------------------------------------------- assignment tags
def stage_tag(name: str, env: str, number: int) -> str:
    """The assignment tag ``NAME#ENV#N``."""
    return f"{name}#{env}#{number}"


def parse_stage_tag(tag: str) -> StageTag | None:
    """The parts of an assignment tag (None for other tags)."""
    match = STAGE_TAG_RE.fullmatch(tag)
    return StageTag(match["name"], match["env"], int(match["n"])) if match else None


def assignment_message(name: str, version: str, env: str, action: str, reason: str, meta: dict[str, Any]) -> str:
    """The message of an assignment tag: a GTO headline, action and reason, the JSON trailer."""
    return (
        f"Assigning stage {env} to artifact {name} version {version}\n\n{action}: {reason}".rstrip(": ")
        + f"\n\n{TRAILER_ASSIGNMENT}: {json.dumps(meta, sort_keys=True)}\n"
    )


def assignment_meta(message: str) -> dict[str, Any]:
    """The JSON trailer of an assignment tag's message (``{}`` when absent or unreadable)."""
    match = re.search(rf"^{TRAILER_ASSIGNMENT}: (\{{.*\}})\s*$", message, re.MULTILINE)
    if not match:
        return {}
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
