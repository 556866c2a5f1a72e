"""Replicas on two hosts, each with its own clone, keep one git record (probe 20 #1).

An iris classifier (string species) serves ``prod`` from two clones of one project that share
a bare ``origin`` and one PostgreSQL store, as two hosts behind one load balancer would. A
deploy through host A, then a rollback through host B: B numbers its tag after A's and picks
its target from A's deploy; after A's next fetch A's history holds B's rollback, and A's next
operation numbers after it. A remote that refuses the push leaves the operation standing,
said in the answer, journaled and counted.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry
from rollbackkit.ops.traffic import deploy as deploy_offline
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.tags import STAGE_TAG_RE
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.postgres.store import open_store
from rollbackkit.serving.sync import ReplicaSync

from .conftest import new_repo


def git(repo: Path, *args: str) -> str:
    """``git ARGS`` in ``repo``, its output."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _irises() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    loaded = load_iris(as_frame=True)
    frame = loaded.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = np.asarray(loaded.target_names, dtype=object)[frame.pop("target")]
    return frame


@pytest.fixture(scope="module")
def iris_template(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """``iris@v1.0.0`` serving prod, ``v1.1.0`` and ``v1.2.0`` registered."""
    from sklearn.linear_model import LogisticRegression

    repo = new_repo(tmp_path_factory.mktemp("iris") / "project", "iris")
    registry = Registry.init(repo)
    frame = _irises()
    X, y = frame.drop(columns="species"), frame["species"]
    for version, c in (("v1.0.0", 1.0), ("v1.1.0", 0.5), ("v1.2.0", 0.2)):
        registry.register(
            "iris", LogisticRegression(C=c, max_iter=300).fit(X, y), frame, target="species", version=version
        )
    deploy_offline(repo, "iris@v1.0.0", "prod", reason="first release")
    return repo


def _host(template: Path, origin: Path, where: Path) -> Path:
    """A host's own copy of the project (git, DVC cache and remote), ``origin`` its git remote."""
    repo = where / "project"
    shutil.copytree(template, repo, symlinks=True)
    git(repo, "remote", "add", "origin", str(origin))
    return repo


@pytest.fixture
def hosts(iris_template: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(origin, host A's clone, host B's clone): the project pushed to a bare origin, copied twice."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    a = _host(iris_template, origin, tmp_path / "a")
    git(a, "push", "-q", "origin", "main", "--tags")
    return origin, a, _host(iris_template, origin, tmp_path / "b")


@pytest.fixture
def serve(store_url: str) -> Iterator[object]:
    """``serve(repo, replica)``: a served environment of ``iris`` in prod on the store; stopped at the end."""
    store = open_store(store_url)
    started: list[ServingEnvironment] = []

    def start(repo: Path, replica: str) -> ServingEnvironment:
        env = ServingEnvironment(repo, "iris", "prod", scoring_threads=None)
        env.start()
        env.sync = ReplicaSync(env, store, replica, heartbeat=0.2, poll=0.3, converge_timeout=10.0)
        env.sync.start()
        started.append(env)
        return env

    yield start
    for env in started:
        assert env.sync is not None
        env.sync.stop()


def _numbers(repo: Path) -> list[int]:
    return sorted(int(t.rsplit("#", 1)[1]) for t in git(repo, "tag", "-l", "iris#*").split())


def test_a_rollback_through_another_clone_lands_in_the_one_record(hosts: tuple[Path, Path, Path], serve) -> None:  # type: ignore[no-untyped-def]
    origin, a, b = hosts
    on_a, on_b = serve(a, "host-a"), serve(b, "host-b")
    first = _numbers(a)[-1]

    deployed = on_a.deploy("v1.1.0", reason="softer", force=True)
    rolled = on_b.rollback(reason="v1.1.0 misfiles setosa")
    assert rolled["assignment"]["version"] == "v1.0.0"  # the target follows A's deploy, not B's stale clone
    assert rolled["assignment"]["tag"] == f"iris#prod#{first + 2}"
    assert deployed["git_remote"] == {"remote": "origin", "pushed": [f"iris#prod#{first + 1}"], "error": None}
    assert rolled["git_remote"]["pushed"] == [f"iris#prod#{first + 2}"]

    git(a, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    history = Deployments(Registry(a)).history("iris", "prod")
    assert (history[-1].action, history[-1].version, history[-1].reason) == (
        "rollback",
        "v1.0.0",
        "v1.1.0 misfiles setosa",
    )
    assert history[-1].actor == rolled["assignment"]["actor"]

    again = on_a.deploy("v1.2.0", reason="sharper", force=True)
    assert again["assignment"]["tag"] == f"iris#prod#{first + 3}"
    in_origin = git(origin, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags/iris#*").split("\n")
    in_a = git(a, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags/iris#*").split("\n")
    assert in_origin == in_a  # the same tag objects: no number made twice
    assert all(STAGE_TAG_RE.fullmatch(line.split()[0]) for line in in_origin if line)
    assert on_b.status()["live"]["version"] == "v1.2.0"


def test_a_refused_push_leaves_the_operation_standing_and_says_so(hosts: tuple[Path, Path, Path], serve) -> None:  # type: ignore[no-untyped-def]
    origin, a, _ = hosts
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tags are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    on_a = serve(a, "host-a")
    deployed = on_a.deploy("v1.1.0", reason="softer", force=True)
    tag = deployed["assignment"]["tag"]
    assert on_a.status()["live"]["version"] == "v1.1.0" and tag in git(a, "tag", "-l", "iris#*").split()
    said = deployed["git_remote"]
    assert said["pushed"] == [] and f"{tag} not pushed to origin" in said["error"]
    assert "git push origin --tags" in said["error"]
    assert on_a.background.failures == 1 and on_a.background.last_failure.startswith(tag)
    logged = [e for e in on_a.journal.entries() if e["event"] == "record-not-shared"]
    assert [e["tags"] for e in logged] == [[tag]]
