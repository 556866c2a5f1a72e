"""A CLI command is a fresh process: what it imports before doing anything is paid on every call.

The on-call's commands (history, status, affected, backfill, labels, gates check) import the
gate modules; scipy.stats (~0.4 s) is only needed when a compared gate computes a quantile,
so none of them may pull it in at import. Nor may they load what only some commands need: the
PostgreSQL driver (a shared store), MLflow's alias sync and the preflight (a traffic change), the
metrics exporter (a server), the signing library (the audit trail), the notifier (a command that sends).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COMMAND_MODULES = [
    "rollbackkit.cli",
    "rollbackkit.ops.situation",
    "rollbackkit.ops.predictions",
    "rollbackkit.ops.labels",
    "rollbackkit.serving.status",
    "rollbackkit.analysis.gates",
    "rollbackkit.analysis.comparison",
    "rollbackkit.ops.overview",
    "rollbackkit.ops.traffic",
    "rollbackkit.screens.history",
]

NOT_AT_START = [
    "scipy.stats",
    "psycopg",
    "rollbackkit.serving.postgres.log",
    "rollbackkit.registry.mlflow_sync",
    "mlflow",
    "rollbackkit.analysis.preflight",
    "rollbackkit.bundle.compat",
    "prometheus_client",
    "cryptography",
    "rollbackkit.notify",
]


def test_the_commands_modules_import_nothing_only_some_commands_need() -> None:
    script = "import sys\n" + "".join(f"import {m}\n" for m in COMMAND_MODULES)
    script += f"print(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert loaded == [], f"imported at CLI start: {loaded}; import them in the functions that use them"


def test_status_and_history_on_a_project_without_a_store_load_none_of_it(served: Path) -> None:
    script = "import sys\nfrom rollbackkit.cli import app\n"
    for argv in (["status", "churn", "--env", "prod"], ["history", "churn", "--env", "prod"]):
        script += f"try:\n    app({argv!r}, prog_name='rollbackkit')\nexcept SystemExit as exc:\n"
        script += "    assert not exc.code, exc.code\n"
    script += f"print(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", script], cwd=served, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "v1.0.0" in done.stdout and done.stderr.split() == [], done.stderr
