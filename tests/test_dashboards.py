"""The shipped Grafana dashboard and Prometheus alert rules work against the real tools.

``promtool`` accepts ``contrib/prometheus/alerts.yml``; the dashboard is importable (a
datasource input, ``model``/``env`` variables read with ``label_values``); every PromQL
expression of both, with the dashboard's variables substituted, is accepted by a real
Prometheus's query API; and every metric they name is one a real server's ``/metrics``
exposes after a canary and an automatic rollback with a dead webhook (the replica metrics,
which appear only with a shared store, must at least be the server's own names).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:  # imported as plugins below, so that pytest rewrites their asserts
    from .canary_story import WatchedRollback
    from .prometheus import Prometheus

pytest_plugins = ["tests.prometheus", "tests.canary_story"]  # one Prometheus and one story per session

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "contrib" / "grafana" / "rollbackkit.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
METRICS_SOURCE = ROOT / "rollbackkit" / "serving"
SOMETIMES = re.compile(r"^rollbackkit_(replica|replicas|watchdog_leader|sync_failures)(_|$)")
"""Series a server shows only with a shared store (the story's server has none)."""
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$model": "model",
    "$env": "prod",
}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for panel in panels:
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard (panels, annotations, variables), variables substituted."""
    board = dashboard()
    exprs = [t["expr"] for p in _panels(board["panels"]) for t in p.get("targets", [])]
    exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    for variable in board["templating"]["list"]:
        found = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable.get("definition", ""))
        if found:
            exprs.append(found.group(1))  # the series selector whose label values fill the variable
    substituted = []
    for expr in exprs:
        for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
            expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
        assert "$" not in expr, f"an unsubstituted variable in {expr}"
        substituted.append(expr)
    return substituted


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\brollbackkit_[a-z0-9_]+", expr))


def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 16 rules found" in checked.stdout, checked.stdout
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    for wanted in (
        "RollbackkitAutomaticRollback",
        "RollbackkitGateFailing",
        "RollbackkitLogWriteErrors",
        "RollbackkitLogBacklogGrowing",
        "RollbackkitNotificationFailures",
        "RollbackkitReplicaLagging",
        "RollbackkitNoTraffic",
        "RollbackkitMetricsUnread",
    ):
        assert wanted in alerts


def test_the_readmes_alert_table_and_the_changelog_name_every_rule() -> None:
    """An on-call reading the README's table sees every rule Prometheus may fire, and no rule that is not there."""
    rules = [r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    section = (ROOT / "README.md").read_text().split("### Prometheus, Grafana and alerts", 1)[1].split("\n### ", 1)[0]
    table = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `Rollbackkit")]
    listed = re.findall(r"`(Rollbackkit\w+)`", "".join(table))
    assert sorted(listed) == sorted(rules), set(rules) ^ set(listed)
    unreleased = (ROOT / "CHANGELOG.md").read_text().split("## [", 2)[1]
    assert f"{len(rules)} rules" in " ".join(unreleased.split()), len(rules)


def test_the_dashboard_is_importable_with_a_datasource_and_model_env_variables() -> None:
    board = dashboard()
    assert [(i["name"], i["type"], i["pluginId"]) for i in board["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    assert variables["model"]["definition"].startswith("label_values(")
    assert variables["env"]["definition"].startswith("label_values(") and "$model" in variables["env"]["definition"]
    panels = [p for p in _panels(board["panels"]) if p["type"] != "row"]
    ids = [p["id"] for p in _panels(board["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert 'model=~"$model"' in target["expr"] and 'env=~"$env"' in target["expr"], target["expr"]
    titles = " | ".join(p["title"] for p in panels).lower()
    for topic in ("requests", "error rate", "p50 / p99", "traffic share", "gate values", "rollbacks", "backlog",
                  "notifications", "replicas"):  # fmt: skip
        assert topic in titles, topic
    assert {a["name"] for a in board["annotations"]["list"]} >= {"Rollbacks", "Traffic changes"}


def panel_expr(title: str) -> str:
    """The first expression of the dashboard's panel (or annotation) ``title``, variables substituted."""
    board = dashboard()
    raw = [t["expr"] for p in _panels(board["panels"]) if p.get("title") == title for t in p.get("targets", [])]
    raw += [a["expr"] for a in board["annotations"]["list"] if a.get("name") == title and "expr" in a]
    expr = raw[0]
    for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    return expr


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    said = ", ".join(f'{k}="{v}"' for k, v in {"model": "model", "env": "prod", **labels}.items())
    return {"series": f"{metric}{{{said}}}", "values": values}


def test_promtool_replays_two_replicas_a_first_rollback_and_quiet_or_idle_traffic(tmp_path: Path) -> None:
    """Minute by minute (promtool test rules): two replicas report the same canary share and gate
    status, a rollback counter pre-created at 0 goes to 1 at minute 11, the model stops being
    called at minute 20, and a second model takes one request a minute, 10% of them failing."""
    share = "rollbackkit_traffic_share"
    series = [
        *(_series(share, "0.9x40", instance=i, version="v1", slot="blue", role="live") for i in "ab"),
        *(_series(share, "0.1x40", instance=i, version="v2", slot="green", role="canary") for i in "ab"),
        *(_series("rollbackkit_gate_status", "1x40", instance=i, version="v2", gate="g", status="fail") for i in "ab"),
        _series("rollbackkit_rollbacks_total", "0x10 1x30", kind="automatic", reason="g"),
        _series("rollbackkit_requests_total", "0+60x20 1200x20", version="v1", slot="blue", outcome="ok"),
        _series(
            "rollbackkit_serving_info", "1x40", version="v1", slot="blue", role="live", bundle_id="b", deployment="d"
        ),
        _series("rollbackkit_requests_total", "0+0.9x40", model="quiet", version="v1", slot="blue", outcome="ok"),
        _series("rollbackkit_requests_total", "0+0.1x40", model="quiet", version="v1", slot="blue", outcome="error"),
    ]

    def sample(value: float, **labels: str) -> dict[str, Any]:
        said = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        return {"labels": f"{{{said}}}", "value": value}

    pair = {"model": "model", "env": "prod"}
    exprs = [
        {"expr": panel_expr("Traffic share by version"), "eval_time": "30m",
         "exp_samples": [sample(0.9, **pair, version="v1", role="live"),
                         sample(0.1, **pair, version="v2", role="canary")]},
        {"expr": panel_expr("Gate statuses"), "eval_time": "30m",
         "exp_samples": [sample(1, **pair, version="v2", gate="g", status="fail")]},
        {"expr": panel_expr("Rollbacks (range)"), "eval_time": "30m", "exp_samples": [sample(1, kind="automatic")]},
    ]  # fmt: skip
    said = next(r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "RollbackkitNoTraffic")  # fmt: skip
    fired = {
        "exp_labels": {"alertname": "RollbackkitNoTraffic", **pair, **said["labels"]},
        "exp_annotations": {k: v.replace("{{ $labels.model }}", "model").replace("{{ $labels.env }}", "prod")
                            for k, v in said["annotations"].items()},
    }  # fmt: skip
    alerts = [  # the README says: no request for 15 minutes
        {"alertname": "RollbackkitNoTraffic", "eval_time": "34m", "exp_alerts": []},
        {"alertname": "RollbackkitNoTraffic", "eval_time": "36m", "exp_alerts": [fired]},
        {"alertname": "RollbackkitHighErrorRate", "eval_time": "30m", "exp_alerts": []},
    ]
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": exprs, "alert_rule_test": alerts}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    checked = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exprs_of(source: str) -> list[str]:
    return dashboard_exprs() if source == "dashboard" else rule_exprs()


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_expression_is_accepted_by_a_real_prometheus(source: str, prometheus: Prometheus) -> None:
    exprs = exprs_of(source)
    assert len(exprs) >= (30 if source == "dashboard" else 15)
    for expr in exprs:
        prometheus.query(expr)  # PromQLError names the expression Prometheus refused
    with pytest.raises(AssertionError, match="bad_data"):  # PromQLError
        prometheus.query(exprs[0] + ")")  # and it does refuse a broken one


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_named_is_one_a_real_server_exposes(
    source: str,
    watched_rollback: WatchedRollback,
) -> None:
    served = watched_rollback.served_names()
    source_text = " ".join(path.read_text() for path in METRICS_SOURCE.rglob("metric*.py"))
    named = set().union(*(metric_names(expr) for expr in exprs_of(source)))
    missing = {n for n in named if n not in served and not (SOMETIMES.match(n) and _in_source(n, source_text))}
    assert not missing, f"{source} names metrics the server does not expose: {sorted(missing)}"
    assert named & served >= {"rollbackkit_rollbacks_total", "rollbackkit_log_backlog_rows"}


def _in_source(name: str, source_text: str) -> bool:
    """Whether the metrics module declares ``name`` (counters without ``_total``, as prometheus_client takes them)."""
    return name in source_text or name.removesuffix("_total") in source_text


def rule(name: str) -> str:
    """The expression of alert ``name``."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return next(r["expr"] for g in groups for r in g["rules"] if r.get("alert") == name)


def test_after_the_story_the_rollback_and_webhook_alerts_fire_and_the_quiet_ones_do_not(
    watched_rollback: WatchedRollback,
) -> None:
    prom = watched_rollback.prometheus
    fired = prom.query(rule("RollbackkitAutomaticRollback"))
    assert [(s["metric"]["model"], s["metric"]["env"]) for s in fired] == [("model", "prod")], fired
    assert "segment-drift" in fired[0]["metric"]["reason"].split("+"), fired  # the failed gates, in the alert
    undelivered = prom.query(rule("RollbackkitNotificationFailures"))
    assert [s["metric"]["target"] for s in undelivered] == ["oncall"], undelivered  # the webhook is down
    quiet = ["RollbackkitNoTraffic", "RollbackkitHighErrorRate", "RollbackkitLogWriteErrors"]
    quiet += ["RollbackkitLogStoreUnreachable", "RollbackkitReplicaLagging", "RollbackkitSyncFailures"]
    quiet += ["RollbackkitMetricsUnread"]
    for name in quiet:
        assert prom.query(rule(name)) == [], name


def test_the_readmes_promql_answers_the_on_calls_questions(watched_rollback: WatchedRollback) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Prometheus, Grafana and alerts", 1)[1].split("\n## ", 1)[0]
    block = section.split("```promql\n", 1)[1].split("```", 1)[0]
    rollbacks, share, p99 = [line for line in block.splitlines() if line and not line.startswith("#")]
    prom = watched_rollback.prometheus
    fired = prom.query(rollbacks)
    assert [(s["metric"]["model"], s["metric"]["env"], s["value"][1]) for s in fired] == [("model", "prod", "1")]
    now = prom.query(share.replace('model="churn"', 'model="model"'))
    assert {(s["metric"]["version"], s["metric"]["role"]): s["value"][1] for s in now}[("v1.0.0", "live")] == "1"
    assert prom.query(p99), p99
    config = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert config["rule_files"][0].endswith("alerts.yml")
