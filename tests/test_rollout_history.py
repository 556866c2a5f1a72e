"""Shadows and stepped rollouts in the assignment history: what serves, where a rollback goes.

Real stage tags in a real git repo (``two_versions``: cancer v1.0.0 and v1.1.0 registered),
read back by rollbackkit, by ``rollbackkit history --json`` and by the real ``gto``. Tags
written by the previous release (no shadow or step fields) still read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.errors import RollbackRefused
from rollbackkit.registry.assignments import Assignment, Deployments
from rollbackkit.registry.tags import TRAILER_ASSIGNMENT

from .conftest import git, run_cli, run_tool

STEPS = (5, 25, 50, 100)


def test_a_shadow_becomes_a_stepped_canary_and_every_step_is_in_the_history(two_versions: Path) -> None:
    registry = Registry(two_versions)
    deployments = Deployments(registry)
    v1, v2 = registry.resolve("cancer@v1.0.0"), registry.resolve("cancer@v1.1.0")
    deployments.assign(v1, "prod", "deploy", reason="first release")

    shadow = deployments.assign(v2, "prod", "shadow", reason="score a quarter of prod", shadow_percent=25)
    assert (shadow.action, shadow.shadow_percent, shadow.steps, shadow.bake_s) == ("shadow", 25, (), None)
    state = deployments.state("cancer", "prod")
    assert (state.version, state.canary, state.shadow, state.shadow_percent) == ("v1.0.0", None, shadow, 25)
    assert registry.resolve("cancer#prod").version == "v1.0.0"  # a shadow answers nobody
    assert state.to_dict()["shadow"] == {"version": "v1.1.0", "deployment": shadow.tag, "percent": 25}
    assert deployments.rollback_target("cancer", "prod").version == "v1.0.0"  # cancels the shadow
    with pytest.raises(RollbackRefused, match="is the shadow in prod"):
        deployments.rollback_target("cancer", "prod", "v1.1.0")

    for percent in STEPS[:-1]:  # promoted from the shadow into a stepped canary, then advanced
        deployments.assign(v2, "prod", "canary", canary_percent=percent, steps=list(STEPS), bake_s=600.0)
        state = deployments.state("cancer", "prod")
        assert state.shadow is None and state.canary is not None
        assert (state.version, state.canary_percent, state.canary.steps, state.canary.bake_s) == (
            "v1.0.0",
            percent,
            STEPS,
            600.0,
        )
        assert state.canary.step == (STEPS.index(percent) + 1, 4)
        assert state.to_dict()["canary"]["steps"] == list(STEPS)
    deployments.assign(v2, "prod", "promote", reason="step 4 of 4 baked", steps=STEPS, bake_s=600.0, actor="watchdog")
    state = deployments.state("cancer", "prod")
    assert (state.version, state.canary, state.shadow, state.served) == ("v1.1.0", None, None, ("v1.0.0", "v1.1.0"))

    history = deployments.history("cancer", "prod")
    assert [(a.action, a.canary_percent, a.shadow_percent) for a in history] == [
        ("deploy", None, None),
        ("shadow", None, 25),
        ("canary", 5, None),
        ("canary", 25, None),
        ("canary", 50, None),
        ("promote", None, None),
    ]
    told = json.loads(run_cli("history", "cancer", "--env", "prod", "--json", cwd=two_versions).stdout)
    assert [a["steps"] for a in told["assignments"]] == [[], [], [5, 25, 50, 100], *[[5, 25, 50, 100]] * 3]
    assert told["assignments"][1]["shadow_percent"] == 25
    read_back = [Assignment(**entry) for entry in told["assignments"]]  # steps: a JSON list, read as a tuple
    pairs = zip(history, read_back, strict=True)
    assert read_back == [Assignment(**(a.to_dict() | {"time": b.time})) for a, b in pairs]

    # GTO reads the same tags: every assignment is an event of its own, and prod ends on v1.1.0.
    gto = run_tool("gto", "history", "cancer", "--json", cwd=two_versions)
    assert gto.returncode == 0, gto.stderr
    assigned = [e for e in json.loads(gto.stdout) if e["event"] == "assignment"]
    assert len(assigned) == len(history)
    shown = run_tool("gto", "show", "--json", cwd=two_versions)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cancer"]["stage"]["prod"] == "v1.1.0"


def test_a_rollback_while_a_shadow_or_a_step_runs_goes_back_to_live_and_rejects_the_candidate(
    two_versions: Path,
) -> None:
    registry = Registry(two_versions)
    deployments = Deployments(registry)
    v1, v2 = registry.resolve("cancer@v1.0.0"), registry.resolve("cancer@v1.1.0")
    deployments.assign(v1, "prod", "deploy", reason="first release")
    deployments.assign(v2, "prod", "shadow", shadow_percent=100)

    target = deployments.rollback_target("cancer", "prod")
    deployments.assign(target, "prod", "auto-rollback", reason="rollback: agreement 0.61 < 0.9", actor="watchdog")
    state = deployments.state("cancer", "prod")
    assert (state.version, state.shadow, state.canary) == ("v1.0.0", None, None)
    assert (state.rolled_back_from, state.last_rolled_back_from) == ({"v1.1.0"}, ("v1.1.0",))
    assert state.served == ("v1.0.0",) and state.fallback is None  # a shadow never served
    with pytest.raises(RollbackRefused, match="no earlier version"):
        deployments.rollback_target("cancer", "prod")
    with pytest.raises(RollbackRefused, match="already serves prod"):  # the shadow is gone now
        deployments.rollback_target("cancer", "prod", "v1.0.0")

    # Tried again as a stepped rollout: naming it clears the mark; a breach at step 2 rolls it back.
    deployments.assign(v2, "prod", "shadow", shadow_percent=10, reason="fixed, try again")
    assert deployments.state("cancer", "prod").rolled_back_from == frozenset()
    deployments.assign(v2, "prod", "canary", canary_percent=5, steps=STEPS, bake_s=60.0)
    deployments.assign(v2, "prod", "canary", canary_percent=25, steps=STEPS, bake_s=60.0, actor="watchdog")
    with pytest.raises(RollbackRefused, match="is the canary"):
        deployments.rollback_target("cancer", "prod", "v1.1.0")
    target = deployments.rollback_target("cancer", "prod")
    assert target.version == "v1.0.0"
    deployments.assign(target, "prod", "auto-rollback", reason="rollback at step 2 of 4", actor="watchdog")
    state = deployments.state("cancer", "prod")
    assert (state.version, state.canary, state.rolled_back_from) == ("v1.0.0", None, {"v1.1.0"})


def _old_tag(repo: Path, tag: str, commit: str, meta: dict[str, object]) -> None:
    """An assignment tag exactly as the previous release wrote it (no shadow or step fields)."""
    message = (
        f"Assigning stage prod to artifact cancer version {meta['version']}\n\n{meta['action']}: {meta['reason']}"
        f"\n\n{TRAILER_ASSIGNMENT}: {json.dumps(meta, sort_keys=True)}\n"
    )
    git(repo, "tag", "-a", tag, commit, "-m", message)


def test_tags_written_by_the_previous_release_read_as_defaults(two_versions: Path) -> None:
    registry = Registry(two_versions)
    v1, v2 = registry.resolve("cancer@v1.0.0"), registry.resolve("cancer@v1.1.0")
    old = {"incident": "", "actor": "Ada Oncall", "forced": False, "gates": ""}
    deploy = {"action": "deploy", "reason": "first", "version": "v1.0.0", "canary_percent": None}
    canary = {"action": "canary", "reason": "try", "version": "v1.1.0", "canary_percent": 20}
    _old_tag(two_versions, "cancer#prod#1", v1.commit, old | deploy)
    _old_tag(two_versions, "cancer#prod#2", v2.commit, old | canary)
    # A tag from a newer writer, with fields this release cannot read: they read as the defaults.
    unreadable = {"canary_percent": 30, "steps": "5,30", "bake_s": "10m", "shadow_percent": True}
    _old_tag(two_versions, "cancer#prod#3", v2.commit, old | canary | unreadable)

    deployments = Deployments(registry)
    history = deployments.history("cancer", "prod")
    assert [(a.action, a.canary_percent, a.shadow_percent, a.steps, a.bake_s, a.step) for a in history] == [
        ("deploy", None, None, (), None, None),
        ("canary", 20, None, (), None, None),
        ("canary", 30, None, (), None, None),
    ]
    state = deployments.state("cancer", "prod")
    assert (state.version, state.canary_percent, state.shadow) == ("v1.0.0", 30, None)
    assert state.to_dict()["canary"] == {
        "version": "v1.1.0",
        "deployment": "cancer#prod#3",
        "percent": 30,
        "steps": [],
        "bake_s": None,
    }
    # The new fields are written only when set, so a tag of a plain deploy reads the same in the old release.
    written = deployments.assign(v2, "prod", "promote", reason="good")
    trailer = git(two_versions, "tag", "-l", "--format=%(contents)", written.tag).split(f"{TRAILER_ASSIGNMENT}: ")[1]
    assert not {"shadow_percent", "steps", "bake_s"} & set(json.loads(trailer))
    told = json.loads(run_cli("history", "cancer", "--env", "prod", "--json", cwd=two_versions).stdout)
    assert [a["steps"] for a in told["assignments"]] == [[], [], [], []]
