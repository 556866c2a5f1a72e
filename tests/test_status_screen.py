"""``rollbackkit status`` at 80x24: what serves and since when, what served before and why it
left, the canary, the *live* version's gates, log health and the server, on one screen."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .conftest import live_records, run_cli
from .servers import TOKEN, Server, running_server
from .terminal import Screen, save, screen, strip_ansi

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ZONE = {"TZ": "EST5"}  # local time is not UTC: both must show
REASON = (
    "checkout scores for the long-tenure segment jumped after the partner feed started sending "
    "support_calls as cumulative counts"
)
LONG = " ".join(
    ["staging opens on the boosted v2 while the partner feed is migrated: scores may move, watch the gates"] * 7
)[:620]
"""A 620-character reason: alone it took 17 lines of the screen."""
CLOCK = re.compile(r"\d\d:\d\d:\d\d EST \((\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC\), (\d+ (s|min) ago|just now)")
# (the UTC date is shown when it is not the local one: between midnight UTC and midnight EST)


def _flat(shown: Screen) -> str:
    """The screen's words with line breaks and padding folded (for text that wraps)."""
    return " ".join(shown.stdout.split())


def _row(shown: Screen, label: str) -> str:
    """The first line that starts with ``label``."""
    return next(row for row in shown.rows if row.startswith(label))


