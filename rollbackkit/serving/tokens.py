"""The admin token of a project's servers: where it comes from, and what a good one is.

It comes from ``ROLLBACKKIT_ADMIN_TOKEN`` or the token file ``.rollbackkit/local/admin-token``
(created with 0600 permissions on first use). A token shorter than :data:`MIN_TOKEN_LENGTH`
characters, or with anything but visible ASCII, is refused: the server does not start.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

from rollbackkit.errors import InvalidToken
from rollbackkit.project import ProjectPaths

TOKEN_ENV = "ROLLBACKKIT_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what an HTTP header carries unchanged


def token_file(paths: ProjectPaths) -> Path:
    """The project's admin-token file."""
    return paths.local / "admin-token"


def admin_token(paths: ProjectPaths) -> str | None:
    """The admin token: the environment variable if set, else the token file; None if neither.

    The file's surrounding ASCII whitespace (its trailing newline) is not part of the token.

    Raises:
        InvalidToken: The token is shorter than :data:`MIN_TOKEN_LENGTH` or holds anything but
            visible ASCII; the message names where it came from.
    """
    if TOKEN_ENV in os.environ:
        return _checked(os.environ[TOKEN_ENV], f"${TOKEN_ENV}", f"Set {TOKEN_ENV} to a longer secret")
    path = token_file(paths)
    if path.exists():
        text = path.read_bytes().decode("latin-1").strip(" \t\r\n")  # anything non-ASCII is refused below
        return _checked(text, str(path), f"Delete {path} to have a new one made, or write one into it")
    return None


def ensure_admin_token(paths: ProjectPaths) -> str:
    """The admin token as :func:`admin_token` finds it, else a new one in the token file (0600).

    Raises:
        InvalidToken: As :func:`admin_token`.
    """
    token = admin_token(paths)
    if token is not None:
        return token
    path = token_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def _checked(token: str, source: str, fix: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        what = "empty" if not token else f"{len(token)} characters long"
        if token and _TOKEN_CHARS.fullmatch(token) is None:
            what = "not plain visible ASCII (no spaces, no other characters)"
        raise InvalidToken(
            f"The admin token from {source} is {what}; it needs {MIN_TOKEN_LENGTH}+ visible ASCII characters.",
            f"{fix} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))').",
        )
    return token


def warn_if_readable(paths: ProjectPaths) -> None:
    """One line on stderr when the token file (if the token comes from it) is open to others."""
    path = token_file(paths)
    if TOKEN_ENV in os.environ or not path.exists():
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        print(f"warning: {path} has mode {mode:04o}; others can read the admin token (chmod 600 it).", file=sys.stderr)
