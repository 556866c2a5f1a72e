"""The whole story on embedded defaults: `make demo` / `rollbackkit demo [--dir DIR]`.

1. A fresh project (git + DVC with a local remote) gets the demo pipeline (`dvc.yaml`,
   `params.yaml`, `pipeline/`); `dvc repro` prepares the synthetic churn data, trains
   version 1 on 47 features and version 2 on 52, and registers both through the API.
2. A server on 127.0.0.1 serves v1.0.0; v1.1.0 goes out as a 30% canary.
3. Realistic traffic arrives whose tail segment (month-to-month contracts, many support
   calls) degrades; v1.1.0's gates fail and the watchdog shifts traffic back to the warm
   v1.0.0, then runs the rollback runbook (which backfills the canary's rows).
4. The 47 vs 52 schema mismatch is caught by preflight before it bites; the contaminated
   rows are listed and backfilled; the journal and the audit record verify.

Each step reports through callbacks, so the face (the CLI) decides how to show progress;
nothing prints here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rollbackkit.demo.result import DemoResult, DemoVersion, SchemaStory
from rollbackkit.demo.server import DemoServer
from rollbackkit.errors import DemoError, InvalidPath
from rollbackkit.notify.config import parse_targets
from rollbackkit.project import TEMPLATES

DEMO_MARKER = ".rollbackkit-demo"
NOTIFY_SECRET_ENV = "ROLLBACKKIT_NOTIFY_SECRET"  # the demo's webhook secret (``rollbackkit demo --notify URL``)
NAME, ENV = "churn", "prod"
Report = Callable[[str, str, float], None]
Start = Callable[[str], None]


def run_demo(
    directory: str | Path, report: Report | None = None, start: Start | None = None, notify: str | None = None
) -> DemoResult:
    """Build the demo project in ``directory`` (replacing an earlier demo there) and run it.

    ``notify``: a webhook URL that gets every event of the story, signed with the secret in
    :data:`NOTIFY_SECRET_ENV` (``notify:`` is written into the demo project's config).

    Raises:
        NotifyConfigError: ``notify`` is not an http(s) URL, or the secret's variable is not set
            (before anything is created).
    """
    if notify is not None:
        parse_targets([_notify_target(notify)])  # a bad URL or no secret: said before anything is built
    root = _fresh_directory(Path(directory))
    result = DemoResult(root)
    token = secrets.token_hex(16)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GTO_NO_ANALYTICS": "1", "ROLLBACKKIT_ADMIN_TOKEN": token}
    os.environ.update({k: env[k] for k in ("DVC_NO_ANALYTICS", "GTO_NO_ANALYTICS", "ROLLBACKKIT_ADMIN_TOKEN")})

    def step(name: str, action: Callable[[], str]) -> None:
        if start is not None:
            start(name)
        started = time.perf_counter()
        outcome = action()
        seconds = time.perf_counter() - started
        result.steps.append((name, outcome, seconds))
        if report is not None:
            report(name, outcome, seconds)

    step("create project", lambda: _create(root, notify))
    step("dvc repro", lambda: _repro(root, env, result))
    step("serve v1.0.0", lambda: _first_deploy(root))
    server = DemoServer(root, env, NAME, ENV)
    try:
        step("start server", server.start)
        step("baseline traffic", lambda: server.traffic(40, degrade=0.0))
        step("canary v1.1.0 at 30%", lambda: server.canary("v1.1.0", 30))
        step("tail segment degrades", lambda: server.degrade_until_rolled_back(result))
        step("rollback runbook", lambda: server.wait_for_runbook(result))
        step("schema mismatch caught", lambda: _schema_story(root, result))
        step("backfill", lambda: _backfill(root, result))
    finally:
        server.stop()
    step("verify", lambda: _verify(root, result))
    return result


# --------------------------------------------------------------------------- steps
def _notify_target(url: str) -> dict[str, Any]:
    """The demo's one ``notify:`` target: every event, quick retries."""
    return {"name": "demo", "url": url, "secret_env": NOTIFY_SECRET_ENV, "events": "*", "backoff": 0.5, "max_delay": 5}


def _create(root: Path, notify: str | None = None) -> str:
    import yaml

    from rollbackkit.registry.store import Registry

    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "rollbackkit demo")
    _git(root, "config", "user.email", "demo@rollbackkit.invalid")
    (root / "README.md").write_text("# rollbackkit demo project\n\nBuilt by `rollbackkit demo`.\n")
    (root / DEMO_MARKER).write_text("created by rollbackkit demo\n")
    for item in ("dvc.yaml", "params.yaml", "pipeline"):
        source = (TEMPLATES / item).resolve()
        if source.is_dir():
            shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / item)
    _git(root, "add", "README.md", DEMO_MARKER, "dvc.yaml", "params.yaml", "pipeline")
    _git(root, "commit", "-q", "-m", "demo project: pipeline prepare -> train -> register")
    registry = Registry.init(root)
    if notify is not None:
        with open(registry.paths.config_file, "a") as fh:
            fh.write(yaml.safe_dump({"notify": [_notify_target(notify)]}, sort_keys=False))
        _git(root, "commit", "-q", "-m", "demo: notify a webhook", "--", ".rollbackkit/config.yaml")
        return f"git + DVC, remote {registry.dvc.remote_url()}, notifying {notify}"
    return f"git + DVC, remote {registry.dvc.remote_url()}"


