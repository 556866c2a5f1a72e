"""Who acts: the one name recorded as the actor of an assignment and the author of a bundle."""

from __future__ import annotations

import getpass
import os


def actor(root: str | os.PathLike[str]) -> str:
    """The person acting in the git repository at ``root``.

    git's ``user.name`` as that repository sees it when set, else the OS user, else
    ``"unknown"``. Deploys, rollbacks and promotes record it (sent to a server with the
    admin call, or written into the assignment tag); a new bundle records it as its author.
    """
    from rollbackkit.gitrepo import Git

    try:
        name = Git(root).run("config", "user.name", check=False).decode(errors="replace").strip()
    except OSError:  # no git on PATH
        name = ""
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
