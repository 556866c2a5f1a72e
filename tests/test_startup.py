"""A CLI command is a fresh process: what it imports before doing anything is paid on every call.

The on-call's commands (history, status, affected, backfill, labels, gates check) import the
gate modules; scipy.stats (~0.4 s) is only needed when a compared gate computes a quantile,
so none of them may pull it in at import.
"""

from __future__ import annotations

import subprocess
import sys

COMMAND_MODULES = [
    "rollbackkit.cli",
    "rollbackkit.ops.situation",
    "rollbackkit.ops.predictions",
    "rollbackkit.ops.labels",
    "rollbackkit.serving.status",
    "rollbackkit.analysis.gates",
    "rollbackkit.analysis.comparison",
]


def test_the_commands_modules_import_no_scipy_stats() -> None:
    script = "import sys\n" + "".join(f"import {m}\n" for m in COMMAND_MODULES) + "print('scipy.stats' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "a module imports scipy.stats at import time: import it where it is used"
