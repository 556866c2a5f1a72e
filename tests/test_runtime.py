"""The runtime in the bundle: recorded at register, compared at load, serve and preflight.

A version registered under another major version of its library is a preflight warning
naming both versions; one whose file the library here is known not to load is refused
before any traffic moves (deploy exits 1 in one line, nothing assigned); manifests
written before the runtime was recorded load as they did, with the same bundle id.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rollbackkit import Registry
from rollbackkit.bundle import runtime
from rollbackkit.bundle.manifest import Manifest
from rollbackkit.bundle.runtime import Runtime, RuntimeFinding, compare
from rollbackkit.errors import IncompatibleRuntime
from rollbackkit.ops.assignment_results import Preflight
from rollbackkit.serving.router import Router

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import new_repo


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    frame["target"] = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    return frame


def _register(registry: Registry, version: str, fake: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Register a logistic regression as if ``fake`` (import name -> version) ran at register."""
    from sklearn.linear_model import LogisticRegression

    frame = _frame()
    model = LogisticRegression().fit(frame[["a", "b", "c"]], frame["target"])
    real = runtime.installed_version
    with monkeypatch.context() as patch:
        patch.setattr(runtime, "installed_version", lambda name: fake.get(name) or real(name))
        info = registry.register("churn", model, frame, target="target", version=version)
    return info.tag


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = new_repo(tmp_path / "project")
    Registry.init(path)
    return path


