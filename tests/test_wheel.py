"""The wheel a user installs holds every file the package opens from itself.

``rollbackkit/templates/`` links to the demo project's files and the runbook templates at
the top of the repository (their one home); the wheel must carry their contents, or
``rollbackkit demo`` and ``runbook run`` fail after ``pip install rollbackkit``.
"""

from __future__ import annotations

import os
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


def test_the_wheel_holds_every_template_the_package_opens(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
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
