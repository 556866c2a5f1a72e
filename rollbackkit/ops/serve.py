"""Serve an environment with the automatic rollback runbook wired in (``rollbackkit serve``).

The server (:mod:`rollbackkit.serving.server`) knows nothing of runbooks: it calls back
after each automatic rollback, and the callback given here runs ``rollback.ipynb``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Unpack

from rollbackkit.ops.runbooks import run
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.server import ServeOptions
from rollbackkit.serving.server import serve as serve_http


def rollback_runbook(repo: str | Path, name: str, env: str, result: dict[str, Any]) -> None:
    """Run ``rollback.ipynb`` after an automatic rollback (in the server's hook thread).

    The traffic has already moved, so the runbook finds the target serving and goes on to
    the post-rollback gate check and the backfill of the bad version's rows. A runbook that
    cannot run is recorded in the journal; it never affects serving.
    """
    registry = Repository(repo)
    assignment = result["assignment"]
    parameters = {
        "repo": str(registry.root),
        "name": name,
        "env": env,
        "to_version": assignment["version"],
        "reason": assignment["reason"] or "automatic rollback",
        "incident": assignment["incident"] or f"auto-{assignment['tag']}",
    }
    try:
        run("rollback", parameters, repo=registry.root)
    except Exception as exc:  # recorded, never raised into serving
        Journal(registry.paths.journal).append("runbook-error", name=name, env=env, error=repr(exc))


def serve(repo: str | Path, name: str, env: str, *, runbook: bool = True, **options: Unpack[ServeOptions]) -> None:
    """Serve NAME in ENV until SIGINT/SIGTERM with :func:`rollbackkit.serving.server.serve`'s ``options``.

    With ``runbook`` (the default) an automatic rollback starts the rollback runbook
    (:func:`rollback_runbook`) once traffic has moved; traffic never waits for it.
    """
    on_rollback = partial(rollback_runbook, repo, name, env) if runbook else None
    serve_http(repo, name, env, on_rollback=on_rollback, **options)
