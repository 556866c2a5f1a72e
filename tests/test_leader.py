"""One watchdog per environment: the replica holding the PostgreSQL advisory lock leads, and only it judges.

Real PostgreSQL (tests/postgres.py's ``store_url``: a fresh database per test). Killing the
leader's connection (``pg_terminate_backend``) or its process (``kill -9``) hands the lead to
another replica within seconds; a follower's watchdog never reads a window and shows the
leader's last report and who leads in its ``/status``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from rollbackkit.errors import StoreError
from rollbackkit.serving.postgres.leader import Leadership
from rollbackkit.serving.postgres.replicas import ReplicaTable
from rollbackkit.serving.postgres.routing import RoutingTable
from rollbackkit.serving.postgres.store import Store, open_store

from .asyncs import run_async
from .conftest import live_records
from .story import wait

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


until = partial(wait, every=0.05)
"""Poll a condition until it is truthy (its value); fail after the seconds given (:func:`.story.wait`)."""


def terminate(store: Store, leadership: Leadership) -> None:
    """Kill the leader's backend from another session, as an operator (or a failover) would."""
    con = leadership._con
    assert con is not None
    pid = con.info.backend_pid
    with store.connect(autocommit=True, purpose="test admin") as admin:
        # pg_terminate_backend only signals: wait until the backend (and its advisory lock) is gone
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_exactly_one_of_three_replicas_leads_and_a_terminated_connection_hands_the_lead_over(store_url: str) -> None:
    store = open_store(store_url)
    replicas = [Leadership(store, "churn", "prod", f"web-{i}") for i in range(3)]
    other_env = Leadership(store, "churn", "staging", "web-0")
    try:
        leading = [r.replica for r in replicas if r.leading()]
        assert leading == ["web-0"]  # the first to try takes it; the others follow
        assert [r.replica for r in replicas if r.leading()] == ["web-0"]  # and it keeps it
        assert other_env.leading(), "another environment has its own lead"
        assert replicas[2].leader() == "web-0"

        replicas[0].record({"decision": "pass", "version": "v1.0.0", "n": 120})
        seen = replicas[1].last()
        assert (
            seen is not None
            and seen.leader == "web-0"
            and seen.report == {"decision": "pass", "version": "v1.0.0", "n": 120}
        )

        terminate(store, replicas[0])
        started = time.monotonic()
        took = until(lambda: [r.replica for r in replicas[1:] if r.leading()], 5, "a follower takes the lead")
        # the backend goes away asynchronously: whichever follower asks first after it is gone takes the lead
        assert took in (["web-1"], ["web-2"]) and time.monotonic() - started < 2
        new = next(r for r in replicas if r.replica == took[0])
        assert not replicas[0].leading(), "the old leader sees it lost the lead, and does not take it back"
        assert [r.replica for r in replicas if r.leading()] == took
        assert replicas[0].status() | {"since": None} == {
            "leader": took[0],
            "leading": False,
            "since": None,
            "error": None,
        }

        new.release()  # a graceful stop gives the lead up at once
        assert replicas[0].leader() is None
        after = [r.replica for r in replicas if r.leading()]
        assert len(after) == 1 and after != took, after
    finally:
        for r in [*replicas, other_env]:
            r.release()


def test_a_leader_that_cannot_serve_the_published_state_gives_the_lead_to_one_that_does(store_url: str) -> None:
    store = open_store(store_url)
    cannot: dict[str, str | None] = {"web-0": None, "web-1": None}
    replicas = [Leadership(store, "churn", "prod", who) for who in cannot]
    for r in replicas:
        r.unfit = lambda _who=r.replica: cannot[_who]  # type: ignore[misc]
    try:
        assert [r.replica for r in replicas if r.leading()] == ["web-0"]
        cannot["web-0"] = "cannot load v1.2.0: No module named 'lightgbm'"  # the canary another replica deployed
        assert not replicas[0].leading(), "a leader serving a state nobody else serves judges nothing"
        assert replicas[0].error == "not leading: cannot load v1.2.0: No module named 'lightgbm'"
        assert replicas[1].leading() and replicas[1].leader() == "web-1", "an in-sync replica takes the lead at once"
        cannot["web-1"] = "serves generation 4, not yet 5"
        assert not replicas[1].leading() and not replicas[0].leading()  # nobody fit: nobody judges
        cannot["web-0"] = None  # web-0 loads it after all
        assert replicas[0].leading() and replicas[1].leader() == "web-0"
    finally:
        for r in replicas:
            r.release()


