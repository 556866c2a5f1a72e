"""`make demo` runs `rollbackkit demo`: the whole story from nothing, on embedded defaults.

The story is the run's one demo run (tests/demo_run.py, with --notify: tests/test_notify_demo.py and
tests/test_jupyterlab.py read the same run)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from rollbackkit import Registry
from rollbackkit.ops.runbook_record import verify_audit
from rollbackkit.registry.assignments import Deployments

from .conftest import BIN, copy_project, git, run_cli, run_tool
from .demo_run import notified_demo


def test_the_demo_tells_the_whole_story(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    demo = notified_demo(tmp_path_factory)
    target, result = demo.target, demo.result
    out = " ".join(result.stdout.split())
    for fragment in ("dvc repro", "auto-rollback", "Runbook: already-rolled-back", "backfilled with v1.0.0", "Done"):
        assert fragment in out, (fragment, result.stdout)

    registry = Registry(target)
    versions = registry.versions("churn")
    assert [(v.version, len(registry.describe(v).schema.feature_names)) for v in versions] == [
        ("v1.0.0", 47),
        ("v1.1.0", 52),
    ]
    history = Deployments(registry).history("churn", "prod")
    assert [(a.version, a.action) for a in history] == [
        ("v1.0.0", "deploy"),
        ("v1.1.0", "canary"),
        ("v1.0.0", "auto-rollback"),
    ]
    assert registry.verify().ok and verify_audit(target).ok

    # The pipeline is real DVC: `dvc repro` reproduces the same two versions, gto lists them (on a copy:
    # the run's demo project is shared read-only with the other tests that read it, on any worker).
    target = copy_project(target, tmp_path)
    tags = git(target, "tag", "-l")
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # the stages run `python` from the venv
    again = subprocess.run(
        [str(BIN / "dvc"), "repro", "--force"],
        cwd=target,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    ids = json.loads((target / "registered.json").read_text())
    assert ids == {v.version: v.bundle_id for v in versions}
    assert git(target, "tag", "-l") == tags  # immutable: nothing re-registered, no tag moved
    gto = json.loads(run_tool("gto", "show", "--json", cwd=target).stdout)
    assert gto["churn"]["version"] == "v1.1.0" and gto["churn"]["stage"] == {"prod": "v1.0.0"}
    listed = json.loads(run_tool("gto", "show", "churn", "--json", cwd=target).stdout)
    assert {v["version"] for v in listed} == {"v1.0.0", "v1.1.0"}
    assert yaml.safe_load((target / "dvc.yaml").read_text())["artifacts"]["churn"]["type"] == "model"


def test_the_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not delete")
    result = run_cli("demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "not an earlier rollbackkit demo" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "do not delete"
    assert BIN.exists()
