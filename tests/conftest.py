"""Shared fixtures: an isolated HOME and git identity for the session, a fresh repo per test.

Repos are built only through rollbackkit's public API, on a real dataset shipped with
scikit-learn, with real git and a real DVC local-directory remote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from tests.cli import run_cli, run_process_cli  # noqa: F401  (the rollbackkit command, in process / as a process)
from tests.module_order import pytest_collection_modifyitems  # noqa: F401  (whole modules, longest first)
from tests.postgres import postgres, store_url  # noqa: F401  (fixtures: a real PostgreSQL, a fresh database)

SESSION_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "DVC_NO_ANALYTICS": "1",
    "GTO_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "Ada Oncall",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Oncall",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HOME, git config and Jupyter/DVC state all live in a session temp dir."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Ada Oncall\n\temail = ada@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    saved = dict(os.environ)
    os.environ.update(
        SESSION_ENV,
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    from rollbackkit.ops.runbooks import ensure_kernel

    ensure_kernel()  # the named kernel lives in the venv, never found elsewhere on the machine
    yield home
    os.environ.clear()
    os.environ.update(saved)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def run_tool(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a real peer tool (``gto``, ``dvc``) from the venv."""
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def new_repo(repo: Path, title: str = "churn project") -> Path:
    """Create ``repo``: a fresh git repo with one commit (a README titled ``title``)."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text(f"# {title}\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial commit")
    return repo


def shared_template(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """A session template built ONCE per run, even with xdist workers (pytest-xdist's documented
    pattern): the first worker to ask builds it under the run's shared temp dir while the others
    wait on a file lock, then all use it. ``build(root)`` makes it inside the empty ``root`` and
    returns its path; tests never write to a template, only to their copies (:func:`copy_project`).
    A process asks the file system once per name (modules that share a template share it serially too)."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = _shared_template(tmp_path_factory, name, build)
    return _TEMPLATES[name]


_TEMPLATES: dict[str, Path] = {}


def _shared_template(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / "shared-templates" / name
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{root}.lock"):
        built = root / ".built"
        if built.exists():
            return root / built.read_text()
        shutil.rmtree(root, ignore_errors=True)  # a build that failed in another worker
        root.mkdir()
        result = build(root)
        built.write_text(str(result.relative_to(root)))
        return result


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh git repo with one commit (a README)."""
    return new_repo(tmp_path / "project")


@pytest.fixture
def project(git_repo: Path) -> Path:
    """A git repo set up with ``Registry.init`` (DVC + local directory remote)."""
    from rollbackkit import Registry

    Registry.init(git_repo)
    return git_repo


@dataclass(frozen=True)
class Data:
    """The breast-cancer dataset as a frame with a ``target`` column."""

    frame: pd.DataFrame

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.drop(columns=["target"])

    @property
    def y(self) -> pd.Series:
        return self.frame["target"]


@pytest.fixture(scope="session")
def data() -> Data:
    """A real dataset shipped with scikit-learn."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return Data(X.assign(target=y))


@pytest.fixture(scope="session")
def models(data: Data) -> dict[str, object]:
    """Two fitted models: v1 a random forest, v2 a histogram gradient-boosting classifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    return {
        "v1": RandomForestClassifier(n_estimators=20, random_state=0).fit(data.X, data.y),
        "v2": HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(data.X, data.y),
    }


@pytest.fixture(scope="session")
def two_versions_template(
    tmp_path_factory: pytest.TempPathFactory, data: Data, request: pytest.FixtureRequest, isolated_home: Path
) -> Path:
    """``cancer@v1.0.0`` and ``cancer@v1.1.0`` registered through the public API, once per run."""
    from rollbackkit import Registry

    def build(root: Path) -> Path:
        models = request.getfixturevalue("models")  # trained only by the worker that builds
        project = new_repo(root / "project")
        registry = Registry.init(project)
        registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0", message="first model")
        registry.register(
            "cancer", models["v2"], data.frame, target="target", version="v1.1.0", message="boosted trees"
        )
        return project

    return shared_template(tmp_path_factory, "two-versions-template", build)


@pytest.fixture
def two_versions(two_versions_template: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`two_versions_template` (its own git repo, DVC cache and remote)."""
    return copy_project(two_versions_template, tmp_path)


V2_GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "score-drift", "kind": "prediction_drift", "metric": "psi", "max": 0.2},
    ],
}


