"""Times for people (issue 17): relative times (``ago``, ``span``) and local times that stay
honest across a daylight-saving change (``times.local`` under ``times.zone``'s heading)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from rollbackkit.ops.overview import Departure, Overview
from rollbackkit.registry.assignments import Assignment
from rollbackkit.screens import times
from rollbackkit.screens.status import render
from rollbackkit.screens.times import ago, span, when
from rollbackkit.serving.status import GateStatus


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (1, "1 s"),
        (59, "59 s"),
        (60, "1 min"),
        (61, "1 min"),
        (12 * 60 + 5, "12 min"),
        (3600, "1 h 0 min"),
        (3 * 3600 + 5 * 60, "3 h 5 min"),
        (86400, "1 day"),
        (86400 + 3 * 3600 + 59, "1 day 3 h"),
        (2 * 86400, "2 days"),
        (2 * 86400 + 3600, "2 days 1 h"),
        (-30, "0 s"),
    ],
)
def test_span_says_how_long_in_units_people_read(seconds: int, words: str) -> None:
    assert span(timedelta(seconds=seconds)) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (45, "45 s ago"),
        (12 * 60, "12 min ago"),
        (3 * 3600 + 5 * 60, "3 h 5 min ago"),
        (86400 + 7200, "1 day 2 h ago"),
        (3 * 86400, "3 days ago"),
        (0, "just now"),
        (-1, "just now"),  # stamped a second ahead: the same moment
        (-120, "just now"),
        (-121, "in the future (clock skew?)"),
        (-86400, "in the future (clock skew?)"),
    ],
)
def test_ago_says_how_long_ago_and_names_a_time_in_the_future(seconds: int, words: str) -> None:
    assert ago(timedelta(seconds=seconds)) == words


def _instant(shown: str, heading: str) -> datetime:
    """The moment a reader takes ``shown`` for, under a column headed ``heading`` (``UTC-05:00``)."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d)(?: ([+-]\d\d)(?::(\d\d))?)?", shown)
    assert found, shown
    if found[2]:
        sign, hours, minutes = found[2][0], int(found[2][1:]), int(found[3] or 0)
    else:
        label = re.fullmatch(r"UTC(?:([+-])(\d\d):(\d\d))?", heading)
        assert label, heading
        sign, hours, minutes = label[1] or "+", int(label[2] or 0), int(label[3] or 0)
    offset = timedelta(hours=hours, minutes=minutes) * (1 if sign == "+" else -1)
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M").replace(tzinfo=UTC) - offset


@pytest.mark.usefixtures("new_york")
def test_local_times_across_a_daylight_saving_change_read_as_the_right_moment() -> None:
    heading = times.zone()
    assert heading in ("UTC-05:00", "UTC-04:00")
    january, july = "2026-01-15T12:00:00Z", "2026-07-01T12:00:00Z"
    shown = {stamp: times.local(stamp) for stamp in (january, july)}
    assert shown[january].startswith("2026-01-15 07:00") and shown[july].startswith("2026-07-01 08:00"), shown
    for stamp, text in shown.items():
        assert _instant(text, heading) == times.parse(stamp), (heading, shown)  # July's 08:00 is not 13:00Z
    assert sum(text.endswith(("-04", "-05")) for text in shown.values()) == 1, shown  # only the other season says so
    assert times.local("2026-07-01T12:00:05Z", seconds=True).startswith("2026-07-01 08:00:05")


@pytest.mark.usefixtures("new_york")
def test_the_status_screen_reads_a_time_without_a_zone_as_utc() -> None:
    now = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    assert when("2026-01-15T12:00:00", now) == "07:00:00 EST (12:00:00 UTC), 30 min ago"
    assert when("2026-07-01T12:00:00", now).startswith("2026-07-01 08:00:00 EDT (12:00:00 UTC), ")


LONG = " ".join(
    ["the partner feed started sending support_calls as cumulative counts after its 02:10 release, so"] * 7
)[:620]


def _assignment(version: str, action: str, at: str, reason: str) -> Assignment:
    return Assignment(
        name="churn", env="prod", version=version, action=action, time=at, actor="Ada Oncall",
        reason=reason, incident="INC-4242", tag=f"churn/prod/{at}",
    )  # fmt: skip


def test_status_cuts_long_reasons_so_that_the_screen_fits_24_lines() -> None:
    assert len(LONG) == 620
    now = datetime(2026, 11, 30, 3, 12, tzinfo=UTC)
    since = _assignment("v1.0.0", "deploy", "2026-11-29T10:00:00Z", LONG)
    canary = _assignment("v1.1.0", "canary", "2026-11-30T02:00:00Z", LONG)
    gates = GateStatus.from_dict(
        {
            "version": "churn@v1.0.0", "decision": "rollback", "n": 400,
            "gates": [
                {"name": f"gate-{i}", "kind": "score-drift", "status": "fail", "severity": "rollback",
                 "observed": 0.912, "threshold": {"max_psi": 0.2}}
                for i in range(4)
            ],
        }
    )  # fmt: skip
    view = Overview(
        name="churn", env="prod", live="v1.0.0", live_since=since, canary=None, canary_percent=None,
        previous=Departure(version="v1.1.0", role="canary", percent=25, served_since=canary.time, by=canary),
        gates=gates, other_gates=None, log=None, server=None, server_error=None, status=None, assignments=3,
    )  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    console.print(render(view, now))
    rows = console.export_text().rstrip("\n").split("\n")
    assert len(rows) <= 24 and max(len(r.rstrip()) for r in rows) <= 80, "\n".join(rows)
    assert sum("…" in r for r in rows) == 2, "\n".join(rows)  # both reasons cut, each at a word
    cut = [r.rstrip()[:-1].split()[-1] for r in rows if r.rstrip().endswith("…")]
    assert len(cut) == 2 and all(word in LONG.split() for word in cut), "\n".join(rows)  # at a word
    assert sum(r.strip() == "whole reason: rollbackkit history churn --env prod" for r in rows) == 1, "\n".join(rows)
    assert any("failed: gate-0" in r for r in rows), "\n".join(rows)
