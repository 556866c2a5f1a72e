"""A data scientist's day with the registry: register two versions, look them up, restore.

Everything runs against real git, real DVC (local directory remote) and the real ``gto`` and
``dvc`` binaries for interop.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.bundle.manifest import md5_file
from rollbackkit.errors import VersionExists

from .conftest import Data, git, run_cli, run_tool


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_two_versions_are_listed_shown_and_resolved_like_gto_sees_them(two_versions: Path) -> None:
    registry = Registry(two_versions)
    versions = registry.versions("cancer")
    assert [v.version for v in versions] == ["v1.0.0", "v1.1.0"]
    assert all(v.bundle_id.startswith("sha256:") for v in versions)
    assert versions[0].bundle_id != versions[1].bundle_id
    assert registry.resolve("cancer@latest").version == "v1.1.0"
    assert registry.resolve("cancer@v1.0.0").commit == versions[0].commit

    gto = run_tool("gto", "show", "cancer", "--json", cwd=two_versions)
    assert gto.returncode == 0, gto.stderr
    gto_versions = {v["version"]: v["commit_hexsha"] for v in json.loads(gto.stdout)}
    assert gto_versions == {v.version: v.commit for v in versions}

    history = run_tool("gto", "history", "cancer", "--json", cwd=two_versions)
    assert history.returncode == 0, history.stderr
    assert {e["version"] for e in json.loads(history.stdout) if e["event"] == "registration"} == {"v1.0.0", "v1.1.0"}

    listed = json.loads(run_cli("list", "--json", cwd=two_versions).stdout)["bundles"]
    assert [(b["name"], b["version"], b["commit"]) for b in listed] == [
        ("cancer", v.version, v.commit) for v in versions
    ]
    shown = json.loads(run_cli("show", "cancer@v1.0.0", "--json", cwd=two_versions).stdout)
    assert shown["bundle_id"] == versions[0].bundle_id
    assert set(shown["components"]) == {"model", "schema", "serving", "gates", "reference", "golden"}
    assert shown["components"]["model"]["md5"] == md5_file(registry.dvc.cache_path(shown["components"]["model"]["md5"]))
    assert len(shown["schema"]["features"]) == 30
    assert shown["trusted_types"] == ["sklearn.tree._tree.Tree"]
    resolved = json.loads(run_cli("resolve", "cancer@latest", "--json", cwd=two_versions).stdout)
    assert resolved["version"] == "v1.1.0"


def test_a_registered_version_can_never_be_registered_again(two_versions: Path, data: Data, models: dict) -> None:
    registry = Registry(two_versions)
    tags_before = git(two_versions, "tag", "-l", "--format=%(refname) %(*objectname)")
    with pytest.raises(VersionExists, match="already registered"):
        registry.register("cancer", models["v2"], data.frame, target="target", version="v1.0.0")
    cli = run_cli(
        "register", "cancer", "--model", "nope.skops", "--train-data", "x.csv", "--version", "v1.1.0", cwd=two_versions
    )
    assert cli.returncode == 1
    assert git(two_versions, "tag", "-l", "--format=%(refname) %(*objectname)") == tags_before
    assert git(two_versions, "status", "--porcelain") == ""


def test_bump_continues_from_the_latest_version(two_versions: Path, data: Data, models: dict) -> None:
    info = Registry(two_versions).register("cancer", models["v1"], data.frame, target="target", bump="minor")
    assert info.version == "v1.2.0"


def test_restore_gives_back_the_exact_registered_bytes(project: Path, data: Data, models: dict) -> None:
    registry = Registry(project)
    registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0")
    original = snapshot(project / "bundles" / "cancer")
    registry.register("cancer", models["v2"], data.frame, target="target", version="v1.1.0")
    assert snapshot(project / "bundles" / "cancer") != original

    result = registry.restore("cancer@v1.0.0")
    assert snapshot(project / "bundles" / "cancer") == original
    assert "model.skops" in result.files

    elsewhere = project.parent / "restored-v1"
    cli = run_cli("restore", "cancer@v1.0.0", "--to", str(elsewhere), "--json", cwd=project)
    assert cli.returncode == 0, cli.stderr
    copied = snapshot(elsewhere)
    assert json.loads(copied.pop(".rollbackkit-restore.json"))["tag"] == "cancer@v1.0.0"
    assert {k: v for k, v in original.items() if k in copied} == copied
    assert {"bundle.yaml", "model.skops", "schema.json"} <= set(copied)


def test_git_checkout_and_dvc_checkout_restore_exactly_the_registered_files(two_versions: Path) -> None:
    manifest = Registry(two_versions).manifest("cancer@v1.0.0")
    git(two_versions, "checkout", "-q", "cancer@v1.0.0")
    checkout = run_tool("dvc", "checkout", "--force", cwd=two_versions)
    assert checkout.returncode == 0, checkout.stderr
    bundle = two_versions / "bundles" / "cancer"
    for comp in manifest.components.values():
        assert md5_file(bundle / comp.path) == comp.md5, comp.path


def test_dvc_artifacts_get_retrieves_the_registered_model(two_versions: Path, tmp_path: Path) -> None:
    manifest = Registry(two_versions).manifest("cancer@v1.0.0")
    out = tmp_path / "fetched.skops"
    got = run_tool(
        "dvc", "artifacts", "get", str(two_versions), "cancer", "--rev", "v1.0.0", "-o", str(out), cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    assert md5_file(out) == manifest.components["model"].md5


def test_load_scores_like_the_original_model(two_versions: Path, data: Data, models: dict) -> None:
    bundle = Registry(two_versions).load("cancer@v1.0.0")
    expected = models["v1"].predict_proba(data.X)[:, 1]
    assert (bundle.predict(data.X)["proba_1"].to_numpy() == expected).all()
    assert bundle.schema.feature_names == list(data.X.columns)
    assert bundle.schema.output.classes == ["0", "1"]
    assert len(bundle.golden) == 64 and len(bundle.reference) == len(data.frame)


def test_a_deleted_local_cache_is_restored_from_the_remote(two_versions: Path, data: Data) -> None:
    shutil.rmtree(two_versions / ".dvc" / "cache")
    shutil.rmtree(two_versions / "bundles" / "cancer")
    registry = Registry(two_versions)
    assert registry.verify().ok  # the remote still holds every object
    registry.restore("cancer@v1.0.0")
    manifest = registry.manifest("cancer@v1.0.0")
    assert md5_file(two_versions / "bundles" / "cancer" / "model.skops") == manifest.components["model"].md5
    assert len(registry.load("cancer@v1.1.0").predict(data.X.head(5))) == 5


def test_a_cache_dir_configured_elsewhere_is_honoured(project: Path, data: Data, models: dict) -> None:
    registry = Registry(project)
    shared_cache = project.parent / "shared-dvc-cache"
    with registry.dvc.repo.config.edit() as conf:  # what `dvc cache dir ...` writes
        conf["cache"]["dir"] = str(shared_cache)
    git(project, "commit", "-qam", "use a shared DVC cache")
    registry = Registry(project)
    info = registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0")
    model = registry.manifest(info).components["model"]
    assert registry.dvc.cache_path(model.md5) == shared_cache / "files" / "md5" / model.md5[:2] / model.md5[2:]
    assert registry.dvc.cache_path(model.md5).is_file()
    assert not (project / ".dvc" / "cache" / "files").exists()
    assert registry.verify().ok
    assert registry.load("cancer@v1.0.0").version == "v1.0.0"