@pytest.fixture(scope="session")
def serving_churn() -> pd.DataFrame:
    """Training data for the served models."""
    from rollbackkit.demo.data import churn_frame

    return churn_frame(3000, seed=21)


@pytest.fixture(scope="session")
def served_template(tmp_path_factory: pytest.TempPathFactory, serving_churn: pd.DataFrame, isolated_home: Path) -> Path:
    """Built once per run through the public API; each test gets its own copy (``served``)."""
    from rollbackkit import Registry
    from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, TARGET, churn_frame, churn_pipeline
    from rollbackkit.ops.traffic import deploy as deploy_offline

    def build(root: Path) -> Path:
        repo = new_repo(root / "project")
        registry = Registry.init(repo)
        churn = serving_churn
        v1 = churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], churn[TARGET])
        v2 = churn_pipeline(ALL_FEATURES).fit(churn[ALL_FEATURES], churn[TARGET])
        held_out = churn_frame(2000, seed=22)  # a faithful reference: out-of-sample predictions
        registry.register(
            "churn",
            v1,
            churn[[*BASE_FEATURES, TARGET]],
            target=TARGET,
            version="v1.0.0",
            validation_data=held_out[[*BASE_FEATURES, TARGET]],
        )
        registry.register(
            "churn",
            v2,
            churn[[*ALL_FEATURES, TARGET]],
            target=TARGET,
            version="v1.1.0",
            gates=V2_GATES,
            validation_data=held_out[[*ALL_FEATURES, TARGET]],
        )
        deploy_offline(repo, "churn@v1.0.0", "prod", reason="first release")
        return repo

    return shared_template(tmp_path_factory, "served-template", build)


def copy_project(template: Path, tmp_path: Path) -> Path:
    """A private copy of a template project: its own git repo, DVC cache and DVC remote
    (``init`` stores the default remote relative to ``.dvc/``, so the copy uses its own)."""
    repo = tmp_path / "project"
    shutil.copytree(template, repo, symlinks=True)
    config = (repo / ".dvc" / "config").read_text()
    assert str(template) not in config and "url = ../.rollbackkit/dvc-remote" in config, config
    return repo


@pytest.fixture
def served(served_template: Path, tmp_path: Path) -> Path:
    """v1.0.0 (47 features) serving prod; v1.1.0 (52 features, drift gate) registered."""
    return copy_project(served_template, tmp_path)


def live_records(n: int, seed: int) -> list[dict]:
    """What the feature pipeline sends now: all 52 columns."""
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame

    return churn_frame(n, seed=seed)[ALL_FEATURES].to_dict(orient="records")


@pytest.fixture(scope="session")
def logged_template(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``served`` after real traffic through a logged environment: v1 serving, a v2 canary
    that took part of the traffic, then a rollback (its rows quarantined)."""
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame
    from rollbackkit.serving.environment import ServingEnvironment
    from rollbackkit.serving.predlog.log import PredictionLog

    def build(root: Path) -> Path:
        repo = copy_project(served_template, root)
        log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
        try:
            environment = ServingEnvironment(repo, "churn", "prod", log=log)
            environment.start()
            live = churn_frame(2400, seed=61)[ALL_FEATURES]
            for i in range(0, 1200, 100):
                environment.predict(live.iloc[i : i + 100], key=f"before-{i}")
            environment.deploy("v1.1.0", canary=50, reason="try v2")
            for i in range(1200, 2400, 100):
                environment.predict(live.iloc[i : i + 100], key=f"during-{i}")
            environment.rollback(reason="tail segment degraded", incident="INC-7")
        finally:
            log.close()
        return repo

    return shared_template(tmp_path_factory, "logged-template", build)


@pytest.fixture
def logged(logged_template: Path, tmp_path: Path) -> Path:
    """A private copy of ``logged_template``."""
    return copy_project(logged_template, tmp_path)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is America/New_York (EST in January, EDT in July)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
