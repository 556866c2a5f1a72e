"""The layers hold: the import contracts in pyproject.toml pass, and each one catches a break.

A newcomer who adds an import that points up (a registry module reaching for the CLI, an
analysis function opening the registry) or closes a cycle sees ``make lint`` fail with the
offending line. These tests run the same contracts on a copy of the package with one
deliberate violation each, so a contract that silently stopped checking would fail here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import BIN

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rollbackkit"
# every module has one job (the CLI too: one module per area of commands, rollbackkit/cli/).
MAX_LINES = 500


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on the package under ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to break on purpose."""
    shutil.copytree(PACKAGE, tmp_path / "rollbackkit", ignore=shutil.ignore_patterns("__pycache__", "templates"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(root: Path, module: str, line: str) -> None:
    """Append an import to one module of the copy (a lazy one: inside a function)."""
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _deliberate_violation() -> None:\n    {line}\n")


def test_the_package_keeps_its_layers_and_has_no_cycle() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "complaint"),
    [
        # the core never imports a face
        (
            "rollbackkit.registry.journal",
            "from rollbackkit import cli",
            "rollbackkit.registry is not allowed to import rollbackkit.cli",
        ),
        (
            "rollbackkit.serving.router",
            "import rollbackkit.widgets",
            "rollbackkit.serving is not allowed to import rollbackkit.widgets",
        ),
        # analysis is pure: no registry, no serving
        (
            "rollbackkit.analysis.drift",
            "from rollbackkit.registry import journal",
            "rollbackkit.analysis is not allowed to import rollbackkit.registry",
        ),
        (
            "rollbackkit.analysis.parity",
            "import rollbackkit.serving.wire",
            "rollbackkit.analysis is not allowed to import rollbackkit.serving",
        ),
        # the registry knows nothing of serving or orchestration
        (
            "rollbackkit.registry.journal",
            "import rollbackkit.serving.client",
            "rollbackkit.registry is not allowed to import rollbackkit.serving",
        ),
        (
            "rollbackkit.registry.gitrepo",
            "import rollbackkit.ops",
            "rollbackkit.registry is not allowed to import rollbackkit.ops",
        ),
        # serving does not reach up into ops
        (
            "rollbackkit.serving.client",
            "import rollbackkit.ops",
            "rollbackkit.serving is not allowed to import rollbackkit.ops",
        ),
        # what a bundle is does not depend on how it is analysed
        (
            "rollbackkit.bundle.manifest",
            "import rollbackkit.analysis.drift",
            "rollbackkit.bundle is not allowed to import rollbackkit.analysis",
        ),
    ],
)
def test_an_import_that_points_up_breaks_make_lint(package_copy: Path, module: str, line: str, complaint: str) -> None:
    add_import(package_copy, module, line)
    result = lint_imports(package_copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert complaint in result.stdout
    assert f"{module} -> " in result.stdout


def test_a_cycle_within_one_layer_breaks_make_lint(package_copy: Path) -> None:
    # refs and project sit side by side in the kernel (either may import the other), but not both ways
    add_import(package_copy, "rollbackkit.refs", "import rollbackkit.project")
    result = lint_imports(package_copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "No import cycle (lazy imports included) BROKEN" in result.stdout
    assert "Contracts: 2 kept, 1 broken." in result.stdout  # the layers allow it; only the cycle is wrong


def test_the_core_reaching_for_the_public_facade_breaks_make_lint(package_copy: Path) -> None:
    # rollbackkit/__init__.py imports from every layer: through it, ops.traffic -> rollbackkit ->
    # ops.situation -> ops.predictions -> ops.traffic is a cycle the layers contract cannot see
    add_import(package_copy, "rollbackkit.ops.traffic", "from rollbackkit import situation")
    result = lint_imports(package_copy)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Only the faces use the public facade BROKEN" in result.stdout
    assert "rollbackkit.ops.traffic is not allowed to import rollbackkit" in result.stdout


def test_every_module_has_one_job_and_fits_on_a_few_screens() -> None:
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in long.items() if n > MAX_LINES} == {}


def test_the_public_api_lists_each_name_once_and_each_resolves() -> None:
    """``_LAZY``, ``__all__`` and the TYPE_CHECKING imports of rollbackkit/__init__.py agree."""
    import ast
    import importlib

    import rollbackkit

    tree = ast.parse(Path(rollbackkit.__file__).read_text())
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module is not None
                typed.update({alias.name: imp.module for alias in imp.names})
    public = set(rollbackkit.__all__) - {"RollbackkitError", "__version__"}
    assert len(rollbackkit.__all__) == len(set(rollbackkit.__all__))
    assert set(rollbackkit._LAZY) == public == set(typed)
    assert typed == rollbackkit._LAZY
    for name, module in rollbackkit._LAZY.items():
        assert getattr(rollbackkit, name) is getattr(importlib.import_module(module), name)
