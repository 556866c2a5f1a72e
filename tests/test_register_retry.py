"""After a register killed at ``committed`` (its commit made, no tag): a retry that asks otherwise, and
``rollbackkit recover``, which finishes it, and only a commit this clone's register made.

The trust and ``unsafe`` a manifest records come from the model file itself (the types a skops file needs
beyond the reviewed ones; an unsafe format), so a retry of the same file cannot ask another trust: the bundle
id would differ first. A retry differs in its message, author, or fields a newer release wrote.

The killed register is a process of its own (SIGKILL takes its process); the rest runs as a user's day
would. The model is a skops file with string labels and missing values (the boosted model takes NaN).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
import yaml

from rollbackkit import Registry
from rollbackkit.bundle.manifest import Manifest
from rollbackkit.errors import RecoveryUnfinished, VersionNotFound
from rollbackkit.locking import CRASH_ENV
from rollbackkit.registry.interrupted import at_head, manifest_at, registration_changes
from rollbackkit.registry.journal import Journal

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
    project: Path, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = _killed_at_commit(project, inputs, "--message", "nightly retrain")
    typo = run_cli("register", "cancer", "--model", "nowhere.skops", "--train-data", str(inputs["train"]), cwd=project)
    assert typo.returncode == 1  # another command ran first: it reset the workspace and kept the commit
    notes = project / "bundles/cancer/NOTES.md"
    notes.write_text("why tonight's retrain\n")  # the user's own file, which recover must not delete
    with monkeypatch.context() as full:  # the journal cannot take the register record: the tag is taken back
        full.setattr(Journal, "append", _refusing(Journal.append))
        with pytest.raises(OSError, match="No space left"):
            Registry(project).recover()
    assert git(project, "tag", "-l") == "" and _registered(project) == []

    recovered = run_cli("recover", cwd=project)

    assert recovered.returncode == 0, recovered.stderr
    said = " ".join(recovered.stdout.split())
    assert f"tagged cancer@v1.0.0 on HEAD {commit[:7]}" in said
    assert "bundles/cancer/NOTES.md was not written by rollbackkit" in said
    assert "and retry: 'rollbackkit restore cancer@v1.0.0'" in said and notes.read_text() == "why tonight's retrain\n"
    assert git(project, "rev-list", "-n1", "cancer@v1.0.0").strip() == commit
    notes.rename(tmp_path / "NOTES.md")
    assert run_cli("restore", "cancer@v1.0.0", cwd=project).returncode == 0
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

    said = run_cli("recover", "--json", cwd=project)

    assert said.returncode == 1 and said.stdout == ""  # one line on stderr, not "recovered": true
    line = " ".join(said.stderr.split())
    assert f"HEAD {commit[:7]} cannot be made a version: model.skops is not in the DVC remote." in line
    assert "Run 'rollbackkit register cancer --version v1.0.0 ...' again: asking the same registration tags" in line
    with pytest.raises(RecoveryUnfinished, match="not in the DVC remote"):  # the journal keeps the proof
        registry.recover()
    assert git(project, "tag", "-l") == "" and _registered(project) == []
    info = registry.register("cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v1.0.0")
    assert info.commit == commit and pushed.is_file()  # the same registration: its commit tagged, data pushed again
    assert registry.verify().ok


def test_recover_tags_only_what_a_register_of_this_clone_made(project: Path, inputs: dict[str, Path]) -> None:
    """A newer release's killed register, retried by this one; then commits nobody here registered."""
    _killed_at_commit(project, inputs, "--message", "nightly")
    newer = yaml.safe_load(git(project, "show", "HEAD:bundles/cancer/bundle.yaml"))
    newer["registration"]["reviewer"] = "ops-lead"  # a registration field this release does not know
    _commit_bundle_yaml(project, newer, "--amend")
    registry = Registry(project)
    assert manifest_at(registry, at_head(registry)).ignored == ("registration.reviewer",)  # type: ignore[arg-type, union-attr]
    amended = git(project, "rev-parse", "HEAD").strip()

    info = registry.register(
        "cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v1.0.0", message="nightly"
    )

    assert info.commit != amended and git(project, "rev-parse", "HEAD^").strip() == amended  # not reused
    assert any("fields this release does not read: registration.reviewer" in note for note in info.notes)
    assert "reviewer" not in git(project, "show", "cancer@v1.0.0:bundles/cancer/bundle.yaml")

    forged = yaml.safe_load(git(project, "show", "HEAD:bundles/cancer/bundle.yaml"))  # widened by hand
    forged["registration"].update(version="v2.0.0", trust=["os.system", "builtins.eval"], unsafe=True)
    forged["bundle_id"] = Manifest.model_validate(forged).content_id()
    _commit_bundle_yaml(project, forged, "-m", "rollbackkit: register cancer v2.0.0")
    with pytest.raises(RecoveryUnfinished, match="nothing in this clone records that a register here made it"):
        registry.recover()
    assert git(project, "tag", "-l").split() == ["cancer@v1.0.0"] and len(_registered(project)) == 1

    git(project, "commit", "-q", "--allow-empty", "-m", f"rollbackkit: register {'b' * 101} v1.0.0")
    assert registry.recover() is None  # a subject naming what no register accepts is no register's commit


