"""Immutability and tamper detection: what ``verify`` reports and ``load``/``restore`` refuse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.errors import IntegrityError

from .conftest import git, run_cli


def flip_one_byte(path: Path) -> None:
    """Flip one byte in the middle of a file (DVC keeps cache files read-only)."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_byte_flipped_in_the_dvc_cache_is_reported_and_refused(two_versions: Path) -> None:
    registry = Registry(two_versions)
    model = registry.manifest("cancer@v1.0.0").components["model"]
    flip_one_byte(registry.dvc.cache_path(model.md5))

    report = registry.verify()
    assert not report.ok
    assert [(p.version, p.component) for p in report.problems] == [("v1.0.0", "model")]
    assert "local DVC cache copy is corrupted" in report.problems[0].problem
    with pytest.raises(IntegrityError, match="does not match its manifest hash"):
        registry.load("cancer@v1.0.0")
    with pytest.raises(IntegrityError):
        registry.restore("cancer@v1.0.0", to=two_versions.parent / "out")
    assert registry.load("cancer@v1.1.0").version == "v1.1.0"  # the other version is untouched

    cli = run_cli("verify", "--all", "--json", cwd=two_versions)
    assert cli.returncode == 1
    assert json.loads(cli.stdout) == {
        "ok": False,
        "checked": ["cancer@v1.0.0", "cancer@v1.1.0"],
        "problems": [{"version": "v1.0.0", "component": "model", "problem": report.problems[0].problem}],
    }


def test_a_corrupted_remote_copy_is_reported(two_versions: Path) -> None:
    registry = Registry(two_versions)
    golden = registry.manifest("cancer@v1.1.0").components["golden"]
    remote = Path(registry.dvc.remote_url() or "")
    flip_one_byte(remote / "files" / "md5" / golden.md5[:2] / golden.md5[2:])
    problems = registry.verify("cancer@v1.1.0").problems
    assert [(p.component, "remote copy is corrupted" in p.problem) for p in problems] == [("golden", True)]


def test_an_edited_manifest_under_a_moved_tag_is_caught(two_versions: Path) -> None:
    manifest_path = two_versions / "bundles" / "cancer" / "bundle.yaml"
    git(two_versions, "checkout", "-q", "cancer@v1.0.0", "--", "bundles/cancer/bundle.yaml")
    manifest_path.write_text(manifest_path.read_text().replace("model.skops", "evil.skops", 1))
    git(two_versions, "commit", "-q", "-am", "tamper")
    message = git(two_versions, "tag", "-l", "--format=%(contents)", "cancer@v1.0.0")
    git(two_versions, "tag", "-f", "-a", "cancer@v1.0.0", "-m", message, "HEAD")

    report = Registry(two_versions).verify()
    kinds = {p.problem.split(" (")[0] for p in report.problems if p.version == "v1.0.0"}
    assert any("was moved from commit" in k for k in kinds), kinds
    with pytest.raises(IntegrityError):
        Registry(two_versions).load("cancer@v1.0.0")


def test_a_tag_moved_or_deleted_by_hand_is_reported(two_versions: Path) -> None:
    v1 = Registry(two_versions).resolve("cancer@v1.0.0")
    git(two_versions, "tag", "-d", "cancer@v1.1.0")
    git(two_versions, "tag", "-f", "-a", "cancer@v1.0.0", "-m", "moved by hand", "HEAD")
    problems = {(p.version, p.problem) for p in Registry(two_versions).verify().problems}
    assert ("v1.1.0", "tag cancer@v1.1.0 was deleted") in problems
    assert ("v1.0.0", f"tag cancer@v1.0.0 was moved from commit {v1.commit[:12]}") in problems
    assert any("carries no bundle id" in text for _, text in problems)


def test_verify_of_an_intact_registry_is_ok(two_versions: Path) -> None:
    cli = run_cli("verify", "--all", "--json", cwd=two_versions)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"ok": True, "checked": ["cancer@v1.0.0", "cancer@v1.1.0"], "problems": []}
