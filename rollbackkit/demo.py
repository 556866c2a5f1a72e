"""The demo story, on embedded defaults: a fresh project, two versions, look-ups, a restore.

Used by ``rollbackkit demo`` and ``make demo``. Each step reports its name, result and time
through a callback, so the face (CLI) decides how to show progress; nothing prints here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rollbackkit.errors import InvalidPath

DEMO_MARKER = ".rollbackkit-demo"
Report = Callable[[str, str, float], None]


@dataclass
class DemoResult:
    """What the demo did: the project path and each step's (name, result, seconds)."""

    directory: Path
    steps: list[tuple[str, str, float]] = field(default_factory=list)


def run_demo(directory: str | Path, report: Report | None = None) -> DemoResult:
    """Build the demo project in ``directory`` (replacing an earlier demo there) and run it."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from rollbackkit.registry import Registry

    root = _fresh_directory(Path(directory))
    result = DemoResult(root)

    def step(name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        outcome = action()
        seconds = time.perf_counter() - started
        result.steps.append((name, outcome, seconds))
        if report is not None:
            report(name, outcome, seconds)

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    frame: pd.DataFrame = features.assign(target=target)
    models = {}

    def init() -> str:
        _git(root, "init", "-q", "-b", "main")
        _git(root, "config", "user.name", "rollbackkit demo")
        _git(root, "config", "user.email", "demo@rollbackkit.invalid")
        (root / "README.md").write_text("# rollbackkit demo project\n")
        (root / DEMO_MARKER).write_text("created by rollbackkit demo\n")
        _git(root, "add", "README.md", DEMO_MARKER)
        _git(root, "commit", "-q", "-m", "demo project")
        registry = Registry.init(root)
        return f"git + DVC, remote {registry.dvc.remote_url()}"

    def train() -> str:
        models["v1"] = RandomForestClassifier(n_estimators=50, random_state=0).fit(features, target)
        models["v2"] = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(features, target)
        return f"random forest and boosted trees on {len(frame)} rows x {features.shape[1]} features"

    def register(version: str, key: str, message: str) -> Callable[[], str]:
        def action() -> str:
            info = Registry(root).register(
                "cancer", models[key], frame, target="target", version=version, message=message
            )
            return f"{info.tag} {info.bundle_id[:19]}"

        return action

    def lookups() -> str:
        registry = Registry(root)
        latest = registry.resolve("cancer@latest")
        return f"{len(registry.versions('cancer'))} versions; latest is {latest.version}"

    def restore() -> str:
        restored = Registry(root).restore("cancer@v1.0.0")
        return f"{len(restored.files)} files of {restored.info.tag}, every hash verified"

    def verify() -> str:
        report_ = Registry(root).verify()
        return "all components intact" if report_.ok else f"{len(report_.problems)} problem(s)"

    step("create project", init)
    step("train two models", train)
    step("register v1.0.0", register("v1.0.0", "v1", "random forest baseline"))
    step("register v1.1.0", register("v1.1.0", "v2", "boosted trees"))
    step("list and resolve", lookups)
    step("restore v1.0.0", restore)
    step("verify --all", verify)
    return result


def _fresh_directory(path: Path) -> Path:
    path = path.expanduser().resolve()
    if path.exists():
        if not (path / DEMO_MARKER).exists():
            if any(path.iterdir()):
                raise InvalidPath(
                    f"{path} exists and is not an earlier rollbackkit demo.",
                    "Choose an empty or new directory with --dir.",
                )
        else:
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