def _commit_bundle_yaml(project: Path, manifest: dict, *how: str) -> None:
    """Commit ``manifest`` as bundles/cancer/bundle.yaml (a hand-made commit, or an amended one)."""
    (project / "bundles/cancer/bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    git(project, "add", "bundles/cancer/bundle.yaml")
    git(project, "commit", "-q", *how, *(["--no-edit"] if "--amend" in how else []))


def _refusing(append: Callable[..., dict]) -> Callable[..., dict]:
    """``Journal.append`` on a full disk for a register record (any other record is written)."""

    def refuse(self: Journal, event: str, **fields: object) -> dict:
        if event == "register":
            raise OSError(28, "No space left on device")
        return append(self, event, **fields)

    return refuse


def _rows(inputs: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(inputs["train"]).drop(columns=["target"]).head(5)


def test_an_intent_record_of_an_earlier_release_is_named_and_a_same_registration_retry_tags_its_commit(
    project: Path, inputs: dict[str, Path]
) -> None:
    commit = _killed_at_commit(project, inputs, "--message", "nightly")
    intent = project / ".rollbackkit/local/intents/current.json"
    older = json.loads(intent.read_text())
    del older["commit"]  # the record the release before the commit proof wrote
    intent.write_text(json.dumps(older))
    registry = Registry(project)

    for _ in range(2):  # the same true line, before and after the journal kept it
        with pytest.raises(RecoveryUnfinished) as refused:
            registry.recover()
        assert f"HEAD {commit[:7]} may be its complete commit, but its intent record names no commit" in str(
            refused.value.message
        )
        assert "asking the same registration tags that commit" in refused.value.hint

    info = registry.register(
        "cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v1.0.0", message="nightly"
    )
    assert info.commit == commit and registry.verify().ok


def test_an_interrupted_commit_is_named_until_later_commits_bury_it_and_register_says_it_buries_one(
    project: Path, inputs: dict[str, Path]
) -> None:
    commit = _killed_at_commit(project, inputs, "--message", "nightly")
    shown = run_cli("show", "cancer@v1.0.0", cwd=project)
    assert shown.returncode == 1
    said = " ".join(shown.stderr.split())
    assert f"an interrupted register left commit {commit[:7]} for cancer@v1.0.0. Run 'rollbackkit recover'." in said

    git(project, "commit", "-q", "--allow-empty", "-m", "unrelated")  # HEAD moves past it
    registry = Registry(project)
    first = registry.recover()  # the intent record's proof: a note, recover's other work stands
    later = run_cli("recover", cwd=project)  # the journal's proof, as a recover run to repair a journal meets it
    assert later.returncode == 0, later.stderr
    for said in (str(first), " ".join(later.stdout.split())):
        assert f"cancer@v1.0.0, {commit[:7]}, is now HEAD~1, under later commits" in said
        assert "so recover cannot finish it (register it again ('rollbackkit register cancer --version v1.0.0" in said
    git(project, "reset", "-q", "--hard", "HEAD~1")  # the user drops the unrelated commit: HEAD is it again

    info = registry.register("cancer", str(inputs["model"]), str(inputs["train"]), target="target", version="v2.0.0")

    assert git(project, "rev-parse", "HEAD^").strip() == commit
    assert [n for n in info.notes if commit[:7] in n] == [
        f"an interrupted register left commit {commit[:7]} holding cancer@v1.0.0, untagged; this commit goes on top "
        "of it, so 'rollbackkit recover' can no longer finish it (register cancer@v1.0.0 again to make it a version)"
    ]
    assert [r.get("buried") for r in _registered(project)] == [commit]  # the journal's advice superseded
    assert registry.recover() is None  # told at register: nothing left to recover
    with pytest.raises(VersionNotFound, match=f"{commit[:7]}, is now HEAD~1, under later commits"):
        registry.resolve("cancer@v1.0.0")


def test_recover_says_to_upgrade_for_a_commit_a_newer_release_left(project: Path, inputs: dict[str, Path]) -> None:
    _killed_at_commit(project, inputs)
    newer = yaml.safe_load(git(project, "show", "HEAD:bundles/cancer/bundle.yaml"))
    newer["format"] = "rollbackkit/bundle@2"
    _commit_bundle_yaml(project, newer, "--amend")  # a newer release's register, killed after its commit
    intent = project / ".rollbackkit/local/intents/current.json"
    amended = git(project, "rev-parse", "HEAD").strip()
    intent.write_text(json.dumps({**json.loads(intent.read_text()), "commit": amended}))

    said = run_cli("recover", cwd=project)

    assert said.returncode == 1 and git(project, "tag", "-l") == ""
    line = " ".join(said.stderr.split())
    assert f"HEAD {amended[:7]} cannot be made a version: its bundles/cancer/bundle.yaml is of a newer format" in line
    assert line.endswith("Upgrade rollbackkit on this machine, then run 'rollbackkit recover' again.")
