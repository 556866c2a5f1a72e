"""`make demo` runs `rollbackkit demo`: it must work from nothing, and again on top of itself."""

from __future__ import annotations

from pathlib import Path

from rollbackkit import Registry

from .conftest import run_cli


def test_the_demo_runs_twice_and_leaves_a_verified_registry(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    for _ in range(2):
        result = run_cli("demo", "--dir", str(target), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Done" in result.stdout and "restore v1.0.0" in result.stdout
    registry = Registry(target)
    assert [v.version for v in registry.versions("cancer")] == ["v1.0.0", "v1.1.0"]
    assert registry.verify().ok


def test_the_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not delete")
    result = run_cli("demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "not an earlier rollbackkit demo" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "do not delete"
