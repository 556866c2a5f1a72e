"""Whole test modules run longest first (tests/conftest.py's ``pytest_collection_modifyitems``).

xdist's ``worksteal`` hands each worker a contiguous half of the collection and later steals from the
END of a worker's queue: with the long modules first, the tail both workers share at the end is short
tests, and a stolen chunk rarely splits a module (and its module-scoped fixtures) in two. The seconds
per module come from ``--durations`` profiles of the whole suite (``tests/module_seconds.json``, the mean
over the logs given: refresh with ``python -m tests.module_order LOG...``); a module not in it keeps its place after the
timed ones, and the tests inside a module keep their order. Modules that read one expensive per-run
story (:data:`FAMILIES`) run next to each other as one unit, so one worker usually builds it for all.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SECONDS = Path(__file__).with_name("module_seconds.json")
"""Seconds per module file (setup + call + teardown of its tests, from a profile)."""

FAMILIES = (
    ("tests/test_prometheus_story.py", "tests/test_dashboards.py", "tests/test_gates_over_time.py"),
    ("tests/test_demo.py", "tests/test_notify_demo.py", "tests/test_jupyterlab.py"),
)
"""Modules that share a session story: canary_story.watched_rollback (a served canary scraped by a real
Prometheus, one per worker) and demo_run.notified_demo (the demo, once per run: a second worker waits for it)."""

LAST = ("tests/test_browser.py", "tests/test_jupyterlab.py")
"""Modules that drive Chromium through pytest-playwright's session fixture, which leaves its event loop
"running" in the worker's thread for the rest of the session (``asyncio.run`` then refuses, and a
LiveControl would post to a loop nobody turns): they run after everything else."""

_DURATION = re.compile(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+(tests/\S+?\.py)::")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Sort whole modules (a family as one) by their profiled seconds, longest first; stable otherwise."""
    seconds: dict[str, float] = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    unit = {module: family[0] for family in FAMILIES for module in family}
    total: defaultdict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        module = item.nodeid.split("::")[0]
        if module not in first:
            first[module] = index
            total[unit.get(module, module)] += seconds.get(module, 0.0)

    starts: dict[str, int] = {}
    for module, index in first.items():
        starts[unit.get(module, module)] = min(index, starts.get(unit.get(module, module), index))

    def key(item: pytest.Item) -> tuple[bool, float, int, float, int]:
        module = item.nodeid.split("::")[0]
        family = unit.get(module, module)
        return module in LAST, -total[family], starts[family], -seconds.get(module, 0.0), first[module]

    items.sort(key=key)


def profile(log: str) -> dict[str, float]:
    """Seconds per module from a pytest ``--durations`` report."""
    total: defaultdict[str, float] = defaultdict(float)
    for line in log.splitlines():
        if found := _DURATION.match(line):
            total[found[2]] += float(found[1])
    return {module: round(s, 1) for module, s in sorted(total.items(), key=lambda kv: -kv[1])}


def mean(profiles: list[dict[str, float]]) -> dict[str, float]:
    """Each module's mean seconds over several profiles (a module a profile did not list counts 0 there)."""
    total: defaultdict[str, float] = defaultdict(float)
    for seconds in profiles:
        for module, s in seconds.items():
            total[module] += s / len(profiles)
    return {module: round(s, 1) for module, s in sorted(total.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    logs = [profile(Path(log).read_text()) for log in sys.argv[1:]]
    SECONDS.write_text(json.dumps(mean(logs), indent=1) + "\n")
