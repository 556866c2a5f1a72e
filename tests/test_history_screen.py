"""``history``, ``list`` and ``affected`` read whole in an 80-column terminal (issue 17, point 2).

The project is the ``logged`` one (v1.0.0 serving prod, a v1.1.0 canary rolled back with
rows in the prediction log), then more assignments with long reasons: a redeploy, an
automatic rollback stored the old way (dict reprs), another redeploy, an automatic rollback
whose reason the watchdog writes from a real :class:`GateReport`, and a running canary. The
local time zone is UTC+05:30 (``TZ=IST-5:30``), so a UTC time on screen would be wrong.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import run_cli
from .terminal import Screen, save, screen

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
ZONE = {"TZ": "IST-5:30"}
OLD_REASON = "gate failed: rollback: score-drift (0.9123 vs {'max': 0.25}), errors (0.1234 vs {'max': 0.05})"
INCIDENT = "INC-2026-1130-0042"


@pytest.fixture
def incident(logged: Path) -> Path:
    """``logged`` after five more assignments (see the module docstring)."""
    from rollbackkit import Registry
    from rollbackkit.analysis.gates import GateReport, GateResult
    from rollbackkit.refs import Reference
    from rollbackkit.registry.assignments import Deployments

    registry = Registry(logged)
    deployments = Deployments(registry)
    v1 = registry.find(Reference.parse("churn@v1.0.0"))
    v2 = registry.find(Reference.parse("churn@v1.1.0"))
    report = GateReport(
        "churn@v1.1.0",
        1200,
        "rollback",
        [
            GateResult("score-drift", "prediction_drift", "rollback", "fail", 0.9123, {"max": 0.25}, {"metric": "psi"}),
            GateResult("errors", "error_rate", "rollback", "fail", 0.1234, {"max": 0.05}, {"errors": 148, "n": 1200}),
            GateResult("p99-latency", "latency", "warn", "pass", 41.0, {"max_ms": 250.0}, {"quantile": "p99"}),
        ],
    )
    deployments.assign(v2, "prod", "deploy", reason="retrained on the November data with the new tenure features")
    deployments.assign(v1, "prod", "auto-rollback", reason=OLD_REASON, actor="watchdog")
    deployments.assign(v2, "prod", "deploy", reason="feature pipeline fixed upstream; redeploying the boosted model")
    deployments.assign(
        v1,
        "prod",
        "auto-rollback",
        reason=f"gate failed: {report.summary()}",
        actor="watchdog",
        incident=INCIDENT,
        gates=report.summary(),
    )
    deployments.assign(v2, "prod", "canary", reason="one more try at a small share", canary_percent=10)
    return logged


def _line(shown: Screen, *words: str) -> str:
    """The one stdout line holding every word (the test fails when there is none)."""
    found = [row for row in shown.rows if all(w in row for w in words)]
    assert found, f"no line with {words}:\n{shown}"
    return found[0]


def _squeezed(text: str) -> str:
    """``text`` without whitespace nor ``;`` (clauses go on lines of their own): a wrapped reason reads whole."""
    return "".join(text.replace(";", "").split())


def _local(iso: str) -> str:
    """An assignment's UTC time as the screen should show it in UTC+05:30."""
    return (datetime.fromisoformat(iso).astimezone(UTC) + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")


def test_history_at_80_columns_shows_times_actions_plain_reasons_and_what_serves(incident: Path) -> None:
    shown = screen("history", "churn", "--env", "prod", cwd=incident, env=ZONE)
    save(shown, ARTIFACTS / "history-80.txt")
    assert shown.returncode == 0, shown
    assert shown.widest() <= 80 and shown.no_ellipsis(), shown
    entries = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=incident).stdout)["assignments"]
    assert [e["action"] for e in entries] == [
        "deploy",
        "canary",
        "rollback",
        "deploy",
        "auto-rollback",
        "deploy",
        "auto-rollback",
        "canary",
    ]
    for entry in entries:  # the local time of day, whole, on every assignment's line
        assert shown.whole(_local(entry["time"])), shown
    assert "T" not in _line(shown, _local(entries[-2]["time"]))[:20], shown
    assert shown.whole("auto-rollback") and shown.whole("canary 10%"), shown
    # the watchdog's reason in plain words, the old stored one made readable too
    assert shown.whole("score-drift psi 0.912 > 0.25") and shown.whole("errors error rate 0.123 > 0.05"), shown
    assert shown.whole("score-drift 0.912 > 0.25") and shown.whole("errors 0.123 > 0.05"), shown
    assert "{'max'" not in shown.stdout and "vs {" not in shown.stdout, shown
    # the marker: the latest automatic rollback serves (the running canary does not count)
    live = _line(shown, "*", "auto-rollback")
    assert _local(entries[6]["time"]) in live and "v1.0.0" in live, shown
    assert [row for row in shown.rows if row.startswith("*  2")] == [live], shown
    assert _line(shown, "~", "canary 10%").startswith("~"), shown
    assert shown.whole(INCIDENT) and shown.whole("times UTC+05:30"), shown


