"""The /metrics HELP of the gate history's losses names every reason, so a dashboard reader who sees
``reason="change"`` climb learns from the scrape what it means (as the README says)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from rollbackkit.serving.background import HISTORY_DROPS, Background
from rollbackkit.serving.metrics_state import StateCollector, _Families


def test_the_help_of_gate_history_losses_names_every_reason() -> None:
    background = Background()
    background.history_dropped["change"] = 2
    mirror = SimpleNamespace(mirrored=0, dropped=0, failed=0)
    env = SimpleNamespace(background=background, mirror=SimpleNamespace(status=lambda: mirror))
    collector = StateCollector(env, metrics=None)

    class Only:  # the families _background adds, as a registry exposes them
        def collect(self) -> Iterator[Metric]:
            families = _Families(("churn", "prod"))
            collector._background(families)
            return iter(families.made.values())

    registry = CollectorRegistry()
    registry.register(Only())
    scraped = generate_latest(registry).decode()
    (help_line,) = [line for line in scraped.splitlines() if line.startswith("# HELP rollbackkit_gate_history_dropped")]
    for reason in HISTORY_DROPS:
        assert f" {reason} (" in help_line, (reason, help_line)
    assert 'rollbackkit_gate_history_dropped_total{env="prod",model="churn",reason="change"} 2.0' in scraped
