"""What other hosts did, as this clone can learn it: origin's tags, the store's routing row, a server's answer.

Replicas on several hosts each run from their own clone; the CLI on one host may not hold the
tags another host's server just made. :func:`refresh` fetches them from ``origin`` (bounded,
never fatal); where git still cannot tell, :func:`from_answer`, :func:`told` and :func:`placed`
read the version and share from the server's answer or the store's publication instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rollbackkit.errors import StoreError
from rollbackkit.ops.assignment_results import AssignmentResult
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Assignment
from rollbackkit.registry.shared_tags import fetch_tags, remote_url

if TYPE_CHECKING:
    from rollbackkit.serving.desired import Placement
    from rollbackkit.serving.postgres.routing import Published
    from rollbackkit.serving.status import ServerStatus


FETCH_TIMEOUT_S = 5.0
"""How long ``status`` (and deploy, rollback, promote through another host's server) wait for origin's tags."""


def refresh(registry: Repository, name: str) -> str | None:
    """Fetch ``name``'s tags from ``origin`` (other hosts' operations) when the repository has
    that remote; None when fetched or there is no remote, else why not (one line, never raised)."""
    if remote_url(registry.git) is None:
        return None
    return fetch_tags(registry.git, name, timeout=FETCH_TIMEOUT_S)


def published_state(registry: Repository, name: str, env: str) -> Published | None:
    """What the shared store says every replica of NAME/ENV must serve; None without a store, a
    publication, or when the store does not answer within seconds (the history is shown)."""
    from rollbackkit.serving.postgres.store import store_of

    try:
        store = store_of(registry.paths, migrate=False)
        if store is None:
            return None
        from rollbackkit.serving.postgres.routing import RoutingTable  # psycopg: loaded only with a store

        table = RoutingTable(store)
        try:
            return table.read(name, env)
        finally:
            table.close()
    except StoreError:
        return None


def placed(
    tags: dict[str, Assignment], name: str, env: str, placement: Placement | None, action: str, at: str
) -> Assignment | None:
    """The assignment behind a published ``placement``: the history's, else one built from the
    store's record (its tag not in this clone; ``at``: when it was published)."""
    if placement is None:
        return None
    if placement.tag in tags:
        return tags[placement.tag]
    made = Assignment(name=name, env=env, version=placement.version, tag=placement.tag, time=at, action=action)
    if action == "canary":
        return replace(made, canary_percent=placement.percent)
    return replace(made, shadow_percent=placement.percent)


def told(status: ServerStatus, known: Assignment | None) -> Assignment | None:
    """The running canary's assignment: ``known`` (from the history), else what the server says
    of it (its tag not in this clone: version, share, and the last traffic move as its time)."""
    slot = status.canary
    if known is not None or slot is None:
        return known
    return Assignment(
        name=status.name,
        env=status.env,
        version=slot.version,
        tag=slot.deployment,
        time=status.since,
        action="canary",
        canary_percent=slot.percent,
    )


def tagged(registry: Repository, tag: str) -> bool:
    """True when this clone holds the assignment tag ``tag``."""
    return bool(registry.git.run("rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).strip())


def from_answer(result: AssignmentResult) -> AssignmentResult:
    """``result`` with ``previous`` read from the server's answer when git cannot tell (its tag
    reached neither this clone nor origin): a canary's "rest" is the live version its
    ``status`` names. A rollback's is not in the answer and stays unknown."""
    status, a = result.status, result.assignment
    if result.previous is not None or status is None or status.canary is None or status.live is None:
        return result
    if a.action != "canary" or status.canary.version != a.version:
        return result
    return replace(result, previous=status.live.version)
