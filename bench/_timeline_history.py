"""A long assignment history, fast: ``n`` stage tags in one ``git fast-import`` stream.

The tags carry the bytes :meth:`rollbackkit.registry.assignments.Deployments.assign` writes
(the same headline and JSON trailer), on the commits of versions already registered, so
:func:`rollbackkit.timeline` reads them as it reads real ones. Used by ``bench widgets`` and
the timeline tests (1,000 assignments in well under a second).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

CYCLE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("deploy", {"reason": "release"}),
    ("canary", {"canary_percent": 10, "steps": [10, 50, 100], "bake_s": 600.0, "reason": "stepped rollout"}),
    ("canary", {"canary_percent": 50, "steps": [10, 50, 100], "bake_s": 600.0, "reason": "step passed its bake"}),
    ("promote", {"reason": "all steps passed"}),
    ("shadow", {"shadow_percent": 25, "reason": "score a mirror first"}),
    ("rollback", {"reason": "tail segment degraded", "incident": "INC-1"}),
    ("canary", {"canary_percent": 20, "reason": "try again on a fifth"}),
    ("auto-rollback", {"reason": "gate failed: rollback: errors error rate 0.12 > 0.05", "actor": "watchdog"}),
)
"""What the history repeats: each action with its fields (versions rotate through the registered ones)."""


def many_assignments(repo: Path, name: str, env: str, n: int, *, every_s: int = 600) -> int:
    """Add ``n`` assignment tags of ``name`` in ``env`` (deploy, a stepped canary, promote, shadow,
    rollback, canary, auto-rollback, repeated), ``every_s`` seconds apart: starting ``n * every_s``
    seconds ago, or after the newest tag when that is later (tag times only grow).

    Needs at least two registered versions of ``name``. Returns the number of tags written.
    """
    import time

    from rollbackkit.registry.gitrepo import Git
    from rollbackkit.registry.tags import assignment_message, parse_stage_tag, stage_tag, versions_in

    git = Git(repo)
    tags = git.tags()
    versions = [(v.version, v.commit) for v in versions_in(tags, name)]
    if len(versions) < 2:
        raise ValueError(f"{name} needs two registered versions for an assignment history")
    numbers = [s.number for t in tags if (s := parse_stage_tag(t.name)) and s.name == name]
    first = max(numbers, default=0) + 1
    stamp = max([t.timestamp for t in tags] + [int(time.time()) - n * every_s])
    stream: list[bytes] = []
    for i in range(n):
        action, fields = CYCLE[i % len(CYCLE)]
        round_ = i // len(CYCLE)
        live, new = versions[round_ % len(versions)], versions[(round_ + 1) % len(versions)]
        if action == "shadow":
            new = versions[(round_ + 2) % len(versions)] if len(versions) > 2 else new
        version, commit = live if action in ("deploy", "rollback", "auto-rollback") else new
        meta = {"action": action, "actor": "bench", "forced": False, "gates": "", "canary_percent": None}
        meta |= {"incident": "", "reason": "", "version": version} | fields
        if action == "auto-rollback":
            meta["gates"] = "rollback: errors error rate 0.12 > 0.05"
        message = assignment_message(name, version, env, action, str(meta["reason"]), meta).encode()
        stream += [
            f"tag {stage_tag(name, env, first + i)}".encode(),
            f"from {commit}".encode(),
            f"tagger bench <bench@example.com> {stamp + (i + 1) * every_s} +0000".encode(),
            f"data {len(message)}".encode(),
            message,
        ]
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=b"\n".join(stream) + b"\n", check=True)
    return n
