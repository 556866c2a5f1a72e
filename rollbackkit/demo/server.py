"""The demo's server: ``rollbackkit serve`` on 127.0.0.1, the traffic the story sends it, and the
waits for the watchdog's rollback and the rollback runbook (the story: :mod:`rollbackkit.demo.story`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.errors import DemoError

if TYPE_CHECKING:
    from rollbackkit.demo.result import DemoResult
    from rollbackkit.serving.status import ServerStatus


class DemoServer:
    """``rollbackkit serve`` of model ``name`` in ``env`` on 127.0.0.1, and the traffic the demo sends it
    (``variables``: the server's environment variables)."""

    def __init__(self, root: Path, variables: dict[str, str], name: str, env: str) -> None:
        self.root, self.variables, self.name, self.env = root, variables, name, env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._seed = 100

    def start(self) -> str:
        """Start the server and wait (90 s at most) until it answers; its URL."""
        import httpx

        record = self.root / ".rollbackkit" / "local" / "servers" / f"{self.name}-{self.env}.json"
        log = open(self.root / ".rollbackkit" / "local" / "demo-server.log", "wb")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rollbackkit"),
                "serve",
                self.name,
                "--env",
                self.env,
                "--port",
                "0",
                "--watchdog-interval",
                "1",
            ],
            cwd=self.root,
            env=self.variables,
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
        """Send ``requests`` batches of 50 rows (``degrade``: the tail segment's share); who scored them."""
        versions: dict[str, int] = {}
        for i in range(requests):
            answer = self._post(self._batch(50, degrade), key=f"user-{self._seed}-{i}")
            versions[answer["version"]] = versions.get(answer["version"], 0) + 50
        return ", ".join(f"{n} rows scored by {v}" for v, n in sorted(versions.items()))

    def status(self) -> ServerStatus:
        """The server's ``/status``."""
        from rollbackkit.ops.situation import read_status

        return read_status(self.url)

    def canary(self, version: str, percent: int) -> str:
        """Deploy ``version`` as a ``percent`` canary; its tag and preflight verdict."""
        from rollbackkit.ops.traffic import deploy

        result = deploy(
            self.root,
            f"{self.name}@{version}",
            self.env,
            canary=percent,
            reason="try engagement features",
            server=self.url,
        )
        verdict = result.preflight.verdict if result.preflight is not None else "none"
        return f"{result.assignment.tag}: preflight {verdict}"

    def degrade_until_rolled_back(self, result: DemoResult) -> str:
        """Degrade the tail segment until the watchdog rolls the canary back (90 s at most); note the
        gates and the shift's timings in ``result``."""
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
        """Wait (150 s at most) for the rollback runbook; note its record in ``result``."""
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
        """Stop the server (SIGTERM, then kill after 60 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _journal(root: Path) -> list[dict[str, Any]]:
    from rollbackkit.project import ProjectPaths
    from rollbackkit.registry.journal import Journal

    return Journal(ProjectPaths(root).journal).entries()
