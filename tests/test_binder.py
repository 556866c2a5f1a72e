"""binder/: a fresh environment from binder/requirements.txt plus postBuild, as repo2docker
builds it, yields a demo project on which notebooks/explore.ipynb executes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parent.parent
PIP_CACHE = Path.home() / ".cache" / "pip"  # read at import, before the session isolates HOME


@pytest.mark.slow
def test_binder_environment_builds_a_ready_demo_for_the_explore_notebook(tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    for path in ("binder", "pyproject.toml", "constraints.txt", "notebooks", "pipeline", "dvc.yaml", "params.yaml"):
        source = ROOT / path  # the working tree, so the test checks what is about to be committed
        target = checkout / path
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy(source, target)
    shutil.rmtree(checkout / "rollbackkit")
    shutil.copytree(
        ROOT / "rollbackkit", checkout / "rollbackkit", symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp_path / "binder-env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PIP_CACHE_DIR": str(PIP_CACHE),
        "VIRTUAL_ENV": str(venv),
    }
    install = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", "-r", "binder/requirements.txt"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    post = subprocess.run(
        ["bash", "binder/postBuild"],
        cwd=checkout,
        env={**env, "PIP_NO_CACHE_DIR": "0"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert post.returncode == 0, (post.stdout[-2000:], post.stderr[-3000:])
    assert (checkout / "demo-project" / ".rollbackkit-demo").exists()

    out = tmp_path / "explore-out.ipynb"
    executed = subprocess.run(
        [str(bin_dir / "papermill"), "notebooks/explore.ipynb", str(out), "-k", "rollbackkit", "--cwd", "notebooks"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert executed.returncode == 0, executed.stderr[-3000:]
    notebook = nbformat.read(str(out), 4)
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
