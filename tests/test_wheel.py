"""The wheel a user installs holds every file the package opens from itself, and no other module.

``rollbackkit/templates/`` links to the demo project's files and the runbook templates at
the top of the repository (their one home); the wheel must carry their contents, or
``rollbackkit demo`` and ``runbook run`` fail after ``pip install rollbackkit``. The wheel is
built from the files git knows, as a fresh clone would: a checkout's old ``build/lib`` once
shipped the modules of the flat layout beside the layer packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _package_files(folder: Path) -> set[str]:
    found = set()
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        found |= {(Path(directory) / f).relative_to(ROOT).as_posix() for f in files}
    return found


def _source_copy(dest: Path) -> Path:
    """The files git knows (tracked, and new ones not ignored), copied as they are (links too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, dest / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


def test_the_wheel_holds_every_template_the_package_opens_and_only_today_s_modules(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("rollbackkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = _package_files(ROOT / "rollbackkit" / "templates")
    assert {"rollbackkit/templates/dvc.yaml", "rollbackkit/templates/runbooks/rollback.ipynb"} <= templates
    assert templates <= names, sorted(templates - names)
    modules = {
        f"rollbackkit/{p.relative_to(ROOT / 'rollbackkit').as_posix()}" for p in (ROOT / "rollbackkit").rglob("*.py")
    }
    modules = {m for m in modules if not m.startswith("rollbackkit/templates/")}
    shipped = {n for n in names if n.endswith(".py") and not n.startswith("rollbackkit/templates/")}
    assert shipped == modules, (sorted(shipped - modules), sorted(modules - shipped))
