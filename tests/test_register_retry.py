"""After a register killed at ``committed`` (its commit made, no tag): a retry that asks otherwise, and
``rollbackkit recover``, which finishes it.

The killed register is a process of its own (SIGKILL takes its process); the rest runs as a user's day
would. The model is a skops file with string labels and missing values (the boosted model takes NaN).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
import yaml

from rollbackkit import Registry
from rollbackkit.locking import CRASH_ENV
from rollbackkit.registry.interrupted import at_head, manifest_at, registration_changes

from .conftest import Data, git, run_cli


@pytest.fixture
def inputs(tmp_path: Path, data: Data, models: dict) -> dict[str, Path]:
    """A boosted model on string labels with NaN inputs, and its training frame, as files."""
    frame = data.frame.assign(target=data.frame["target"].map({0: "malignant", 1: "benign"}).astype("string"))
    frame.loc[frame.index[::7], "mean radius"] = float("nan")
    model, train = tmp_path / "boosted.skops", tmp_path / "train.parquet"
    X, y = frame.drop(columns=["target"]), frame["target"]
    sio.dump(models["v2"].__class__(**models["v2"].get_params()).fit(X, y), model)
    frame.to_parquet(train)
    return {"model": model, "train": train}


def _killed_at_commit(project: Path, inputs: dict[str, Path], *extra: str, env: dict[str, str] | None = None) -> str:
    """Register cancer@v1.0.0 in a process killed right after its commit; returns that commit."""
    flags = ("--model", str(inputs["model"]), "--train-data", str(inputs["train"]), "--target", "target")
    killed = run_cli(
        "register",
        "cancer",
        *flags,
        "--version",
        "v1.0.0",
        *extra,
        cwd=project,
        env={CRASH_ENV: "committed", **(env or {})},
    )
    assert killed.returncode == -signal.SIGKILL
    assert git(project, "tag", "-l") == ""
    return git(project, "rev-parse", "HEAD").strip()


def _registered(project: Path) -> list[dict]:
    """The journal's register records."""
    lines = (project / ".rollbackkit/local/journal.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == "register"]


def test_a_retry_that_asks_another_message_tags_a_commit_recording_what_it_asked(
    project: Path, inputs: dict[str, Path]
) -> None:
    first = _killed_at_commit(project, inputs, "--message", "first try", env={"GIT_AUTHOR_NAME": "Night Job"})
    theirs = manifest_at(Registry(project), at_head(Registry(project)))  # type: ignore[arg-type]
    assert theirs is not None and theirs.registration.author == "Night Job"
    # What a retry may ask otherwise for the same bundle, its time aside: each is a registration of its own.
    asked = theirs.registration.model_copy(update={"trust": ("mypkg.Model",), "unsafe": True, "created": "later"})
    assert registration_changes(theirs, theirs.model_copy(update={"registration": asked})) == ["trust", "unsafe"]

    registry = Registry(project)
    info = registry.register(
        "cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v1.0.0", message="reviewed"
    )

    assert info.commit != first and git(project, "rev-parse", "HEAD^").strip() == first  # on top, no rewrite
    tagged = yaml.safe_load(git(project, "show", "cancer@v1.0.0:bundles/cancer/bundle.yaml"))["registration"]
    assert tagged["message"] == "reviewed" and tagged["author"] != "Night Job"
    assert registry.resolve("cancer@v1.0.0").message == "reviewed"  # the tag says what its commit holds
    assert [(r["commit"], r.get("trust", [])) for r in _registered(project)] == [(info.commit, tagged["trust"])]
    assert "another author, message" in git(project, "log", "-1", "--format=%b")
    assert any(f"left commit {first[:7]} with another author, message" in note for note in info.notes)
    assert registry.verify().ok
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert set(registry.load("cancer@v1.0.0").predict(_rows(inputs)).iloc[:, 0]) <= {"malignant", "benign"}


def test_recover_tags_the_commit_a_killed_register_left_and_show_sees_the_version(
    project: Path, inputs: dict[str, Path]
) -> None:
    commit = _killed_at_commit(project, inputs, "--message", "nightly retrain")
    typo = run_cli("register", "cancer", "--model", "nowhere.skops", "--train-data", str(inputs["train"]), cwd=project)
    assert typo.returncode == 1  # another command ran first: it reset the workspace and kept the commit

    recovered = run_cli("recover", cwd=project)

    assert recovered.returncode == 0, recovered.stderr
    assert f"tagged cancer@v1.0.0 on HEAD {commit[:7]}" in " ".join(recovered.stdout.split())
    assert git(project, "rev-list", "-n1", "cancer@v1.0.0").strip() == commit
    shown = json.loads(run_cli("show", "cancer@v1.0.0", "--json", cwd=project).stdout)
    assert shown["message"] == "nightly retrain" and shown["commit"] == commit
    assert [(r["tag"], r["commit"], r["recovered"]) for r in _registered(project)] == [("cancer@v1.0.0", commit, True)]
    registry = Registry(project)
    assert registry.verify().ok
    assert (project / "bundles/cancer/model.skops").is_file()  # its files in place, as a register leaves them
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert run_cli("recover", cwd=project).stdout.strip() == "Nothing to recover."  # nothing interrupted: unchanged
    assert registry.recover() is None and len(_registered(project)) == 1
    assert len(registry.load("cancer@v1.0.0").predict(_rows(inputs))) == 5


def test_recover_leaves_a_commit_whose_data_is_not_in_the_remote_and_says_to_register_again(
    project: Path, inputs: dict[str, Path]
) -> None:
    commit = _killed_at_commit(project, inputs)
    registry = Registry(project)
    model = manifest_at(registry, at_head(registry)).components["model"]  # type: ignore[arg-type, union-attr]
    remote = Path(str(registry.dvc.remote_url()))
    [pushed] = [p for p in remote.rglob(model.md5[2:]) if p.parent.name == model.md5[:2]]
    pushed.unlink()  # the remote lost the model: a tag would name data no clone can fetch

    said = registry.recover()

    assert said is not None and "cannot be made a version" in said and "not in the DVC remote" in said
    assert "register cancer@v1.0.0 again" in said
    assert git(project, "tag", "-l") == "" and _registered(project) == []
    info = registry.register("cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v1.0.0")
    assert info.commit == commit and pushed.is_file()  # the same registration: its commit tagged, data pushed again
    assert registry.verify().ok


def _rows(inputs: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(inputs["train"]).drop(columns=["target"]).head(5)