def test_a_store_that_hangs_fails_routing_heartbeat_and_leader_reads_in_seconds_and_the_leader_keeps_the_lead(
    store_url: str,
) -> None:
    store = open_store(store_url)
    lead, routing, table = Leadership(store, "churn", "prod", "web-0"), RoutingTable(store), ReplicaTable(store)
    assert lead.leading()
    reads = {
        "who leads": lambda: lead.last(),
        "routing": lambda: routing.read("churn", "prod"),
        "replicas": lambda: table.list("churn", "prod"),
    }
    try:
        with store.connect(purpose="test admin") as admin:  # a migration, a VACUUM FULL, a stuck failover
            admin.execute("LOCK TABLE watchdog, routing, replicas IN ACCESS EXCLUSIVE MODE")
            for what, read in reads.items():
                said: list[object] = []
                reader = threading.Thread(target=lambda r=read, s=said: s.append(_outcome(r)), daemon=True)
                started = time.monotonic()
                reader.start()
                reader.join(10)
                assert not reader.is_alive(), f"a {what} read still hangs on a store that does not answer"
                assert time.monotonic() - started < 6
                assert said[0] is None or isinstance(said[0], StoreError), (what, said)
            admin.rollback()
        assert lead.leading() and lead.leader() == "web-0", "a failed read of who leads never drops the lead"
    finally:
        lead.release()
        routing.close()
        table.close()


def _outcome(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except StoreError as exc:
        return exc


def test_a_killed_leader_process_hands_the_lead_over_within_seconds(store_url: str, tmp_path: Path) -> None:
    script = tmp_path / "lead.py"
    script.write_text(
        "import sys, time\n"
        "from rollbackkit.serving.postgres.leader import Leadership\n"
        "from rollbackkit.serving.postgres.store import Store\n"
        "lead = Leadership(Store(sys.argv[1]), 'churn', 'prod', 'doomed')\n"
        "assert lead.leading()\n"
        "print('leading', flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, str(script), store_url], stdout=subprocess.PIPE, text=True)
    follower = Leadership(open_store(store_url), "churn", "prod", "survivor")
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "leading"
        assert not follower.leading() and follower.leader() == "doomed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        started = time.monotonic()
        until(follower.leading, 5, "the survivor takes the lead of a killed leader")
        assert time.monotonic() - started < 3 and follower.leader() == "survivor"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        follower.release()


def test_the_store_going_away_is_not_leading_and_never_raises(store_url: str) -> None:
    lead = Leadership(Store(store_url.rsplit("/", 1)[0].rsplit(":", 1)[0] + ":1/nowhere"), "churn", "prod", "lonely")
    assert lead.leading() is False
    assert lead.error is not None and "Cannot reach the store" in lead.error
    assert store_url.split(":")[2].split("@")[0] not in lead.error, "never the password"
    assert lead.last() is None and lead.leader() is None
    lead.record({"decision": "pass"})  # nothing to write to: no error either
    assert lead.status()["leading"] is False


def test_only_the_leader_evaluates_and_a_follower_shows_its_report_and_who_leads(served: Path, store_url: str) -> None:
    from rollbackkit.serving.replicated import ReplicaEnvironment

    store = open_store(store_url)
    envs = {who: ReplicaEnvironment(served, "churn", "prod", store=store, replica=who) for who in ("a", "b")}
    judged = dict.fromkeys(envs, 0)
    for who, env in envs.items():
        env.start()
        window = env.window

        def counted(
            slot: Any, *, since: str | None = None, until: str | None = None, _w: Any = window, _who: str = who
        ) -> Any:
            judged[_who] += 1
            return _w(slot, since=since, until=until)

        env.window = counted  # type: ignore[method-assign]
    a, b = envs["a"], envs["b"]
    try:
        frame = pd.DataFrame(live_records(40, seed=5))
        for i in range(4):
            a.predict(frame.iloc[i * 10 : (i + 1) * 10].reset_index(drop=True))
            b.predict(frame.iloc[i * 10 : (i + 1) * 10].reset_index(drop=True))

        a.check_gates()  # a leads: it judges (whatever the gates say)
        assert judged == {"a": 1, "b": 0}
        for _ in range(3):
            assert b.check_gates() is None
        assert judged == {"a": 1, "b": 0}, "a follower never reads a window"
        assert a.last_report is not None and b.last_report == a.last_report
        said = b.status()
        assert said["watchdog"]["leader"] == "a" and said["watchdog"]["leading"] is False
        assert said["gates"] == a.last_report and said["store"] == store.where

        terminate(store, a.leadership)
        b.check_gates()
        assert judged["b"] == 1, "the follower took the lead and judged its own window"
        assert b.status()["watchdog"] | {"since": None} == {
            "leader": "b",
            "leading": True,
            "since": None,
            "error": None,
        }
        a.check_gates()
        assert judged["a"] == 1, "the old leader follows now"
        assert a.status()["watchdog"]["leader"] == "b"

        b.leave()  # SIGTERM: the balancer drains b while it finishes, and a leads at once
        answer = _healthz(b)
        assert answer.status_code == 503 and answer.json()["reason"] == "replica b is stopping"
        until(a.leadership.leading, 5, "a takes the lead of a replica that is stopping")
        a.check_gates()
        assert b.check_gates() is None and judged == {"a": 2, "b": 1}, "a stopping replica never leads again"
    finally:
        for env in envs.values():
            env.stop()
            env.close()


def _healthz(env: Any) -> httpx.Response:
    """``GET /healthz`` of the replica's app (what a load balancer asks)."""
    from rollbackkit.serving.app import create_app

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(env, "token"))
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            return await client.get("/healthz")

    return run_async(get())
