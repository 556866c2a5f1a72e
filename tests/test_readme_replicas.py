"""README's "Replicas and a shared store" says what the code does: its Kubernetes example is a
Deployment whose probes, secrets and ``serve`` options exist, and the numbers it quotes are the
code's defaults (a changed default fails here until the README says so)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer
import yaml

from rollbackkit.cli import app

SECTION = (Path(__file__).parent.parent / "README.md").read_text().split("## Replicas and a shared store", 1)[1]
SECTION = SECTION.split("\n## ", 1)[0]


def _yaml_blocks() -> list[Any]:
    blocks = [part.split("```", 1)[0] for part in SECTION.split("```yaml\n")[1:]]
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc is not None]


def test_the_kubernetes_example_serves_through_real_options_with_secrets_and_healthz() -> None:
    config, deployment, service = _yaml_blocks()
    assert str(config["store"]).startswith("postgresql://")
    assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("valueFrom", e.get("value")) for e in container["env"]}
    assert "secretKeyRef" in env["ROLLBACKKIT_STORE"] and "secretKeyRef" in env["ROLLBACKKIT_ADMIN_TOKEN"]
    assert env["ROLLBACKKIT_REPLICA"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    command = container["command"]
    assert command[:2] == ["rollbackkit", "serve"]
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in param.opts}
    assert [arg for arg in command if arg.startswith("--") and arg not in options] == []
    assert str(container["ports"][0]["containerPort"]) == command[command.index("--port") + 1]


def test_the_kubernetes_pods_push_their_tags_to_origin_with_a_mounted_deploy_key() -> None:
    from rollbackkit.registry.shared_tags import GIT_TIMEOUT_S

    deployment = _yaml_blocks()[1]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ssh = next(e["value"] for e in container["env"] if e["name"] == "GIT_SSH_COMMAND").split()
    assert ssh[0] == "ssh" and "BatchMode=yes" in ssh, "a key that needs a passphrase must fail, not prompt"
    key = Path(ssh[ssh.index("-i") + 1])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    (volume,) = [name for name, path in mounts.items() if key.parent == Path(path)]
    assert secrets[volume]["defaultMode"] == 0o400, "ssh refuses a private key others can read"
    text = " ".join(SECTION.split())
    assert f"spends up to {GIT_TIMEOUT_S:g} s per fetch and per push trying under the environment-wide lock" in text
    assert "`record-not-shared`" in text and "GIT_TERMINAL_PROMPT=0" in text


def test_the_numbers_it_quotes_are_the_codes_defaults() -> None:
    from rollbackkit.serving.postgres.batching import REQUEST_OVERHEAD
    from rollbackkit.serving.postgres.replicas import GONE_AFTER, STALE_AFTER
    from rollbackkit.serving.postgres.store import MIN_SERVER_VERSION, STORE_ENV
    from rollbackkit.serving.postgres.writer import BACKOFF, PgLogWriter
    from rollbackkit.serving.replica_health import ASK_EVERY
    from rollbackkit.serving.replicated import REPLICA_ENV
    from rollbackkit.serving.sync import ReplicaSync

    text = " ".join(SECTION.split())
    writer = inspect.signature(PgLogWriter.__init__).parameters
    sync = inspect.signature(ReplicaSync.__init__).parameters
    assert STORE_ENV in text and REPLICA_ENV in text
    assert f"PostgreSQL database ({MIN_SERVER_VERSION // 10000} or newer)" in text
    assert f"A replica without a heartbeat for {STALE_AFTER:g} s" in text
    assert f"after {GONE_AFTER:g} s of silence it is gone" in text
    assert f"the cut-off replica, after {GONE_AFTER:g} s, answers `/healthz` with 503" in text
    assert f"their `/healthz`, every {ASK_EVERY:g} s, never on a request" in text
    rows, held = writer["buffer_rows"].default, writer["buffer_bytes"].default
    assert f"up to {rows:,} rows or {held // 2**20} MB per replica, whichever fills first" in text
    assert f"a request weighs its frames plus ~{REQUEST_OVERHEAD // 1000} kB" in text
    assert f"about {round(held / REQUEST_OVERHEAD, -4):,.0f} one-row requests fill the {held // 2**20} MB" in text
    assert f"commits every {writer['flush_interval'].default:g} s with a store" in text
    assert f"({BACKOFF[0]:g} s doubling to {BACKOFF[1]:g} s)" in text
    assert f"waits up to {sync['converge_timeout'].default:g} s" in text
    assert f"reads the state every {'second' if sync['poll'].default == 1 else sync['poll'].default}" in text


def test_the_convergence_figures_it_quotes_are_the_benchmarks() -> None:
    import json

    bench = json.loads((Path(__file__).parent.parent / "bench/results/replicas.json").read_text())["convergence"]
    shift = bench["ack_to_last_replica_switch_ms"]
    text = " ".join(SECTION.split())
    quoted = f"in {shift['p50']:.1f} ms (p50), {shift['p99']:.1f} ms (p99) over {shift['n']} shifts"
    assert quoted in text
    changelog = " ".join((Path(__file__).parent.parent / "CHANGELOG.md").read_text().split())
    assert f"{shift['p50']:.1f} ms p50, {shift['p99']:.1f} ms p99 over {shift['n']}" in changelog
    assert "Convergence on loopback: p50" not in changelog, "one home for the figures: bench/results/replicas.json"
