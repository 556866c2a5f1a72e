"""Who acts: one name for an assignment's actor and a bundle's author, whoever records it."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.people import actor

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


def test_the_author_git_would_record_acts_else_the_os_user(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As git itself: GIT_AUTHOR_NAME first, then user.name; with neither, the OS user."""
    assert actor(git_repo) == "Ada Oncall"
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Grace Pager")
    assert actor(git_repo) == "Grace Pager"
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    git(git_repo, "config", "user.name", "Lin Review")
    assert actor(git_repo) == "Lin Review"
    git(git_repo, "config", "user.name", "")
    assert actor(git_repo) == getpass.getuser()
