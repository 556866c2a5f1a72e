"""Who acts: the one name recorded as the actor of an assignment and the author of a bundle."""

from __future__ import annotations

import getpass
import os


def actor(root: str | os.PathLike[str]) -> str:
    """The person acting in the git repository at ``root``.

    The author name git itself would use there (``GIT_AUTHOR_NAME``, else ``user.name``),
    else the OS user, else ``"unknown"``. Deploys, rollbacks and promotes record it (sent
    to a server with the admin call, or written into the assignment tag); a new bundle
    records it as its author.

    Args:
        root: A path inside the git repository.

    Returns:
        The person's name; never raises (``"unknown"`` when nothing names anyone).
    """
    from rollbackkit.registry.gitrepo import Git

    try:  # "Name <email> 1764400000 +0000", or an error when git knows no identity
        ident = Git(root).run("var", "GIT_AUTHOR_IDENT", check=False).decode(errors="replace").strip()
    except OSError:  # no git on PATH
        ident = ""
    name = ident.split(" <", 1)[0].strip() if " <" in ident else ""
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
