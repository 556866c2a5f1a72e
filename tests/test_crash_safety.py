"""Kill ``register`` with SIGKILL after each of its steps: never a half-made version.

After every kill: a tag exists only if the register had finished; ``verify --all`` passes;
``git status`` shows changes only inside the bundle and ``dvc.yaml``; ``rollbackkit
recover`` (or any next command) leaves a clean tree; and registering again succeeds.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import skops.io as sio

from rollbackkit import Registry
from rollbackkit.locking import CRASH_ENV
from rollbackkit.registry.register import REGISTER_STEPS

from .conftest import Data, git, run_cli


@pytest.fixture
def inputs(tmp_path: Path, data: Data, models: dict) -> dict[str, Path]:
    model = tmp_path / "v2.skops"
    sio.dump(models["v2"], model)
    train = tmp_path / "train.parquet"
    data.frame.to_parquet(train)
    return {"model": model, "train": train}


@pytest.mark.parametrize("step", REGISTER_STEPS)
def test_register_killed_after_each_step_leaves_no_half_version(
    project: Path, data: Data, models: dict, inputs: dict[str, Path], step: str
) -> None:
    Registry(project).register("cancer", models["v1"], data.frame, target="target", version="v1.0.0")
    args = [
        "register",
        "cancer",
        "--model",
        str(inputs["model"]),
        "--train-data",
        str(inputs["train"]),
        "--target",
        "target",
        "--version",
        "v1.1.0",
    ]

    killed = run_cli(*args, cwd=project, env={CRASH_ENV: step})
    assert killed.returncode == -signal.SIGKILL

    tag_exists = bool(git(project, "tag", "-l", "cancer@v1.1.0").strip())
    assert tag_exists == (step == "tagged")
    verified = run_cli("verify", "--all", "--json", cwd=project)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"] is True
    dirty = [line[3:] for line in git(project, "status", "--porcelain", "--untracked-files=all").splitlines()]
    assert all(p.startswith("bundles/cancer/") or p == "dvc.yaml" for p in dirty), dirty

    recovered = run_cli("recover", cwd=project, process=True)  # after a kill: fresh processes, as an operator's
    assert recovered.returncode == 0, recovered.stderr
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert Registry(project).load("cancer@v1.0.0").version == "v1.0.0"

    retry = run_cli(*args, cwd=project, process=True)
    if step == "tagged":
        assert retry.returncode == 1 and "already registered" in retry.stderr
    else:
        assert retry.returncode == 0, retry.stderr
    registry = Registry(project)
    assert [v.version for v in registry.versions("cancer")] == ["v1.0.0", "v1.1.0"]
    assert registry.verify().ok
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert len(registry.load("cancer@v1.1.0").predict(data.X.head(3))) == 3
