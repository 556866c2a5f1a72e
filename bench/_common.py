"""Shared benchmark helpers: timing medians, isolated environments, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "GTO_NO_ANALYTICS": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def median_seconds(action: Callable[[], Any], runs: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``action`` over ``runs`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its stderr when it fails."""
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc


def git(repo: Path, *args: str, input: str | None = None) -> str:
    """Run git in ``repo``."""
    proc = subprocess.run(["git", "-C", str(repo), *args], env=ENV, capture_output=True, text=True, input=input)
    if proc.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {proc.stderr}")
    return proc.stdout


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME.json`` with machine facts and the figures."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        **figures,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out


def new_project(root: Path) -> Path:
    """An initialised rollbackkit project in a fresh git repo at ``root`` (created)."""
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("GIT_", "DVC_", "GTO_"))})
    from rollbackkit import Registry

    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("bench\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "bench")
    Registry.init(root)
    return root
