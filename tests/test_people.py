"""Who acts: one name for an assignment's actor and a bundle's author, whoever records it."""

from __future__ import annotations

import getpass
from pathlib import Path

from rollbackkit import Registry
from rollbackkit.deployments import Deployments
from rollbackkit.people import actor

from .conftest import git


def test_an_assignment_nobody_names_and_a_new_bundle_record_the_git_user(served: Path) -> None:
    """conftest's git identity is Ada Oncall; the OS user running the tests is someone else.

    A watchdog's rollback names nobody, so the assignment records who the repository says acts.
    """
    registry = Registry(served)
    deployments = Deployments(registry)
    deployments.assign(registry.resolve("churn@v1.1.0"), "prod", "deploy", reason="no actor given")
    assert deployments.history("churn", "prod")[-1].actor == "Ada Oncall"
    assert registry.manifest(registry.resolve("churn@v1.1.0")).registration.author == "Ada Oncall"


def test_without_a_git_name_the_os_user_acts(git_repo: Path) -> None:
    assert actor(git_repo) == "Ada Oncall"
    git(git_repo, "config", "user.name", "")
    assert actor(git_repo) == getpass.getuser()