def _wait(server: Server, done: object, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = server.status()
        if done(status):  # type: ignore[operator]
            return status
        time.sleep(0.2)
    raise AssertionError(f"server never reached the state: {server.status()}")


def _whole_screen(shown: Screen) -> None:
    assert shown.returncode == 0, shown
    assert shown.fits(24), shown
    assert shown.no_ellipsis(), shown
    assert not shown.stdout.lstrip().startswith("{"), shown  # a summary, not the JSON document


def test_status_after_a_canary_and_a_rollback_names_the_live_version_and_why_the_canary_left(served: Path) -> None:
    with running_server(served, "churn", "prod", watchdog=0.3) as server:
        canary = run_cli(
            "deploy", "churn@v1.1.0", "--env", "prod", "--canary", "25", "--reason", "try the boosted v2",
            cwd=served, env=ADMIN,
        )  # fmt: skip
        assert canary.returncode == 0, canary.stderr
        records = live_records(1600, seed=3)
        for i in range(80):
            assert server.predict(records[i * 20 : (i + 1) * 20], key=f"user-{i}").status_code == 200
        _wait(server, lambda s: (s["gates"] or {}).get("version") == "churn@v1.1.0")
        rolled = run_cli(
            "rollback", "churn", "--env", "prod", "--reason", REASON, "--incident", "INC-4242",
            cwd=served, env=ADMIN,
        )  # fmt: skip
        assert rolled.returncode == 0, rolled.stderr
        document = server.status()
        assert document["live"]["version"] == "v1.0.0" and document["canary"] is None
        assert document["gates"]["version"] == "churn@v1.1.0"  # the server's report is of the version rolled back from

        shown = screen("status", "churn", "--env", "prod", cwd=served, env=ZONE)
        save(shown, ARTIFACTS / "status-80.txt")
        as_json = run_cli("status", "churn", "--env", "prod", "--json", cwd=served)

    _whole_screen(shown)
    assert "v1.0.0 since" in _row(shown, "live") and CLOCK.search(_row(shown, "live")), shown
    assert shown.whole("deploy by ") and shown.whole("first release"), shown  # v1.0.0 served since its deploy
    assert "v1.1.0 (canary at 25% for " in _row(shown, "previous"), shown
    assert shown.whole("rollback by ") and shown.whole("incident INC-4242"), shown
    assert REASON in _flat(shown), shown
    assert _row(shown, "canary").split() == ["canary", "none"], shown
    assert "no evaluation of v1.0.0 yet" in _row(shown, "gates"), shown  # never the standby's report as live
    assert shown.whole("the last report is of churn@v1.1.0"), shown
    assert "writer alive" in _row(shown, "log") and shown.whole("0 write errors"), shown
    assert shown.whole(server.url), shown

    assert as_json.returncode == 0, as_json.stderr
    full = json.loads(as_json.stdout)
    assert set(full) >= {"name", "env", "live", "standby", "canary", "since", "generation", "gates", "log"}
    assert full["live"]["version"] == "v1.0.0" and full["gates"]["version"] == "churn@v1.1.0"


def test_status_names_the_failing_gates_of_the_live_version_and_the_canary_share(served: Path) -> None:
    """The live version's failing gates while nothing else runs; once a canary starts, it is the
    version under evaluation (issue 19): its share, and its own report (no traffic yet: inconclusive)."""
    with running_server(served, "churn", "staging", watchdog=0.3) as server:
        first = run_cli("deploy", "churn@v1.1.0", "--env", "staging", "--reason", LONG, cwd=served, env=ADMIN)
        assert first.returncode == 0, first.stderr
        drifted = live_records(2000, seed=5)
        for row in drifted:
            row["support_calls"] += 6
            row["contract"] = "month-to-month"
        for i in range(40):
            assert server.predict(drifted[i * 20 : (i + 1) * 20], key=f"user-{i}").status_code == 200
        _wait(server, lambda s: (s["gates"] or {}).get("decision") == "rollback")  # nothing to roll back to
        shown = screen("status", "churn", "--env", "staging", cwd=served, env=ZONE)
        save(shown, ARTIFACTS / "status-80-failing-gates.txt")
        canary = run_cli(
            "deploy", "churn@v1.0.0", "--env", "staging", "--canary", "20", "--reason", "v1 as a canary",
            cwd=served, env=ADMIN,
        )  # fmt: skip
        assert canary.returncode == 0, canary.stderr
        _wait(server, lambda s: (s["gates"] or {}).get("version") == "churn@v1.0.0")
        with_canary = screen("status", "churn", "--env", "staging", cwd=served, env=ZONE)

    assert shown.returncode == 0 and shown.fits(24), shown  # the reason takes 3 lines, then where it is whole
    assert shown.whole("whole reason: rollbackkit history churn --env staging"), shown
    assert [row.rstrip()[-1] for row in shown.rows if "…" in row] == ["…"], shown  # cut once, at the line's end
    assert "v1.1.0 since" in _row(shown, "live"), shown
    assert "churn@v1.1.0: rollback over" in _row(shown, "gates"), shown
    assert shown.whole("failed: score-drift psi "), shown
    assert _row(shown, "previous").split() == ["previous", "none"], shown

    assert with_canary.returncode == 0 and with_canary.fits(24), with_canary
    assert "v1.0.0 at 20% of traffic since" in _row(with_canary, "canary"), with_canary
    assert "churn@v1.0.0: inconclusive" in _row(with_canary, "gates"), with_canary  # the canary's, never live's
    assert "v1.1.0 since" in _row(with_canary, "live"), with_canary


def test_status_without_a_server_works_from_the_history_and_names_the_next_step(served: Path) -> None:
    for step in (
        ("deploy", "churn@v1.1.0", "--env", "prod", "--reason", "boosted v2"),
        ("rollback", "churn", "--env", "prod", "--reason", REASON, "--incident", "INC-9"),
    ):
        done = run_cli(*step, cwd=served)
        assert done.returncode == 0, done.stderr

    shown = screen("status", "churn", "--env", "prod", cwd=served, env=ZONE)
    save(shown, ARTIFACTS / "status-80-no-server.txt")

    _whole_screen(shown)
    assert shown.rows[0].startswith("no server running for prod; from the history"), shown
    assert "v1.0.0 since" in _row(shown, "live") and CLOCK.search(_row(shown, "live")), shown
    assert "v1.1.0 (live for " in _row(shown, "previous") and shown.whole("incident INC-9"), shown
    assert REASON in _flat(shown), shown
    assert shown.whole("rollbackkit serve churn --env prod"), shown
    json_without_server = run_cli("status", "churn", "--env", "prod", "--json", cwd=served)
    assert json_without_server.returncode == 1 and "rollbackkit serve churn --env prod" in json_without_server.stderr


def _rendered(notifications: dict | None) -> tuple[str, str]:
    """The status screen of a server whose ``/status`` says ``notifications``: its text, and its
    ``notify`` row with the terminal's colour codes."""
    from rich.console import Console

    from rollbackkit.ops.overview import Overview
    from rollbackkit.screens.status import render
    from rollbackkit.serving.status import ServerStatus

    said = {"name": "bc", "env": "prod", "live": None, "standby": None, "canary": None, "since": "2026-11-30T22:00:00Z"}
    said |= {"generation": 3, "gates": None, "log": None}
    if notifications is not None:
        said["notifications"] = notifications
    status = ServerStatus.from_dict(said)
    view = Overview(
        "bc", "prod", None, None, None, None, None, None, None, None, "http://127.0.0.1:8000", None, status, 2
    )
    console = Console(width=100, record=True, color_system="standard", force_terminal=True)
    console.print(render(view))
    coloured = console.export_text(styles=True)
    row = next((line for line in coloured.splitlines() if "delivered" in line), "")
    return strip_ansi(coloured), row


RED, YELLOW, REFUSED = "\x1b[31m", "\x1b[33m", "ConnectError: Connection refused"


def test_status_shows_notification_health_in_colour_and_nothing_without_notify() -> None:
    def target(delivered: int, failed: int, queued: int, error: str | None) -> dict:
        return {
            "delivered": delivered,
            "failed": failed,
            "retries": 3,
            "queued": queued,
            "unreadable": 0,
            "last_error": error,
        }

    failing = {
        "delivered": 12, "failed": 1, "queued": 4, "errors": 0, "unsaved": 0, "config_errors": 0,
        "targets": {"team-channel": target(7, 0, 0, None), "oncall": target(5, 1, 4, REFUSED)},
    }  # fmt: skip
    text, row = _rendered(failing)
    line = next(line for line in text.splitlines() if line.startswith("notify"))
    assert (
        line.split(None, 1)[1].rstrip() == "12 delivered, 1 failed, 4 queued (oncall: ConnectError: Connection refused)"
    )
    assert RED in row, row

    _, row = _rendered({**failing, "targets": {"oncall": target(5, 0, 2, REFUSED)}})
    assert YELLOW in row and RED not in row, row  # nothing failed, two wait

    text, row = _rendered({**failing, "targets": {"oncall": target(5, 0, 0, "ReadTimeout")}})  # retried, then delivered
    assert "5 delivered, 0 failed, 0 queued" in text and "ReadTimeout" not in text
    assert RED not in row and YELLOW not in row, row

    text, _ = _rendered(None)  # no notify: configured: no line at all
    assert "notify" not in text and "delivered" not in text
