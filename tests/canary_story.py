"""A canary that degrades and is rolled back, watched by a real Prometheus (tests only).

:func:`watched_rollback` is a session fixture shared by the Prometheus acceptance story and the
dashboard checks, so the project is built and served once: a wine classifier with string
labels (``class_0``...), ``model@v1.0.0`` live on prod and ``model@v1.1.0`` registered with the
story's segment-drift gate, and a ``notify:`` target whose webhook is down. A real ``rollbackkit
serve`` (watchdog every 0.3 s) is Prometheus's target from the moment it listens. Healthy
traffic, then ``deploy --canary 50`` from the CLI, then one segment's inputs drift until the
watchdog rolls the canary back. What Prometheus and ``/metrics`` answered at each step is kept
in :class:`WatchedRollback` for the tests to read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import copy_project, git, run_cli
from .postgres import free_port
from .prometheus import Prometheus
from .servers import TOKEN, Server, running_server
from .story import degraded, records, wait
from .test_matrix import MATRIX, template

CASE = MATRIX["multiclass-string-labels"]
"""The wine classifier with string labels: test_matrix's project, built once per run, copied here."""
ROWS = 50
SECRET = {"ONCALL_WEBHOOK_SECRET": "h5-webhook-secret"}
ENV = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN, **SECRET}


@dataclass
class WatchedRollback:
    """The served project, its Prometheus, and what they answered along the way."""

    SHARE: ClassVar[str] = 'max by (version) (rollbackkit_traffic_share{model="model", env="prod"})'  # per replica
    AUTOMATIC: ClassVar[str] = 'sum(rollbackkit_rollbacks_total{model="model", env="prod", kind="automatic"})'
    FAILED_NOTICES: ClassVar[str] = 'rollbackkit_notifications_total{target="oncall", outcome="failed"} > 0'

    repo: Path
    server: Server
    prometheus: Prometheus
    before_canary: dict[str, float] = field(default_factory=dict)
    during_canary: dict[str, float] = field(default_factory=dict)
    drifting_requests: int = 0
    requests_by_version: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    exposition: str = ""
    seen: set[str] = field(default_factory=set)
    """Sample names ``/metrics`` showed at any of the drift loop's looks (a gate's value lives only while
    a report holds one: between two of Prometheus's 1 s scrapes, perhaps)."""

    def scraped_names(self) -> set[str]:
        """Every sample name Prometheus scraped from the server during the story (all of its states)."""
        match = f'{{instance="{urlsplit(self.server.url).netloc}"}}'
        return set(self.prometheus.api("label/__name__/values", **{"match[]": match}))

    def served_names(self) -> set[str]:
        """Every sample name the server showed: at the end, to Prometheus, or to the drift loop's looks."""
        return exposed(self.exposition) | self.scraped_names() | self.seen

    def metrics(self) -> str:
        """The server's ``/metrics`` text right now."""
        response = httpx.get(f"{self.server.url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return response.text


def _send(server: Server, frame: pd.DataFrame, prefix: str, counts: dict[str, int]) -> None:
    for i in range(0, len(frame), ROWS):
        response = server.predict(records(frame.iloc[i : i + ROWS]), key=f"{prefix}-{i}")
        assert response.status_code == 200, response.text
        version = response.json()["version"]
        counts[version] = counts.get(version, 0) + 1


def _notify_a_dead_webhook(repo: Path) -> None:
    """An ``oncall`` target nobody listens on, one attempt per notice: each delivery fails, fast."""
    config = repo / ".rollbackkit" / "config.yaml"
    settings = yaml.safe_load(config.read_text()) or {}
    url = f"http://127.0.0.1:{free_port()}/hook"
    settings["notify"] = [{"name": "oncall", "url": url, "secret_env": next(iter(SECRET)), "attempts": 1, "timeout": 1}]
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    git(repo, "commit", "-qam", "notify the on-call")


def _canary_takes_traffic(samples: list[dict[str, Any]]) -> bool:
    return any(s["metric"]["version"] == "v1.1.0" and float(s["value"][1]) > 0 for s in samples)


def exposed(exposition: str) -> set[str]:
    """Sample names of a ``/metrics`` text (``_bucket``, ``_count``, ``_sum``, ``_total`` as exposed)."""
    return {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}


def _counted_once(samples: list[dict[str, Any]]) -> bool:
    return any(float(s["value"][1]) >= 1 for s in samples)


def _cli(repo: Path, *args: str) -> Any:
    done = run_cli(*args, "--json", cwd=repo, env=ENV)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def watched_rollback(
    tmp_path_factory: pytest.TempPathFactory, prometheus: Prometheus, isolated_home: Path
) -> Iterator[WatchedRollback]:
    """Canary, degradation and automatic rollback of a served wine classifier, scraped every second."""
    root = tmp_path_factory.mktemp("prometheus-story")
    built, live = template(CASE, tmp_path_factory)
    shutil.copy(built.parent / "features.py", root / "features.py")
    repo = copy_project(built, root)
    _notify_a_dead_webhook(repo)
    healthy = live.iloc[:500]
    healthy.to_parquet(root / "live.parquet")  # the typed sample the canary's preflight checks
    with running_server(repo, "model", "prod", watchdog=0.3, extra_env=SECRET) as server:
        story = WatchedRollback(repo, server, prometheus)
        prometheus.add_target(server.url)
        prometheus.wait_for_target(server.url)
        _send(server, healthy, "healthy", story.requests_by_version)
        story.before_canary = prometheus.by(story.SHARE, "version")

        sample = str(root / "live.parquet")
        _cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--canary", "50", "--features", sample)
        during = prometheus.wait_for(story.SHARE, _canary_takes_traffic, what="the canary's share in Prometheus")
        story.during_canary = {s["metric"]["version"]: float(s["value"][1]) for s in during}

        drifting = degraded(live.iloc[500:], list(live.columns[:6]))

        def rolled_back() -> bool:
            story.seen |= exposed(story.metrics())
            status = server.status()
            if status.get("canary") is None and status["live"]["version"] == "v1.0.0":
                return True
            start = (story.drifting_requests * ROWS) % (len(drifting) - 5 * ROWS)
            batch = drifting.iloc[start : start + 5 * ROWS]
            _send(server, batch, f"drift-{story.drifting_requests}", story.requests_by_version)
            story.drifting_requests += 5
            return False

        wait(rolled_back, 120, "the watchdog's automatic rollback", every=0.1)
        story.history = _cli(repo, "history", "model", "--env", "prod")["assignments"]
        # the rollback counters are born at 0 when the server starts, so the sum exists long before the rollback
        prometheus.wait_for(story.AUTOMATIC, _counted_once, what="the automatic rollback in Prometheus")
        prometheus.wait_for(story.FAILED_NOTICES, lambda s: bool(s), what="the dead webhook's failures in Prometheus")
        _send(server, healthy.iloc[:200], "after", story.requests_by_version)
        story.exposition = story.metrics()
        yield story
        prometheus.remove_target(server.url)
