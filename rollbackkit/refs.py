"""Names, versions and references, validated by GTO's and DVC's rules before use.

Bundle and environment names follow DVC's artifact-name rule (a subset of GTO's): lower-case
letters, digits and inner dashes, e.g. ``churn`` or ``credit-risk``. That rule keeps them
valid as a git tag part, a DVC artifact name and a single path component (no ``/``, no
``..``, no spaces), so no name can traverse the file system.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from rollbackkit.errors import InvalidName, InvalidReference, InvalidVersion

# Matched whole (``fullmatch``: a ``$`` would let a trailing newline through) and in ASCII
# only (``\d`` also takes other scripts' digits, e.g. Arabic-Indic).
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_NUM = r"(0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
VERSION_RE = re.compile(
    rf"v{_NUM}\.{_NUM}\.{_NUM}(?:-({_PRE}(?:\.{_PRE})*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
MAX_NAME_LENGTH = 100
MAX_VERSION_LENGTH = 128  # also keeps int() off numbers with thousands of digits


def shown(text: object, limit: int = 60) -> str:
    """``text`` quoted for a one-line message: escapes visible, long values cut."""
    if isinstance(text, str) and len(text) > limit:
        return f"{text[:limit]!r}... ({len(text)} characters)"
    return repr(text)


def validate_name(name: str, what: str = "bundle name") -> str:
    """Return ``name`` if it is a valid bundle/environment name, else raise InvalidName."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"Invalid {what} {shown(name)}.",
            "Use lower-case letters, digits and inner dashes only (e.g. 'churn-model').",
        )
    return name


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version written with a leading ``v`` (GTO's format), e.g. ``v1.2.3``."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``vX.Y.Z[-pre][+build]``; raise InvalidVersion otherwise."""
        match = VERSION_RE.fullmatch(text) if isinstance(text, str) and len(text) <= MAX_VERSION_LENGTH else None
        if not match:
            raise InvalidVersion(
                f"Invalid version {shown(text)}.", "Write versions as vMAJOR.MINOR.PATCH, e.g. v1.0.0."
            )
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "", build or "")

    @staticmethod
    def is_valid(text: str) -> bool:
        """True when ``text`` is a valid version string."""
        return isinstance(text, str) and len(text) <= MAX_VERSION_LENGTH and bool(VERSION_RE.fullmatch(text))

    def bump(self, part: str) -> Version:
        """The next version after bumping ``major``, ``minor`` or ``patch``."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise InvalidVersion(f"Unknown bump {part!r}.", "Use major, minor or patch.")

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease.split(".") if p)
        # A release sorts after its prereleases (semver rule 11).
        return (self.major, self.minor, self.patch, 0 if pre else 1, pre)  # type: ignore[return-value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#ENV``."""

    name: str
    version: str | None = None
    latest: bool = False
    env: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse a reference; a bare ``NAME`` means ``NAME@latest``."""
        if not isinstance(text, str) or not text:
            raise InvalidReference("Empty reference.", "Use NAME@vX.Y.Z, NAME@latest or NAME#ENV.")
        if "@" in text:
            name, _, version = text.partition("@")
            validate_name(name)
            if version in ("latest", "greatest"):
                return cls(name=name, latest=True)
            Version.parse(version)
            return cls(name=name, version=version)
        if "#" in text:
            name, _, env = text.partition("#")
            return cls(name=validate_name(name), env=validate_name(env, "environment name"))
        return cls(name=validate_name(text), latest=True)

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}@{self.version}"
        if self.env:
            return f"{self.name}#{self.env}"
        return f"{self.name}@latest"
