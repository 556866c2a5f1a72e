"""Bad input gets one clear error and changes nothing: no tag, no commit, no stray files."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest
import skops.io as sio

from rollbackkit import Registry
from rollbackkit.errors import (
    DirtyWorkspace,
    InvalidInput,
    InvalidName,
    InvalidPath,
    InvalidVersion,
    NotAGitRepo,
    NotInitialised,
    RemoteError,
    RollbackkitError,
)
from rollbackkit.refs import Reference

from .conftest import Data, git, run_cli


def repo_state(repo: Path) -> tuple[str, str, str]:
    """Tags with their commits, HEAD, and the porcelain status (ignored files included).

    ``.dvc/cache`` is left out: content-addressed objects there are immutable and
    unreferenced until a version points at them (``dvc gc`` removes them).
    """
    status = git(repo, "status", "--porcelain", "--ignored").splitlines()
    return (
        git(repo, "tag", "-l", "--format=%(refname) %(*objectname)"),
        git(repo, "rev-parse", "HEAD"),
        "\n".join(line for line in status if line != "!! .dvc/cache/"),
    )


@pytest.mark.parametrize(
    "name", ["Churn", "churn model", "../etc", "churn/", "/churn", "a..b", "-x", "x-", "", "x" * 101]
)
def test_invalid_names_are_refused_before_anything_is_written(
    project: Path, data: Data, models: dict, name: str
) -> None:
    before = repo_state(project)
    with pytest.raises(InvalidName):
        Registry(project).register(name, models["v1"], data.frame, target="target")
    assert repo_state(project) == before


@pytest.mark.parametrize("version", ["1.0.0", "v1", "v1.0", "v01.0.0", "latest", "v1.0.0 ", "v1.0.0/../x"])
def test_invalid_versions_are_refused(project: Path, data: Data, models: dict, version: str) -> None:
    before = repo_state(project)
    with pytest.raises(InvalidVersion):
        Registry(project).register("churn", models["v1"], data.frame, target="target", version=version)
    assert repo_state(project) == before


@pytest.mark.parametrize("text", ["", "churn@", "churn@v1", "Churn#prod", "churn#Prod", "churn@v1.0.0@v2.0.0"])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(RollbackkitError):
        Reference.parse(text)


def test_a_directory_that_is_not_a_git_repo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAGitRepo, match="not inside a git repository"):
        Registry(tmp_path)
    cli = run_cli("list", cwd=tmp_path)
    assert cli.returncode == 1
    assert cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr


def test_register_before_init_says_to_run_init(git_repo: Path, data: Data, models: dict) -> None:
    with pytest.raises(NotInitialised, match="rollbackkit init"):
        Registry(git_repo).register("churn", models["v1"], data.frame, target="target")


def _write_text_model(tmp: Path) -> Path:
    path = tmp / "model.skops"
    path.write_text("this is not a model")
    return path


def _write_joblib_dict(tmp: Path) -> Path:
    path = tmp / "model.joblib"
    joblib.dump({"not": "a model"}, path)
    return path


def _write_odd_suffix(tmp: Path) -> Path:
    path = tmp / "model.bin"
    path.write_bytes(b"\0\1")
    return path


BAD_MODELS: dict[str, tuple[Callable[[Path], Path], type[RollbackkitError]]] = {
    "missing": (lambda tmp: tmp / "nope.skops", InvalidPath),
    "text-as-skops": (_write_text_model, InvalidInput),
    "joblib-without-predict": (_write_joblib_dict, InvalidInput),
    "unknown-suffix": (_write_odd_suffix, InvalidInput),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_model_path_that_is_not_a_model_is_refused(project: Path, tmp_path: Path, data: Data, case: str) -> None:
    make, error = BAD_MODELS[case]
    before = repo_state(project)
    with pytest.raises(error):
        Registry(project).register("churn", make(tmp_path), data.frame, target="target")
    assert repo_state(project) == before


def test_training_data_that_cannot_be_read_is_refused(project: Path, tmp_path: Path, models: dict, data: Data) -> None:
    garbage = tmp_path / "train.parquet"
    garbage.write_bytes(b"PAR1 not really")
    registry = Registry(project)
    before = repo_state(project)
    with pytest.raises(InvalidInput, match="cannot be read"):
        registry.register("churn", models["v1"], garbage, target="target")
    with pytest.raises(InvalidPath):
        registry.register("churn", models["v1"], tmp_path / "missing.csv", target="target")
    with pytest.raises(InvalidInput, match="Target column 'label'"):
        registry.register("churn", models["v1"], data.frame, target="label")
    with pytest.raises(InvalidInput, match="trained on other columns"):
        registry.register("churn", models["v1"], data.frame.iloc[:, 3:], target="target")
    assert repo_state(project) == before


def test_uncommitted_dvc_yaml_is_refused_other_work_is_left_alone(project: Path, data: Data, models: dict) -> None:
    registry = Registry(project)
    registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0")
    (project / "dvc.yaml").write_text((project / "dvc.yaml").read_text() + "# my edit\n")
    with pytest.raises(DirtyWorkspace, match=r"dvc\.yaml"):
        registry.register("cancer", models["v2"], data.frame, target="target")
    git(project, "checkout", "dvc.yaml")

    (project / "README.md").write_text("work in progress\n")
    git(project, "add", "README.md")
    (project / "notes.txt").write_text("untracked\n")
    info = registry.register("cancer", models["v2"], data.frame, target="target")
    assert "README.md" not in git(project, "show", "--name-only", "--format=", info.commit)
    status = git(project, "status", "--porcelain")
    assert status == "M  README.md\n?? notes.txt\n"


def test_an_unreachable_remote_leaves_no_version_and_a_clean_tree(project: Path, data: Data, models: dict) -> None:
    blocker = project.parent / "a-file"
    blocker.write_text("a file where the remote's parent directory should be")
    registry = Registry(project)
    with registry.dvc.repo.config.edit() as conf:
        conf["remote"]["rollbackkit"] = {"url": str(blocker / "remote")}
    git(project, "commit", "-qam", "point the remote at an unreachable place")
    before = repo_state(project)
    with pytest.raises(RemoteError, match="nothing was registered"):
        Registry(project).register("cancer", models["v1"], data.frame, target="target")
    assert repo_state(project) == before
    cli = run_cli("list", "--json", cwd=project)
    assert cli.stdout.strip().replace(" ", "").replace("\n", "") == '{"bundles":[]}'


def test_two_concurrent_registers_of_one_version_exactly_one_wins(
    project: Path, tmp_path: Path, data: Data, models: dict
) -> None:
    model = tmp_path / "model.skops"
    sio.dump(models["v1"], model)
    train = tmp_path / "train.csv"
    data.frame.to_csv(train, index=False)
    from .conftest import BIN

    args = [
        str(BIN / "rollbackkit"),
        "register",
        "cancer",
        "--model",
        str(model),
        "--train-data",
        str(train),
        "--target",
        "target",
        "--version",
        "v2.0.0",
    ]
    procs = [
        subprocess.Popen(args, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "already registered" in loser
    assert [v.version for v in Registry(project).versions("cancer")] == ["v2.0.0"]
    assert git(project, "status", "--porcelain") == ""
    assert Registry(project).verify().ok


def test_a_model_skops_cannot_read_back_is_refused_at_register(project: Path) -> None:
    """skops writes pandas.NA (SimpleImputer(missing_values=pd.NA)) but cannot load it: the
    user hears so at register, in one line, and nothing is registered."""
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame(
        {"plan": pd.array(["basic", None, "pro", "plus"] * 50, dtype="string"), "target": ["stay", "churn"] * 100}
    )
    model = make_pipeline(
        SimpleImputer(missing_values=pd.NA, strategy="constant", fill_value="missing"),
        OrdinalEncoder(),
        DecisionTreeClassifier(random_state=0),
    ).fit(frame[["plan"]], frame["target"])
    registry = Registry(project)
    with pytest.raises(InvalidInput, match="does not load back") as raised:
        registry.register("plans", model, frame, target="target")
    assert "preprocess.py" in raised.value.hint
    assert registry.versions("plans") == []
    assert "plans@" not in git(project, "tag", "--list")
