"""The 3 AM incident of issue 17, scripted with the real CLI in an 80-column terminal.

A canary of v1.1.0 takes part of prod's traffic and the tail segment degrades. The on-call
engineer, with only the README and ``--help``: finds what serves and the canary (``status``),
rolls back with a reason and an incident id and runs the rollback runbook in the same command
(``rollback --runbook``), reads the runbook's record (``runbook show``), checks the rows the
canary wrote and their backfill (``affected``), then reads ``history`` and ``status`` again.
Six commands; none prints a warning that is not about the model (no kernel transport
warning, no Python warning text).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from .conftest import live_records
from .servers import TOKEN, running_server
from .terminal import Screen, save, screen

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
INCIDENT = "INC-2026-1130-0307"
REASON = "tail segment (month-to-month, 5+ support calls) scores collapsed after the canary started"
NOISE = (
    "without encryption",
    "Warning:",
    "DeprecationWarning",
    "UserWarning",
    "FutureWarning",
    "RuntimeWarning",
    "ResourceWarning",
    "warnings.warn",
    "Traceback",
)
RECORD = re.compile(r"(audit/runbooks/\S+\.ipynb)")


def _calm(shown: Screen) -> None:
    """The command worked, fit 80 columns, cut nothing and printed no warning."""
    assert shown.returncode == 0, shown
    assert shown.widest() <= 80 and shown.no_ellipsis(), shown
    noise = [word for word in NOISE if word in shown.stdout or word in shown.stderr]
    assert noise == [], (noise, str(shown))


def _flat(shown: Screen) -> str:
    return " ".join(shown.stdout.split())


def test_the_3am_incident_takes_six_commands_at_80_columns(served: Path) -> None:
    commands: list[Screen] = []

    def run(*args: str) -> Screen:
        shown = screen(*args, cwd=served, env=ADMIN)
        commands.append(shown)
        _calm(shown)
        return shown

    with running_server(served, "churn", "prod") as server:
        # Before the page: v1.0.0 serves, v1.1.0 goes out as a 30% canary and takes traffic.
        for i in range(4):
            assert server.predict(live_records(50, seed=i), key=f"before-{i}").status_code == 200
        assert server.admin("deploy", {"version": "v1.1.0", "canary": 30, "reason": "try v2"}).status_code == 200
        records = live_records(2000, seed=17)
        for i in range(40):
            assert server.predict(records[i * 50 : (i + 1) * 50], key=f"user-{i}").status_code == 200
        assert server.status()["canary"]["version"] == "v1.1.0"

        # 1. What serves, and is a canary running?
        before = run("status", "churn", "--env", "prod")
        assert before.fits(24), before
        assert re.search(r"live\s+v1\.0\.0", before.stdout) and before.whole("v1.1.0"), before
        assert "30%" in before.stdout, before

        # 2. Roll back with a reason and an incident id; the runbook runs in the same command.
        rolled = run(
            "rollback", "churn", "--env", "prod", "--reason", REASON, "--incident", INCIDENT, "--runbook"
        )  # fmt: skip
        assert rolled.whole("Cancelled the canary v1.1.0"), rolled  # the canary stops; live keeps it all
        assert "v1.0.0 takes all traffic again" in " ".join(rolled.stdout.split()), rolled
        assert server.status()["live"]["version"] == "v1.0.0" and server.status()["canary"] is None
        found = RECORD.search(rolled.stdout)
        assert found, rolled
        record = found.group(1)
        assert INCIDENT in record, rolled

        # 3. The runbook's record, whole: verdict and the backfill's result.
        shown = run("runbook", "show", record)
        assert shown.whole("rolled-back") or shown.whole("rolled back"), shown
        assert re.search(r"rescored\D{0,4}[1-9]\d*", _flat(shown)), shown

        # 4. The rows the canary wrote: counted, every one backfilled, sample rows shown.
        affected = run("affected", "churn", "--env", "prod", "--version", "v1.1.0")
        flat = _flat(affected)
        rows = int(re.search(r"(\d+) rows", flat).group(1))  # type: ignore[union-attr]
        assert rows > 0 and f"{rows} backfilled" in flat, affected

        # 5. and 6. What served when, and the situation after: both on one screen.
        history = run("history", "churn", "--env", "prod")
        assert history.fits(24) and history.whole(INCIDENT), history
        assert history.whole("rollback") and history.whole("canary 30%"), history
        after = run("status", "churn", "--env", "prod")
        assert after.fits(24) and re.search(r"live\s+v1\.0\.0", after.stdout), after
        assert after.whole(INCIDENT), after

    assert len(commands) <= 6
    transcript = "\n".join(f"$ rollbackkit {shlex.join(c.args)}\n{c.stdout}" for c in commands)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "incident-80.txt").write_text(transcript)
    for name, shown in (("status-80.txt", after), ("history-80.txt", history)):
        if not (ARTIFACTS / name).exists():  # tests/test_status_screen.py and test_history_screen.py write them
            save(shown, ARTIFACTS / name)
