"""Kill ``register`` with SIGKILL after each of its steps: never a half-made version.

After every kill: a tag exists only if the register had tagged; ``verify --all`` passes (after a kill
between the tag and its journal record, it names that register until ``recover`` records it);
``git status`` shows changes only inside the bundle and ``dvc.yaml``; ``rollbackkit
recover`` (or any next command) leaves a clean tree; and registering again succeeds.

Only the killed register is a process of its own (SIGKILL takes its process). The rest is one
kernel's day, as a notebook has it: the ``Registry`` it opened before the crash recovers and
registers again in the test's own process, and must see the repository as it now is. The retry's
clock is pinned 5 s after the killed register's (``registration.created``). After a kill at
``committed``, ``recover`` finishes the register: it tags the commit the killed one left at HEAD
(tests/test_register_retry.py has a retry that asks otherwise, and a commit recover cannot finish).
"""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta
from pathlib import Path
from unittest.mock import ANY

import pytest
import skops.io as sio
import yaml

from rollbackkit import Registry
from rollbackkit.errors import VersionExists
from rollbackkit.locking import CRASH_ENV
from rollbackkit.ops.traffic import deploy
from rollbackkit.registry.register import REGISTER_STEPS

from .conftest import Data, git, run_cli


@pytest.fixture
def labelled(data: Data) -> Data:
    """The breast-cancer frame with string labels and missing values (the boosted model takes NaN)."""
    frame = data.frame.assign(target=data.frame["target"].map({0: "malignant", 1: "benign"}).astype("string"))
    frame.loc[frame.index[::7], "mean radius"] = float("nan")
    return Data(frame)


@pytest.fixture
def inputs(tmp_path: Path, labelled: Data, models: dict) -> dict[str, Path]:
    model = tmp_path / "boosted.skops"
    sio.dump(models["v2"].__class__(**models["v2"].get_params()).fit(labelled.X, labelled.y), model)
    train = tmp_path / "train.parquet"
    labelled.frame.to_parquet(train)
    return {"model": model, "train": train}


@pytest.mark.parametrize("step", REGISTER_STEPS)
def test_register_killed_after_each_step_leaves_no_half_version(
    project: Path, labelled: Data, models: dict, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    registry = Registry(project)  # the kernel's one Registry, opened before the crash and kept
    first = models["v1"].__class__(**models["v1"].get_params()).fit(labelled.X.fillna(0), labelled.y)
    registry.register("cancer", first, labelled.frame.fillna(0), target="target", version="v1.0.0")
    again = {"model": str(inputs["model"]), "train_data": str(inputs["train"]), "target": "target"}
    flags = ("--model", again["model"], "--train-data", again["train_data"], "--target", "target")

    killed = run_cli("register", "cancer", *flags, "--version", "v1.1.0", cwd=project, env={CRASH_ENV: step})
    assert killed.returncode == -signal.SIGKILL

    tag_exists = bool(git(project, "tag", "-l", "cancer@v1.1.0").strip())
    assert tag_exists == (step == "tagged")
    verified = run_cli("verify", "--all", "--json", cwd=project)
    problems = [p["problem"] for p in json.loads(verified.stdout)["problems"]]
    unrecorded = "register of cancer@v1.1.0 was interrupted before its journal record; run 'rollbackkit recover'"
    assert (verified.returncode, problems) == ((1, [unrecorded]) if step == "tagged" else (0, [])), verified.stdout
    dirty = [line[3:] for line in git(project, "status", "--porcelain", "--untracked-files=all").splitlines()]
    assert all(p.startswith("bundles/cancer/") or p == "dvc.yaml" for p in dirty), dirty
    killed_at = yaml.safe_load((project / "bundles/cancer/bundle.yaml").read_text())["registration"]["created"]
    later = datetime.fromisoformat(killed_at) + timedelta(seconds=5)
    monkeypatch.setattr("rollbackkit.registry.builder.datetime", _clock_at(later))

    if step == "committed":  # a recover killed between its tag and its journal record, then one more
        killed = run_cli("recover", cwd=project, env={CRASH_ENV: "recover_tagged"})
        assert killed.returncode == -signal.SIGKILL and git(project, "tag", "-l", "cancer@v1.1.0").strip()
    recovered = run_cli("recover", cwd=project)
    assert recovered.returncode == 0, recovered.stderr
    if step in ("committed", "tagged"):  # never a tag without its journal record
        assert "before its journal record: recorded it" in " ".join(recovered.stdout.split())
        assert registry.registrations()["cancer@v1.1.0"] == (git(project, "rev-parse", "HEAD").strip(), ANY)
    assert registry.recover() is None  # the kept Registry finds nothing left to do
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert registry.load("cancer@v1.0.0").version == "v1.0.0"

    if step in ("committed", "tagged"):  # recover finished the one killed after its commit
        with pytest.raises(VersionExists, match="already registered"):
            registry.register("cancer", **again, version="v1.1.0")
    else:
        registry.register("cancer", **again, version="v1.1.0")
    assert [v.version for v in registry.versions("cancer")] == ["v1.0.0", "v1.1.0"]
    if step == "committed":  # the killed recover tagged the killed register's commit: one commit, not empty
        assert git(project, "log", "--format=%s").count("register cancer v1.1.0") == 1
        assert run_cli("show", "cancer@v1.1.0", cwd=project).returncode == 0
    assert registry.verify().ok
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    predicted = registry.load("cancer@v1.1.0").predict(labelled.X.head(8))
    assert len(predicted) == 8 and set(predicted.iloc[:, 0]) <= {"malignant", "benign"}
    deploy(project, "cancer@v1.1.0", "prod", reason="after the crash")
    assert registry.resolve("cancer#prod").version == "v1.1.0"
    assert Registry(project).verify().ok


def _clock_at(moment: datetime) -> type[datetime]:
    """A ``datetime`` whose ``now()`` is ``moment``."""

    class Pinned(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return moment

    return Pinned