def _repro(root: Path, env: dict[str, str], result: DemoResult) -> str:
    from rollbackkit.registry.store import Registry

    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "repro"],
        cwd=root,
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise DemoError(f"dvc repro failed: {proc.stderr.strip().splitlines()[-1:]}", "Run it in the demo dir.")
    _git(root, "add", "dvc.lock", ".gitignore", "registered.json")
    _git(root, "commit", "-q", "-m", "pipeline outputs")
    registry = Registry(root)
    result.versions = [
        DemoVersion(v.version, v.bundle_id, v.message, len(registry.describe(v).schema.feature_names))
        for v in registry.versions(NAME)
    ]
    return ", ".join(f"{v.version} ({v.features} features)" for v in result.versions)


def _first_deploy(root: Path) -> str:
    from rollbackkit.ops.traffic import deploy

    assignment = deploy(root, f"{NAME}@v1.0.0", ENV, reason="first release").assignment
    return f"{assignment.tag} (restored in the workspace)"


def _schema_story(root: Path, result: DemoResult) -> str:
    from rollbackkit.demo.data import ALL_FEATURES, churn_frame
    from rollbackkit.registry.store import Registry

    registry = Registry(root)
    live = churn_frame(500, seed=9)[ALL_FEATURES]
    adaptable = registry.check(f"{NAME}@v1.0.0", live)
    broken = registry.check(f"{NAME}@v1.0.0", live.drop(columns=["tenure_months"]))
    story = SchemaStory(
        live_52=adaptable.verdict,
        dropped=list(adaptable.adaptation.drop) if adaptable.adaptation else [],
        missing_column=broken.verdict,
        named=[f.column for f in broken.findings if f.severity == "incompatible"],
    )
    result.preflight = story
    return (
        f"52 live columns vs v1.0.0's 47: {adaptable.verdict} (drop {len(story.dropped)}); "
        f"without tenure_months: {broken.verdict} ({', '.join(story.named)})"
    )


def _backfill(root: Path, result: DemoResult) -> str:
    from rollbackkit.ops.predictions import affected, backfill

    result.backfill = backfill(root, NAME, ENV, "v1.1.0")
    rows = affected(root, NAME, ENV, "v1.1.0").without_sample()
    result.affected = rows
    return (
        f"{rows.rows} rows by v1.1.0 ({', '.join(t.table for t in rows.tables)}): "
        f"{rows.backfilled} backfilled with v1.0.0, {rows.quarantined} still quarantined"
    )


def _verify(root: Path, result: DemoResult) -> str:
    from rollbackkit.ops.runbook_record import verify_audit
    from rollbackkit.registry.assignments import Deployments
    from rollbackkit.registry.journal import Journal
    from rollbackkit.registry.store import Registry

    registry = Registry(root)
    problems = len(Journal(registry.paths.journal).verify()) + len(verify_audit(root).problems)
    problems += len(registry.verify().problems)
    result.history = Deployments(registry).history(NAME, ENV)
    if problems:
        raise DemoError(f"{problems} integrity problem(s) after the demo.", "Run rollbackkit verify --all.")
    return "registry, journal and audit record intact"


# --------------------------------------------------------------------------- helpers
def _fresh_directory(path: Path) -> Path:
    path = path.expanduser().resolve()
    if path.exists():
        if not (path / DEMO_MARKER).exists():
            if any(path.iterdir()):
                raise InvalidPath(
                    f"{path} exists and is not an earlier rollbackkit demo.",
                    "Choose an empty or new directory with --dir.",
                )
        else:
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
