"""A damaged journal stops a deploy or rollback before anything moves: no tag, no traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbackkit.errors import JournalDamaged
from rollbackkit.serving.environment import ServingEnvironment

from .conftest import assert_one_clean_line, rollbackkit, state


def _damage(repo: Path) -> None:
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b"{not an entry}\n")


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "churn@v1.1.0", "--env", "prod", "--reason", "boosted"),
        ("deploy", "churn@v1.1.0", "--env", "staging", "--reason", "first in staging"),
        ("rollback", "churn", "--env", "prod", "--reason", "bad", "--to", "v1.1.0"),
    ],
)
def test_a_workspace_assignment_is_refused_before_its_tag(served: Path, args: tuple[str, ...]) -> None:
    _damage(served)
    before = state(served)
    assert_one_clean_line(rollbackkit(*args, cwd=served), "recover")
    assert state(served) == before


def test_a_served_deploy_is_refused_before_traffic_moves(served: Path) -> None:
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    generation = environment.router.state.generation
    _damage(served)
    before = state(served)
    with pytest.raises(JournalDamaged):
        environment.deploy("v1.1.0", reason="boosted model")
    assert environment.router.state.generation == generation
    assert state(served) == before