def test_history_wide_has_every_field_and_json_keeps_its_shape(incident: Path) -> None:
    wide = screen("history", "churn", "--env", "prod", "--wide", cwd=incident, env=ZONE)
    save(wide, ARTIFACTS / "history-wide.txt")
    assert wide.returncode == 0 and wide.no_ellipsis(), wide
    entries = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=incident).stdout)["assignments"]
    latest = _line(wide, "auto-rollback", INCIDENT)
    rollback = entries[6]
    utc = datetime.fromisoformat(rollback["time"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for field in (utc, _local(rollback["time"]), rollback["tag"], "watchdog", "v1.0.0", INCIDENT):
        assert field in latest, wide
    assert wide.whole("score-drift psi 0.912 > 0.25; errors error rate 0.123 > 0.05"), wide
    assert set(entries[0]) == {
        "name",
        "env",
        "version",
        "tag",
        "time",
        "action",
        "reason",
        "incident",
        "actor",
        "forced",
        "gates",
        "canary_percent",
        "number",
        "shadow_percent",  # issue 19: a shadow's share, a stepped rollout's plan (added keys only)
        "steps",
        "bake_s",
    }
    assert entries[6]["reason"].startswith("gate failed: rollback: score-drift psi 0.912 > 0.25")


@pytest.mark.parametrize("columns", [60, 72])
def test_history_narrower_than_80_columns_wraps_every_reason_whole_and_cuts_nothing(
    incident: Path, columns: int
) -> None:
    shown = screen("history", "churn", "--env", "prod", cwd=incident, env=ZONE, columns=columns)
    assert shown.returncode == 0 and shown.no_ellipsis(), shown
    squeezed = _squeezed(shown.stdout)
    entries = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=incident).stdout)["assignments"]
    for entry in entries:  # every word of each reason on screen, wrapped, not cut ("over th")
        if not entry["reason"].startswith("gate failed"):  # those in plain words, checked at 80
            assert _squeezed(entry["reason"]) in squeezed, shown
        assert entry["action"] in squeezed, shown
    assert _squeezed("retrained on the November data with the new tenure features") in squeezed, shown
    assert _squeezed("feature pipeline fixed upstream; redeploying the boosted model") in squeezed, shown


def test_history_wide_in_utc_shows_one_time_column(incident: Path) -> None:
    wide = screen("history", "churn", "--env", "prod", "--wide", cwd=incident, env={"TZ": "UTC"})
    assert wide.returncode == 0 and "time (UTC)" in wide.rows[0], wide
    assert "utc" not in wide.rows[0].split(), wide  # the same time twice says nothing
    zoned = screen("history", "churn", "--env", "prod", "--wide", cwd=incident, env=ZONE)
    assert "utc" in zoned.rows[0].split(), zoned


def test_list_is_whole_at_80_columns(incident: Path) -> None:
    shown = screen("list", cwd=incident, env=ZONE)
    save(shown, ARTIFACTS / "list-80.txt")
    assert shown.returncode == 0 and shown.fits() and shown.no_ellipsis(), shown
    versions = json.loads(run_cli("list", "--json", cwd=incident).stdout)["bundles"]
    if not any(v.get("message") for v in versions):  # a column always empty is not shown
        assert "message" not in shown.rows[0], shown
    for v in versions:
        row = _line(shown, "churn", v["version"])
        assert _local(v["created"]) in row and v["commit"][:10] in row, shown


def test_affected_shows_counts_and_whole_sample_rows_at_80_columns(incident: Path) -> None:
    shown = screen("affected", "churn", "--env", "prod", "--version", "v1.1.0", cwd=incident, env=ZONE)
    save(shown, ARTIFACTS / "affected-80.txt")
    assert shown.returncode == 0 and shown.widest() <= 80 and shown.no_ellipsis(), shown
    result = json.loads(
        run_cli("affected", "churn", "--env", "prod", "--version", "v1.1.0", "--json", cwd=incident).stdout
    )
    assert result["rows"] > 5 and result["sample"], result
    assert shown.whole(f"{result['rows']} rows by churn@v1.1.0 in prod"), shown
    for row in result["sample"][:5]:  # each sample row on one line: request id, row, status, prediction
        line = _line(shown, f"{row['request_id']} ", f" {row['row']}  {row['status']}")
        assert f"prediction={row['outputs']['prediction']}" in line, shown


def test_the_table_helper_drops_low_priority_columns_and_wraps_reasons_but_never_cuts() -> None:
    from rich.console import Console

    from rollbackkit.screens.tables import Column, fit, table

    columns = [
        Column("time"),
        Column("action"),
        Column("reason", wrap=True, min_width=20),
        Column("actor", priority=1),
        Column("tag", priority=2),
    ]
    rows = [
        [
            "2026-11-30 14:03",
            "auto-rollback",
            "gate failed: " + "score-drift psi 0.912 > 0.25 " * 4,
            "watchdog",
            "churn#prod#12",
        ]
    ]
    assert fit(columns, rows, 200) == [0, 1, 2, 3, 4]
    assert fit(columns, rows, 70) == [0, 1, 2, 3]  # the tag goes first
    assert fit(columns, rows, 60) == [0, 1, 2]
    assert fit(columns, rows, 20) == [0, 1, 2]  # priority 0 stays, however narrow
    console = Console(width=60, record=True, color_system=None)
    fitted = table(columns, rows, console.width)
    console.print(fitted.table)
    lines = console.export_text().splitlines()
    assert fitted.dropped == ("actor", "tag") and len(lines) > 2, lines
    assert "2026-11-30 14:03" in lines[1] and "auto-rollback" in lines[1], lines
    assert all(len(line.rstrip()) <= 60 for line in lines) and "…" not in "".join(lines), lines


def test_show_keeps_each_component_s_hash_whole_at_80_columns(served: Path) -> None:
    from rollbackkit import Registry

    shown = screen("show", "churn@v1.0.0", cwd=served)
    assert shown.returncode == 0, shown
    assert shown.no_ellipsis(), shown
    for role, component in Registry(served).show("churn@v1.0.0")["components"].items():
        assert shown.whole(role) and shown.whole(component["md5"]), (role, shown)
