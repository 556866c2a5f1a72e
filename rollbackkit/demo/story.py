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

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.errors import DemoError, InvalidPath
from rollbackkit.notify.config import parse_targets
from rollbackkit.project import TEMPLATES

if TYPE_CHECKING:
    from rollbackkit.ops.results import AffectedRows, BackfillResult
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.serving.status import GateStatus, ServerStatus

DEMO_MARKER = ".rollbackkit-demo"
NOTIFY_SECRET_ENV = "ROLLBACKKIT_NOTIFY_SECRET"  # the demo's webhook secret (``rollbackkit demo --notify URL``)
NAME, ENV = "churn", "prod"
Report = Callable[[str, str, float], None]
Start = Callable[[str], None]


@dataclass(frozen=True)
class DemoVersion:
    """A version the demo pipeline registered, with its number of input features."""

    version: str
    bundle_id: str
    message: str
    features: int


@dataclass(frozen=True)
class SchemaStory:
    """What preflight said of v1.0.0 on the 52 live columns, and with one column missing."""

    live_52: str
    dropped: list[str]
    missing_column: str
    named: list[str]


@dataclass
class DemoResult:
    """What the demo did, for the summary (a step that did not run leaves its field None)."""

    directory: Path
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    versions: list[DemoVersion] = field(default_factory=list)
    shift_ms: float | None = None
    breach_to_shift_ms: float | None = None
    gates: GateStatus | None = None
    preflight: SchemaStory | None = None
    affected: AffectedRows | None = None
    backfill: BackfillResult | None = None
    runbook: dict[str, Any] = field(default_factory=dict)
    history: list[Assignment] = field(default_factory=list)


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
    server = _Server(root, env)
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


class _Server:
    """``rollbackkit serve`` on 127.0.0.1 and the traffic the demo sends it."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._seed = 100

    def start(self) -> str:
        import httpx

        record = self.root / ".rollbackkit" / "local" / "servers" / f"{NAME}-{ENV}.json"
        log = open(self.root / ".rollbackkit" / "local" / "demo-server.log", "wb")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rollbackkit"),
                "serve",
                NAME,
                "--env",
                ENV,
                "--port",
                "0",
                "--watchdog-interval",
                "1",
            ],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError("The server exited during start-up.", f"See {log.name}.")
            if record.exists():
                self.url = json.loads(record.read_text())["url"]
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503):  # 503: nothing served yet
                        return self.url
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise DemoError("The server did not start in 90 s.", f"See {log.name}.")

    def _batch(self, rows: int, degrade: float) -> list[dict[str, Any]]:
        from rollbackkit.demo.data import ALL_FEATURES, churn_frame

        self._seed += 1
        frame = churn_frame(rows, seed=self._seed)[ALL_FEATURES]
        hit = frame.index[: int(rows * degrade)]
        frame.loc[hit, "contract"] = "month-to-month"
        frame.loc[hit, "support_calls"] += 6  # the tail segment: far more support calls than ever seen
        return frame.to_dict(orient="records")  # type: ignore[return-value]

    def _post(self, records: list[dict[str, Any]], key: str) -> dict[str, Any]:
        import httpx

        response = httpx.post(f"{self.url}/predict", json={"records": records, "key": key}, timeout=60)
        if response.status_code != 200:
            raise DemoError(f"/predict answered {response.status_code}: {response.text[:200]}", "See the server log.")
        return dict(response.json())

    def traffic(self, requests: int, degrade: float) -> str:
        versions: dict[str, int] = {}
        for i in range(requests):
            answer = self._post(self._batch(50, degrade), key=f"user-{self._seed}-{i}")
            versions[answer["version"]] = versions.get(answer["version"], 0) + 50
        return ", ".join(f"{n} rows scored by {v}" for v, n in sorted(versions.items()))

    def status(self) -> ServerStatus:
        from rollbackkit.ops.situation import read_status

        return read_status(self.url)

    def canary(self, version: str, percent: int) -> str:
        from rollbackkit.ops.traffic import deploy

        result = deploy(
            self.root, f"{NAME}@{version}", ENV, canary=percent, reason="try engagement features", server=self.url
        )
        verdict = result.preflight.verdict if result.preflight is not None else "none"
        return f"{result.assignment.tag}: preflight {verdict}"

    def degrade_until_rolled_back(self, result: DemoResult) -> str:
        deadline = time.monotonic() + 90
        i = 0
        while self.status().canary is not None:
            if time.monotonic() > deadline:
                raise DemoError("The watchdog did not roll the canary back in 90 s.", "See the server log.")
            self._post(self._batch(50, degrade=min(0.6, 0.05 * i)), key=f"tail-{i}")
            i += 1
        status = self.status()
        result.gates = status.gates
        settle = time.monotonic() + 30  # traffic moved first; the tag and journal entries follow
        while True:
            events = _journal(self.root)
            breach = [e for e in events if e["event"] == "gate-breach" and e.get("rolled_back", True)]
            shift = [e for e in events if e["event"] == "rollback" and e.get("automatic")]
            if (breach and shift) or time.monotonic() > settle:
                break
            time.sleep(0.2)
        result.breach_to_shift_ms = breach[-1]["breach_to_shift_ms"] if breach else None
        result.shift_ms = shift[-1]["shift_ms"] if shift else None
        failed = [g.name for g in result.gates.failed] if result.gates is not None else []
        live = status.live.version if status.live is not None else "nothing"
        return f"gates failed ({', '.join(failed)}): traffic back on {live} after {i} requests"

    def wait_for_runbook(self, result: DemoResult) -> str:
        from rollbackkit.ops.runbook_record import show

        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            done = [e for e in _journal(self.root) if e["event"] in ("runbook", "runbook-error")]
            if done:
                if done[-1]["event"] == "runbook-error":
                    raise DemoError(f"The rollback runbook failed to run: {done[-1]['error']}", "See the journal.")
                notebook = self.root / done[-1]["notebook"]
                result.runbook = {**show(notebook), "notebook": str(notebook), "sha256": done[-1]["sha256"]}
                return f"{result.runbook['verdict']}: {notebook.relative_to(self.root)}"
            time.sleep(0.5)
        raise DemoError("The rollback runbook did not finish in 150 s.", "See the server log.")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


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
def _journal(root: Path) -> list[dict[str, Any]]:
    from rollbackkit.project import ProjectPaths
    from rollbackkit.registry.journal import Journal

    return Journal(ProjectPaths(root).journal).entries()


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