def test_register_records_python_and_the_model_libraries_in_the_manifest(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn
    import skops

    tag = _register(Registry(project), "v1.0.0", {}, monkeypatch)
    manifest = yaml.safe_load((project / "bundles" / "churn" / "bundle.yaml").read_text())
    recorded = manifest["registration"]["runtime"]
    assert recorded["python"] == platform.python_version()
    assert recorded["libraries"] == {
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
    }
    shown = json.loads(rollbackkit("show", tag, "--json", cwd=project).stdout)
    assert shown["runtime"] == recorded and {f["severity"] for f in shown["runtime_here"]} == {"info"}
    assert f"runtime at register: python {platform.python_version()}" in rollbackkit("show", tag, cwd=project).stdout


def test_another_major_version_at_register_is_a_preflight_finding_with_both_versions(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn

    tag = _register(Registry(project), "v1.0.0", {"sklearn": "0.24.2"}, monkeypatch)
    line = (
        f"sklearn 0.24.2 at register, {sklearn.__version__} here: a different major version; "
        "check parity before traffic moves"
    )
    outcome = rollbackkit("preflight", tag, cwd=project)
    assert outcome.code == 0, outcome.stderr  # a warning: the model loads and scores
    assert f"[warning] sklearn: runtime - {line}" in outcome.stdout
    report = json.loads(rollbackkit("preflight", tag, "--json", cwd=project).stdout)
    assert (
        report["verdict"] == "compatible"
        and {"column": "sklearn", "kind": "runtime"}.items()
        <= next(f for f in report["findings"] if f["kind"] == "runtime").items()
    )
    typed = Preflight.from_dict(report)  # what deploy and rollback return: typed findings, the same JSON
    assert typed.runtime is not None and all(isinstance(f, RuntimeFinding) for f in typed.runtime)
    assert typed.to_dict() == {k: v for k, v in report.items() if k in typed.to_dict()}
    assert next(f for f in typed.runtime if f.library == "sklearn").severity == "warning"
    bundle = Registry(project).load(tag)
    assert bundle.runtime.problems[0].detail == line
    router = Router()  # the server's warm slot says it too (GET /status)
    router.shift(router.load(bundle, "churn#prod#1").name, 100)
    assert router.status()["live"]["runtime"] == [line]
    assert f"warning: {line}" in " ".join(rollbackkit("show", tag, cwd=project).stdout.split())  # wrapped at 80


def test_a_version_the_library_here_cannot_load_is_refused_before_any_traffic_moves(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops

    registry = Registry(project)
    _register(registry, "v1.0.0", {}, monkeypatch)
    assert rollbackkit("deploy", "churn@v1.0.0", "--env", "prod", cwd=project).code == 0
    tag = _register(registry, "v1.1.0", {"skops": "99.0.0"}, monkeypatch)
    before = state(project)
    outcome = rollbackkit("deploy", tag, "--env", "prod", cwd=project)
    assert_one_clean_line(outcome, f"skops 99.0.0 at register, {skops.__version__} here", "will not load")
    assert state(project) == before
    with pytest.raises(IncompatibleRuntime, match="skops files need skops at least as new"):
        registry.load(tag)


def test_a_manifest_without_a_runtime_loads_with_the_same_bundle_id(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = _register(Registry(project), "v1.0.0", {}, monkeypatch)
    text = (project / "bundles" / "churn" / "bundle.yaml").read_text()
    data = yaml.safe_load(text)
    del data["registration"]["runtime"]
    old = Manifest.from_yaml(yaml.safe_dump(data, sort_keys=False))
    assert old.registration.runtime is None and old.content_id() == old.bundle_id == data["bundle_id"]
    monkeypatch.setattr(runtime, "record", lambda packages: None)
    registry = Registry(project)
    frame = _frame()
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(frame[["a", "b", "c"]], frame["target"])
    info = registry.register("churn", model, frame, target="target", version="v1.1.0")
    assert "runtime: null" in (project / "bundles" / "churn" / "bundle.yaml").read_text()
    loaded = registry.load(info.tag)
    assert loaded.runtime.findings == () and loaded.predict(frame[["a", "b", "c"]]).shape[0] == len(frame)
    assert registry.load(tag).runtime.problems == []


@pytest.mark.parametrize(
    ("library", "registered", "here", "model_file", "severity"),
    [
        ("numpy", "2.3.1", "2.3.1", "model.skops", "info"),
        ("numpy", "2.1.0", "2.3.4", "model.skops", "info"),
        ("xgboost", "2.1.0", "3.2.0", "model.json", "warning"),
        ("xgboost", "1.7.6", "1.5.2", "model.ubj", "incompatible"),
        ("xgboost", "1.7.6", "1.5.2", "model.json", "info"),
        ("lightgbm", "4.7.0", "3.3.5", "model.txt", "incompatible"),
        ("lightgbm", "3.3.5", "4.7.0", "model.txt", "warning"),
        ("skops", "0.12.0", "0.11.0", "model.skops", "incompatible"),
        ("skops", "0.11.1", "0.11.0", "model.skops", "info"),
        ("torch", "2.4.0+cu121", "2.4.0", "model.zip", "info"),
        ("weird", "main", "dev", "model.zip", "info"),
    ],
)
def test_compare_judges_each_library(library: str, registered: str, here: str, model_file: str, severity: str) -> None:
    recorded = Runtime(python="3.12.0", libraries={library: registered})
    report = compare(recorded, model_file, Runtime(python="3.12.0", libraries={library: here}))
    finding = next(f for f in report.findings if f.library == library)
    assert finding.severity == severity, finding
    assert finding.detail.startswith(f"{library} {registered} at register, {here} here")


def test_a_library_missing_here_is_a_warning() -> None:
    report = compare(Runtime(python="3.12.0", libraries={"catboost": "1.2.10"}), "model.cbm", Runtime(python="3.12.0"))
    assert [f.detail for f in report.problems] == ["catboost 1.2.10 at register, not installed here"]


def test_a_server_names_the_runtime_difference_and_refuses_a_version_it_cannot_load(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn

    from .conftest import run_cli
    from .servers import TOKEN, running_server

    registry = Registry(project)
    _register(registry, "v1.0.0", {"sklearn": "0.24.2"}, monkeypatch)
    assert rollbackkit("deploy", "churn@v1.0.0", "--env", "prod", cwd=project).code == 0
    _register(registry, "v1.1.0", {"skops": "99.0.0"}, monkeypatch)
    with running_server(project, "churn", "prod") as server:
        live = server.status()["live"]
        assert live["version"] == "v1.0.0"
        assert live["runtime"] == [
            f"sklearn 0.24.2 at register, {sklearn.__version__} here: a different major version; "
            "check parity before traffic moves"
        ]
        history = json.loads(rollbackkit("history", "churn", "--env", "prod", "--json", cwd=project).stdout)
        refused = run_cli(
            "deploy", "churn@v1.1.0", "--env", "prod", cwd=project, env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
        )
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 1 and len(lines) == 1 and "skops 99.0.0 at register" in lines[0], refused.stderr
        assert server.status()["live"]["version"] == "v1.0.0"
        assert json.loads(rollbackkit("history", "churn", "--env", "prod", "--json", cwd=project).stdout) == history
        screen = rollbackkit("status", "churn", "--env", "prod", cwd=project).stdout
        said = " ".join(screen.split())  # the status screen has a runtime row (wrapped at 80)
        assert f"runtime v1.0.0: sklearn 0.24.2 at register, {sklearn.__version__} here: a different major" in said


SPY = """\
import atexit, json, sys

asked = []


class Spy:  # records every import attempted after this point
    def find_spec(self, name, path=None, target=None):
        asked.append(name)


sys.meta_path.insert(0, Spy())
atexit.register(lambda: print(json.dumps({"asked": asked, "catboost": "catboost" in sys.modules}), file=sys.stderr))
sys.argv = ["rollbackkit", *sys.argv[1:]]
from rollbackkit.cli import main

main()
"""


def test_show_and_preflight_never_import_the_libraries_a_runtime_names(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    import catboost

    real = runtime.record
    named = {"catboost": catboost.__version__, "made_up_lib_zz": "1.0.0"}  # installed but never imported; absent
    monkeypatch.setattr(
        runtime,
        "record",
        lambda packages: Runtime(python=real(packages).python, libraries={**real(packages).libraries, **named}),
    )
    tag = _register(Registry(project), "v1.0.0", {}, monkeypatch)
    for command in (["show", tag, "--json"], ["preflight", tag, "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", SPY, *command], cwd=project, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        spied = json.loads(done.stderr.strip().splitlines()[-1])
        assert spied["catboost"] is False and not {"catboost", "made_up_lib_zz"} & set(spied["asked"]), command
    shown = (
        json.loads(done.stdout)
        if command[0] == "show"
        else json.loads(rollbackkit("show", tag, "--json", cwd=project).stdout)
    )
    by_name = {f["library"]: f for f in shown["runtime_here"]}
    assert by_name["catboost"]["here"] == catboost.__version__ and by_name["catboost"]["severity"] == "info"
    assert by_name["made_up_lib_zz"]["detail"] == "made_up_lib_zz 1.0.0 at register, not installed here"
