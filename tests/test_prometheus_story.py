"""Acceptance (issue 21): a real Prometheus sees a canary and its automatic rollback.

Debian's Prometheus scrapes a real ``rollbackkit serve`` on 127.0.0.1 every second (the
shared :func:`tests.canary_story.watched_rollback` story: a wine classifier with string
labels, v1 live, v2 as a 50% canary whose inputs drift in one segment, the watchdog every
0.3 s). PromQL through Prometheus's HTTP API answers what the on-call asks: what share of
traffic each version got, before, during and after, how many automatic rollbacks there were
and why, and that the on-call's webhook, down all along, failed to hear of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported as a plugin below, so that pytest rewrites its asserts
    from .canary_story import WatchedRollback

pytest_plugins = ["tests.prometheus", "tests.canary_story"]  # one Prometheus and one story per session


def test_promql_shows_the_canarys_share_then_one_automatic_rollback_and_all_traffic_back_on_v1(
    watched_rollback: WatchedRollback,
) -> None:
    story, prom = watched_rollback, watched_rollback.prometheus
    assert story.before_canary == {"v1.0.0": 1.0}
    assert story.during_canary == {"v1.0.0": 0.5, "v1.1.0": 0.5}
    assert story.requests_by_version.get("v1.1.0", 0) > 0  # the canary answered for real

    rollback = story.history[-1]
    assert (rollback["action"], rollback["version"], rollback["actor"]) == ("auto-rollback", "v1.0.0", "watchdog")
    assert prom.value(story.AUTOMATIC) == 1.0
    reasons = prom.by('rollbackkit_rollbacks_total{model="model", env="prod", kind="automatic"} > 0', "reason")
    assert len(reasons) == 1 and "segment-drift" in next(iter(reasons)).split("+"), reasons  # the failed gates
    assert "segment-drift" in rollback["reason"], rollback
    assert (prom.value('sum(rollbackkit_rollbacks_total{model="model", env="prod", kind="manual"})') or 0.0) == 0.0

    after = prom.by(story.SHARE, "version")
    assert after["v1.0.0"] == 1.0 and after.get("v1.1.0", 0.0) == 0.0, after
    live = prom.query('rollbackkit_traffic_share{model="model", env="prod", role="live"}')
    assert [(s["metric"]["version"], s["value"][1]) for s in live] == [("v1.0.0", "1")]

    changes = prom.by('sum by (action) (rollbackkit_traffic_changes_total{model="model", env="prod"})', "action")
    assert changes.get("canary") == 1.0 and changes.get("auto-rollback") == 1.0, changes
    answered = {v: str(n) for v, n in story.requests_by_version.items()}  # every request, counted by its version
    prom.wait_for(
        'sum by (version) (rollbackkit_requests_total{model="model", env="prod", outcome="ok"})',
        lambda samples: {s["metric"]["version"]: s["value"][1] for s in samples} == answered,
        what=f"the requests each version answered: {answered}",
    )
    buckets = 'rollbackkit_request_duration_seconds_bucket{model="model", env="prod", version="v1.0.0"}'
    p99 = prom.value(f"histogram_quantile(0.99, sum by (le) ({buckets}))")
    assert p99 is not None and 0 < p99 < 10, p99

    failed = prom.by('sum by (target) (rollbackkit_notifications_total{outcome="failed"})', "target")
    assert failed["oncall"] >= 1, failed  # the webhook is down: counted, and serving went on
    assert "h5-webhook-secret" not in story.exposition  # the target's secret never reaches /metrics
