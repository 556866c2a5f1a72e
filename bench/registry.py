"""Registry benchmarks against GTO and raw git + DVC, as ratios measured in one run.

1. ``list`` / ``resolve`` with 1,000 registered versions vs ``gto show`` on the same repo
   (target: >= 10x faster). Versions 2..1000 are written with ``git fast-import`` as real
   commits with a genuine manifest and an annotated tag in rollbackkit's format (the same
   bytes ``register`` writes), so both tools read a realistic registry.
2. ``restore`` of a 200 MB model between two versions vs ``git checkout TAG && dvc checkout``
   (target: <= 1.2x). Ours re-hashes every byte it restores; raw DVC trusts its state db.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier

from bench._common import BIN, ENV, git, median_seconds, new_project, run, write_results

N_VERSIONS = 1000
MODEL_MB = 200


def _training_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x1": rng.normal(size=500), "x2": rng.normal(size=500), "y": rng.integers(0, 2, 500)})


def _many_versions(root: Path) -> None:
    """Register v0.0.1 for real, then v0.0.2..v0.0.1000 in one ``git fast-import`` stream."""
    import subprocess

    from rollbackkit import Registry
    from rollbackkit.bundle.manifest import Manifest
    from rollbackkit.registry.tags import registration_message

    frame = _training_frame()
    model = DummyClassifier(strategy="prior").fit(frame[["x1", "x2"]], frame["y"])
    Registry(root).register("model", model, frame, target="y", version="v0.0.1")
    manifest = Manifest.from_yaml((root / "bundles/model/bundle.yaml").read_text())
    head = git(root, "rev-parse", "HEAD").strip()
    stamp = 1_700_000_000
    chunks: list[bytes] = []

    def data(payload: bytes) -> None:
        chunks.extend([f"data {len(payload)}".encode(), payload])

    for i in range(2, N_VERSIONS + 1):
        version = f"v0.0.{i}"
        registration = manifest.registration.model_copy(update={"version": version})
        chunks += [
            b"commit refs/heads/main",
            f"mark :{i}".encode(),
            f"committer bench <bench@example.com> {stamp + i} +0000".encode(),
        ]
        data(f"rollbackkit: register model {version}".encode())
        chunks.append(f"from {head}".encode() if i == 2 else f"from :{i - 1}".encode())
        chunks.append(b"M 100644 inline bundles/model/bundle.yaml")
        data(manifest.model_copy(update={"registration": registration}).to_yaml().encode())
    marks = root / ".git" / "bench-marks"
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet", f"--export-marks={marks}"],
        input=b"\n".join(chunks) + b"\n",
        check=True,
        env=ENV,
    )
    commit_of = dict(line.split() for line in marks.read_text().splitlines())
    tags: list[bytes] = []
    for i in range(2, N_VERSIONS + 1):
        version, commit = f"v0.0.{i}", commit_of[f":{i}"]
        tags += [
            f"tag model@{version}".encode(),
            f"from {commit}".encode(),
            f"tagger bench <bench@example.com> {stamp + i} +0000".encode(),
        ]
        message = registration_message("model", version, manifest.bundle_id, commit, "").encode()
        tags += [f"data {len(message)}".encode(), message]
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet"], input=b"\n".join(tags) + b"\n", check=True, env=ENV
    )
    git(root, "reset", "-q", "--hard", "main")


def bench_listing(work: Path) -> dict[str, object]:
    """list/resolve at 1,000 versions vs gto show (CLI processes, and in-process APIs)."""
    from rollbackkit import Registry

    root = new_project(work / "many")
    _many_versions(root)
    listed = json.loads(run([str(BIN / "rollbackkit"), "list", "model", "--json"], root).stdout)["bundles"]
    gto = json.loads(run([str(BIN / "gto"), "show", "model", "--json"], root).stdout)
    assert len(listed) == N_VERSIONS and len(gto) == N_VERSIONS, (len(listed), len(gto))

    ours_list = median_seconds(lambda: run([str(BIN / "rollbackkit"), "list", "model", "--json"], root))
    ours_resolve = median_seconds(lambda: run([str(BIN / "rollbackkit"), "resolve", "model@latest", "--json"], root))
    gto_show = median_seconds(lambda: run([str(BIN / "gto"), "show", "model", "--json"], root))

    import gto.api

    registry = Registry(root)
    api_ours = median_seconds(lambda: registry.versions("model"))
    api_resolve = median_seconds(lambda: registry.resolve("model@latest"))
    api_gto = median_seconds(lambda: gto.api.show(str(root), "model"))
    return {
        "versions": N_VERSIONS,
        "cli_seconds": {"rollbackkit_list": ours_list, "rollbackkit_resolve": ours_resolve, "gto_show": gto_show},
        "api_seconds": {"Registry.versions": api_ours, "Registry.resolve": api_resolve, "gto.api.show": api_gto},
        "speedup_vs_gto_show": {
            "cli_list": gto_show / ours_list,
            "cli_resolve": gto_show / ours_resolve,
            "api_list": api_gto / api_ours,
            "api_resolve": api_gto / api_resolve,
        },
        "target": ">= 10x faster than gto show",
    }


def _big_model(seed: int) -> DummyClassifier:
    frame = _training_frame()
    model = DummyClassifier(strategy="prior").fit(frame[["x1", "x2"]], frame["y"])
    model.payload_ = np.random.default_rng(seed).integers(0, 255, MODEL_MB * 1024 * 1024, dtype=np.uint8)
    return model


def bench_restore(work: Path) -> dict[str, object]:
    """Restore a 200 MB model between two versions vs raw git checkout + dvc checkout."""
    from rollbackkit import Registry

    root = new_project(work / "big")
    registry = Registry(root)
    frame = _training_frame()
    registry.register("big", _big_model(1), frame, target="y", version="v1.0.0")
    registry.register("big", _big_model(2), frame, target="y", version="v2.0.0")
    size = registry.manifest("big@v1.0.0").components["model"].size

    state = {"i": 0}

    def ours_api() -> None:
        state["i"] += 1
        registry.restore("big@v1.0.0" if state["i"] % 2 else "big@v2.0.0")

    def ours_cli() -> None:
        state["i"] += 1
        run([str(BIN / "rollbackkit"), "restore", "big@v1.0.0" if state["i"] % 2 else "big@v2.0.0"], root)

    def raw() -> None:
        state["i"] += 1
        run(["git", "checkout", "-q", "big@v1.0.0" if state["i"] % 2 else "big@v2.0.0"], root)
        run([str(BIN / "dvc"), "checkout", "-q", "--force"], root)

    raw_s = median_seconds(raw)
    git(root, "checkout", "-q", "main")
    run([str(BIN / "dvc"), "checkout", "-q", "--force"], root)
    api_s = median_seconds(ours_api)
    cli_s = median_seconds(ours_cli)
    return {
        "model_bytes": size,
        "seconds": {"rollbackkit_restore_cli": cli_s, "Registry.restore": api_s, "git_checkout+dvc_checkout": raw_s},
        "ratio_vs_raw": {"cli": cli_s / raw_s, "api": api_s / raw_s},
        "target": "<= 1.2x raw git checkout && dvc checkout",
        "note": "rollbackkit re-hashes every restored byte against the manifest; dvc checkout trusts its state db",
    }


def main() -> Path:
    """Run both registry benchmarks and write bench/results/registry.json."""
    work = Path(tempfile.mkdtemp(prefix="rbk-bench-"))
    try:
        figures = {"listing": bench_listing(work), "restore": bench_restore(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return write_results("registry", figures)


if __name__ == "__main__":
    print(main())
