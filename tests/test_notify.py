"""Signed webhook notifications, without a server: the signature, the config, the bodies, the delivery.

A receiver on 127.0.0.1 (tests/webhooks.py) verifies every signature with the function the
README shows; it can refuse its first attempts or never answer.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit.errors import NotifyConfigError, SignatureInvalid
from rollbackkit.notify.config import load_targets
from rollbackkit.notify.delivery import Notifier
from rollbackkit.notify.events import EVENTS
from rollbackkit.notify.message import Notice, slack_body
from rollbackkit.notify.outbox import Claim, Outbox
from rollbackkit.notify.posting import client, post
from rollbackkit.notify.signing import sign, verify
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.journal import Journal

from .story import wait
from .webhooks import SECRET, receiving, refused_url

NOW = 1_790_000_000


# ----------------------------------------------------------------------------- the signature
@settings(max_examples=60, deadline=None)
@given(secret=st.binary(min_size=1, max_size=64), body=st.binary(max_size=2048), skew=st.integers(-300, 300))
def test_a_signature_verifies_its_body_within_the_tolerance(secret: bytes, body: bytes, skew: int) -> None:
    verify(secret, body, sign(secret, body, NOW), now=NOW + skew)


@settings(max_examples=60, deadline=None)
@given(secret=st.binary(min_size=1, max_size=64), body=st.binary(min_size=1, max_size=512), flip=st.integers(0, 511))
def test_a_tampered_body_or_another_secret_fails(secret: bytes, body: bytes, flip: int) -> None:
    header = sign(secret, body, NOW)
    tampered = bytearray(body)
    tampered[flip % len(body)] ^= 0x01
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(secret, bytes(tampered), header, now=NOW)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(secret + b"x", body, header, now=NOW)


def test_a_replayed_signature_is_refused_and_a_malformed_header_says_so() -> None:
    body = b'{"event": "auto-rollback"}'
    old = sign(b"k", body, NOW - 301)
    with pytest.raises(SignatureInvalid, match="beyond the 300 s tolerance"):
        verify(b"k", body, old, now=NOW)
    moved = old.replace(f"t={NOW - 301}", f"t={NOW}")  # a fresh timestamp on the old HMAC
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(b"k", body, moved, now=NOW)
    for header in ("", "v1=abc", f"t={NOW}", f"t=soon,v1={'0' * 64}", f"t={NOW},t={NOW},v1=00", "garbage",
                   f"t={NOW},v1=é", "t=²,v1=00"):  # fmt: skip
        with pytest.raises(SignatureInvalid):
            verify(b"k", body, header, now=NOW)


# ----------------------------------------------------------------------------- the config
def _paths(tmp_path: Path, config: str) -> ProjectPaths:
    (tmp_path / ".rollbackkit").mkdir(exist_ok=True)
    (tmp_path / ".rollbackkit" / "config.yaml").write_text(config)
    return ProjectPaths(tmp_path)


GOOD = "  - name: oncall\n    url: https://hooks.example.com/x\n    secret_env: ONCALL_SECRET\n"


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ("notify:\n  - name: oncall\n    url: https://hooks.example.com/x\n", "notify target oncall: no secret"),
        ("notify:\n" + GOOD.replace("ONCALL_SECRET", "NOT_SET_ANYWHERE"), "secret_env NOT_SET_ANYWHERE is not set"),
        ("notify:\n" + GOOD + "    events: [rollback, rollbak]\n", "notify target oncall: events: unknown rollbak"),
        ("notify:\n" + GOOD.replace("https://hooks.example.com/x", "ftp://x"), "url 'ftp://x' is not an http(s)"),
        ("notify:\n" + GOOD.replace("https://hooks.example.com/x", "hooks.example.com"), "is not an http(s) URL"),
        ("notify:\n" + GOOD + "    format: teams\n", "format 'teams' is not one of json, slack"),
        ("notify:\n" + GOOD + "    timeout: -1\n", "timeout must be a positive number"),
        ("notify:\n" + GOOD + "    secret: literal\n", "give secret_env or secret, not both"),
        ("notify:\n" + GOOD + "    colour: red\n", "unknown key colour"),
        ("notify:\n" + GOOD + GOOD, "notify target oncall: the name is used twice"),
        ("notify:\n  - name: Bad Name\n", "name 'Bad Name' must be"),
        ("notify: https://hooks.example.com/x\n", "notify: must be a list of targets"),
        ("notify:\n  - name: oncall\n   url: [unclosed\n", "notify: "),
        ("notify:\n" + GOOD.replace("https://hooks.example.com/x", "http://127.0.0.1:abc/h"), "is not an http(s) URL"),
        ("notify:\n" + GOOD.replace("https://hooks.example.com/x", "'http://[::1/hook'"), "is not an http(s) URL"),
        ("notify:\n" + GOOD.replace("url:", "url_env: UNSET_URL\n    #"), "url_env UNSET_URL is not set"),
    ],
)
def test_a_bad_notify_config_is_one_line_naming_the_target_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, said: str
) -> None:
    monkeypatch.setenv("ONCALL_SECRET", SECRET)
    with pytest.raises(NotifyConfigError) as caught:
        load_targets(_paths(tmp_path, config))
    text = f"{caught.value.message} {caught.value.hint}"
    assert said in text and "\n" not in text and SECRET not in text, text


def test_a_good_config_reads_its_secret_from_the_environment_and_hides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONCALL_SECRET", SECRET)
    config = "notify:\n" + GOOD + "    events: [auto-rollback, gate-failed]\n    format: slack\n"
    (target,) = load_targets(_paths(tmp_path, config))
    assert target.secret == SECRET.encode() and SECRET not in repr(target)
    assert target.wants("auto-rollback") and target.wants("test") and not target.wants("deploy")
    (every,) = load_targets(_paths(tmp_path, "notify:\n" + GOOD))
    assert every.events == frozenset(EVENTS)
    assert load_targets(_paths(tmp_path, "bundles_dir: bundles\n")) == []
    slack_url = "https://hooks.slack.com/services/T0/B0/credential"
    monkeypatch.setenv("SLACK_URL", slack_url)
    (slack,) = load_targets(_paths(tmp_path, "notify:\n  - name: team\n    url_env: SLACK_URL\n    format: slack\n"))
    assert slack.url == slack_url and slack_url not in repr(slack) and slack.secret == b""  # Slack checks no secret
    waits = [min(every.max_delay, every.backoff * 2**n) / 2 for n in range(every.attempts - 1)]  # jittered down
    assert sum(waits) >= 300, sum(waits)  # the defaults outlast a receiver's restart (5 min at least)


# ----------------------------------------------------------------------------- the bodies
def test_a_slack_target_gets_a_one_line_text_and_blocks() -> None:
    notice = Notice(
        "auto-rollback", "churn in prod: AUTOMATIC ROLLBACK to v1.0.0 (gates failed: drift)", "churn", "prod",
        "v1.0.0", {"previous": "v1.1.0", "gates": "drift: psi 0.41 > 0.2", "shift_ms": 0.8, "reason": ""},
    )  # fmt: skip
    body = json.loads(slack_body(notice))
    assert body["text"] == "[rollbackkit] churn in prod: AUTOMATIC ROLLBACK to v1.0.0 (gates failed: drift)"
    assert "\n" not in body["text"]
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["section", "section", "context"]
    assert "*previous*: v1.1.0" in body["blocks"][1]["text"]["text"]
    assert "reason" not in body["blocks"][1]["text"]["text"]  # empty fields left out
    assert notice.id in body["blocks"][2]["elements"][0]["text"]
    loud = Notice("rollback", "<!channel> " + "x" * 5000, details={"reason": "<@U123> & <https://evil|click>" * 200})
    sections = [b["text"]["text"] for b in json.loads(slack_body(loud))["blocks"] if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections) and sections[0].endswith("…")
    assert not any("<" in text or ">" in text for text in sections), sections  # no ping, no link: escaped
    assert "&lt;!channel&gt;" in sections[0]


# ----------------------------------------------------------------------------- delivery
def _notifier(tmp_path: Path, url: str, **policy: float) -> Notifier:
    monkey = {"name": "oncall", "url": url, "secret": SECRET, "attempts": 4, "backoff": 0.05, "max_delay": 0.2}
    from rollbackkit.notify.config import parse_targets

    targets = parse_targets([{**monkey, **policy}])
    (tmp_path / "local").mkdir(parents=True, exist_ok=True)
    return Notifier(Outbox(tmp_path / "local" / "outbox"), targets, Journal(tmp_path / "local" / "journal.jsonl"))


def _notifications(tmp_path: Path) -> list[dict]:
    journal = tmp_path / "local" / "journal.jsonl"
    lines = journal.read_text().splitlines() if journal.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == "notification"]


def test_a_receiver_down_for_the_first_attempts_gets_each_notice_once_with_one_idempotency_key(
    tmp_path: Path,
) -> None:
    with receiving(refuse=3) as receiver:
        notifier = _notifier(tmp_path, receiver.url)
        first, second = Notice("canary", "v1.1.0 at 30%"), Notice("auto-rollback", "back to v1.0.0")
        notifier.send(first)
        notifier.send(second)
        wait(lambda: len(receiver.delivered) == 2 and not notifier.pending(), 20, "both notices", every=0.05)
        notifier.close(wait=2)
    assert set(receiver.delivered) == {first.id, second.id} and not receiver.duplicates
    assert not receiver.bad_signatures
    assert len(receiver.attempts) == 5 and set(receiver.attempts) == {first.id, second.id}  # retries: same key
    headers = receiver.headers[second.id]
    assert headers["Idempotency-Key"] == second.id and headers["X-Rollbackkit-Event"] == "auto-rollback"
    assert headers["User-Agent"].startswith("rollbackkit")
    status = notifier.status().to_dict()
    assert status["delivered"] == 2 and status["targets"]["oncall"]["retries"] == 3
    entries = _notifications(tmp_path)
    assert sorted((e["notice_event"], e["outcome"]) for e in entries) == [
        ("auto-rollback", "delivered"), ("canary", "delivered")
    ]  # fmt: skip
    assert all(SECRET not in json.dumps(e) and "summary" not in e for e in entries)


def test_a_dead_endpoint_never_blocks_the_sender_and_its_failure_is_counted_and_journaled(tmp_path: Path) -> None:
    with receiving(silent=True) as silent:
        notifier = _notifier(tmp_path, silent.url, timeout=0.2, attempts=2)
        notifier.send(Notice("rollback", "rollback 0"))
        time.sleep(0.05)  # the worker is now blocked on the endpoint that never answers
        started = time.perf_counter()
        for i in range(1, 5):
            notifier.send(Notice("rollback", f"rollback {i}"))
        took = time.perf_counter() - started
        assert took < 0.005, took  # send only queues: microseconds each, whatever the endpoint does
        wait(lambda: notifier.status().to_dict()["failed"] == 5, 30, "every notice to fail", every=0.1)
    status = notifier.status().to_dict()["targets"]["oncall"]
    assert status["delivered"] == 0 and status["retries"] == 5 and status["queued"] == 0
    assert "Timeout" in status["last_error"] and silent.url not in status["last_error"]
    entries = _notifications(tmp_path)
    assert len(entries) == 5 and {e["outcome"] for e in entries} == {"failed"} and entries[0]["attempts"] == 2


def test_a_refused_url_and_a_4xx_fail_without_waiting(tmp_path: Path) -> None:
    notifier = _notifier(tmp_path, refused_url(), attempts=3)
    notifier.send(Notice("deploy", "v1.0.0 live"))
    wait(lambda: notifier.status().to_dict()["failed"] == 1, 10, "the refused notice to fail", every=0.05)
    assert "ConnectError" in notifier.status().targets["oncall"].last_error
    with receiving(secret="another secret") as picky:  # 401 on every signature: not retried
        wrong = _notifier(tmp_path / "other", picky.url)
        wrong.send(Notice("deploy", "v1.0.0 live"))
        wait(lambda: wrong.status().to_dict()["failed"] == 1, 10, "the 401 to fail", every=0.05)
        assert len(picky.attempts) == 1 and picky.bad_signatures
    assert _notifications(tmp_path / "other")[0]["status"] == 401


def test_the_outbox_outlives_its_process_and_two_deliverers_never_send_one_notice_twice(tmp_path: Path) -> None:
    notice = Notice("auto-rollback", "back to v1.0.0")
    with receiving() as receiver:
        gone = _notifier(tmp_path, receiver.url)
        gone._incoming.append((notice, ["oncall"]))  # queued, then the process stops before a worker ran
        assert gone.close() == 1
        assert receiver.attempts == []
        deliverers = [_notifier(tmp_path, receiver.url) for _ in range(3)]  # a server, a drain...
        for deliverer in deliverers:
            deliverer.start()
        wait(lambda: receiver.delivered and not deliverers[0].pending(), 20, "the notice left behind", every=0.05)
        time.sleep(0.3)
        for deliverer in deliverers:
            deliverer.close(wait=1)
    assert list(receiver.delivered) == [notice.id] and receiver.attempts == [notice.id]
    assert len(_notifications(tmp_path)) == 1


# ----------------------------------------------------------------------------- the README
def _readme_section() -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    return readme.split("### Notifications\n", 1)[1].split("\n### ", 1)[0]


def test_the_readme_receiver_accepts_a_real_signature_and_refuses_a_tamper_or_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    section = _readme_section()
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("ONCALL_WEBHOOK_SECRET", SECRET)
    namespace: dict = {}
    exec(code, namespace)
    verified = namespace["verified"]
    body = b'{"event": "auto-rollback"}'
    now = int(time.time())
    assert verified(body, sign(SECRET.encode(), body, now))
    assert not verified(body + b" ", sign(SECRET.encode(), body, now))
    assert not verified(body, sign(SECRET.encode(), body, now - 600))
    assert not verified(body, f"t={now},v1=é") and not verified(body, "t=²,v1=00")  # refused, never a 500
    notice = json.dumps({"id": "n1", "event": "auto-rollback", "summary": "back to v1.0.0"}).encode()
    header = sign(SECRET.encode(), notice, now)
    assert namespace["handle"](notice, header) == 200 and namespace["handle"](notice, header) == 200
    assert namespace["seen"] == {"n1"} and namespace["handle"](notice + b" ", header) == 401
    table = {
        cell.strip("` ")
        for line in section.splitlines()
        if line.startswith("| `")
        for cell in line.split("|")[1].split(",")
    }
    assert table == set(EVENTS)


# ----------------------------------------------------------------------------- traffic events
def test_every_traffic_event_maps_to_its_notify_event_and_a_breach_is_left_to_gate_failed() -> None:
    from rollbackkit.serving.notifying import notice_of
    from rollbackkit.serving.status import TrafficEvent

    said = {
        ("deploy", "deploy"): "deploy", ("deploy", "canary"): "canary", ("deploy", "shadow"): "shadow",
        ("advance", "canary"): "step", ("promote", "promote"): "promote", ("rollback", "rollback"): "rollback",
        ("rollback", "auto-rollback"): "auto-rollback", ("gate-failed", ""): "gate-failed", ("paused", ""): "paused",
        ("not-everywhere", "rollback"): "not-everywhere", ("gate-breach", ""): None,
    }  # fmt: skip
    for (kind, action), event in said.items():
        happened = TrafficEvent(
            kind, "churn", "prod", "v1.1.0", "v1.0.0", "churn#prod#3", action, "why", 0.4, 30, "drift"
        )
        notice = notice_of(happened)
        assert (notice.event if notice else None) == event, (kind, action)
        if notice is not None:
            assert notice.event in EVENTS and "\n" not in notice.summary and "churn in prod" in notice.summary
            assert notice.details["tag"] == "churn#prod#3" and notice.version == "v1.1.0"


def test_a_notice_sent_after_close_goes_to_the_outbox_for_the_next_deliverer(tmp_path: Path) -> None:
    """An edited config closes a server's notifier (notifier_for makes another): nothing it is still handed is lost."""
    with receiving() as receiver:
        closed = _notifier(tmp_path, receiver.url)
        closed.close()
        late = Notice("auto-rollback", "back to v1.0.0")
        closed.send(late)
        assert closed.pending() == 1 and receiver.attempts == []
        successor = _notifier(tmp_path, receiver.url)
        assert successor.drain(10) == 0
        successor.close(wait=1)
    assert list(receiver.delivered) == [late.id]


def test_a_replay_with_a_new_delivery_header_is_a_duplicate_of_the_signed_id(tmp_path: Path) -> None:
    with receiving() as receiver:
        notice = Notice("auto-rollback", "back to v1.0.0")
        notifier = _notifier(tmp_path, receiver.url)
        notifier.send(notice)
        wait(lambda: notice.id in receiver.delivered, 10, "the notice", every=0.05)
        notifier.close(wait=1)
        headers = dict(receiver.headers[notice.id])
        body = json.dumps(receiver.delivered[notice.id], sort_keys=True).encode()
        replayed = {**headers, "X-Rollbackkit-Delivery": "forged", "Idempotency-Key": "forged"}
        import httpx

        httpx.post(receiver.url, content=body, headers=replayed, timeout=5)
    assert receiver.duplicates == [notice.id] and list(receiver.delivered) == [notice.id]


# ----------------------------------------------------------------------------- a hostile or broken world
def _raw_server(answer: bytes, trickle: float = 0.0, total: int = 0) -> tuple[str, dict, threading.Event]:
    """A server that answers every request with ``answer`` then ``total`` bytes of body, one per ``trickle`` s."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent = {"bytes": 0}
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(answer)
            chunk = b"x" if trickle else b"x" * 65536
            try:
                while sent["bytes"] < total and not stop.is_set():
                    connection.sendall(chunk)
                    sent["bytes"] += len(chunk)
                    time.sleep(trickle)
            except OSError:
                pass
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook", sent, stop


def test_a_receiver_that_trickles_or_floods_its_answer_is_cut_by_the_deadline_and_a_few_kb(tmp_path: Path) -> None:
    from rollbackkit.notify.config import parse_targets

    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 800000000\r\n\r\n"
    for answer, trickle, total, ok in (
        (huge, 0.3, 1000, False), (b"HTTP/1.1 200 OK\r\nX-Slow: ", 0.3, 1000, False), (huge, 0.0, 800_000_000, True)
    ):  # fmt: skip
        url, sent, stop = _raw_server(answer, trickle, total)
        (target,) = parse_targets([{"name": "slow", "url": url, "secret": SECRET, "timeout": 1}])
        started = time.monotonic()
        with client() as http:
            attempt = post(target, Notice("auto-rollback", "back"), http)
        took = time.monotonic() - started
        stop.set()
        assert took < 2.5, (trickle, took)  # one deadline for the attempt, not one per read
        assert attempt.ok is ok and (ok or (attempt.retry and "within 1 s" in attempt.error)), attempt
        assert sent["bytes"] < 50_000_000, sent  # the flood was never read (at most a few KB were)


def test_a_failing_outbox_keeps_the_notice_in_memory_and_a_failing_save_never_kills_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put, real_save = Outbox.put, Claim.save
    broken = {"put": 2, "save": 1}

    def put(self: Outbox, entry):  # a full disk, twice
        if broken["put"]:
            broken["put"] -= 1
            raise OSError(28, "No space left on device")
        return real_put(self, entry)

    def save(self: Claim) -> None:
        if broken["save"]:
            broken["save"] -= 1
            raise OSError(28, "No space left on device")
        real_save(self)

    monkeypatch.setattr(Outbox, "put", put)
    monkeypatch.setattr(Claim, "save", save)
    with receiving(refuse=1) as receiver:
        notifier = _notifier(tmp_path, receiver.url)
        notice = Notice("auto-rollback", "back to v1.0.0")
        notifier.send(notice)
        wait(lambda: notifier.status().unsaved == 1, 5, "the unsaved notice counted", every=0.02)
        wait(lambda: notice.id in receiver.delivered, 20, "the notice, once the disk has room", every=0.05)
        notifier.close(wait=1)
    status = notifier.status()
    assert status.unsaved == 0 and status.errors >= 3 and status.targets["oncall"].delivered == 1
    assert [e["outcome"] for e in _notifications(tmp_path)] == ["delivered"]


def test_a_target_gets_its_notices_in_the_order_they_happened(tmp_path: Path) -> None:
    with receiving(refuse=1) as receiver:
        notifier = _notifier(tmp_path, receiver.url)
        story = [Notice(event, event) for event in ("canary", "gate-failed", "auto-rollback", "runbook")]
        for notice in story:
            notifier.send(notice)
        wait(lambda: len(receiver.delivered) == 4, 20, "every notice", every=0.05)
        notifier.close(wait=1)
    bodies = list(receiver.delivered.values())
    assert [b["event"] for b in bodies] == ["canary", "gate-failed", "auto-rollback", "runbook"]
    assert len(bodies[0]["time"]) >= len("2026-01-01T00:00:00.000000") and "." in bodies[0]["time"]
    assert [b["sequence"] for b in bodies] == sorted(b["sequence"] for b in bodies)


def test_an_unreadable_outbox_entry_is_counted_and_kept_for_a_person(tmp_path: Path) -> None:
    notifier = _notifier(tmp_path, refused_url())
    outbox = tmp_path / "local" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "0-0.deadbeef.oncall.json").write_text("{half a notice")
    assert notifier.drain(5) == 0
    notifier.close()
    assert notifier.status().targets["oncall"].unreadable == 1 and (outbox / "0-0.deadbeef.oncall.bad").exists()


def test_paused_waits_its_grace_and_a_later_event_of_its_environment_cancels_it(tmp_path: Path) -> None:
    with receiving() as receiver:
        notifier = _notifier(tmp_path, receiver.url, pause_grace=0.5)
        notifier.send(Notice("paused", "prod paused", "churn", "prod", "v1.1.0", {"reason": "no traffic"}))
        notifier.send(Notice("paused", "staging paused", "churn", "staging", "v1.1.0", {"reason": "no traffic"}))
        notifier.send(Notice("auto-rollback", "prod rolled back", "churn", "prod", "v1.0.0"))
        stepped = Notice("paused", "a step's first seconds", "churn", "test", "v1.1.0", {"progressed": True})
        notifier.send(stepped)  # a healthy stepped canary's step: no rows yet is no page (PROBE21b N4)
        notifier.send(Notice("resumed", "test resumed", "churn", "test", "v1.1.0"))  # rows came within the grace
        wait(lambda: len(receiver.delivered) == 1, 10, "the rollback", every=0.02)
        assert [b["summary"] for b in receiver.delivered.values()] == ["prod rolled back"]
        wait(lambda: len(receiver.delivered) == 2, 10, "staging's pause after its grace", every=0.05)
        time.sleep(0.6)
        notifier.send(Notice("resumed", "staging resumed", "churn", "staging", "v1.1.0"))
        wait(lambda: len(receiver.delivered) == 3, 10, "staging's resume: its pause was sent", every=0.05)
        notifier.send(Notice("resumed", "staging resumed again", "churn", "staging", "v1.1.0"))
        time.sleep(0.3)
        notifier.close(wait=1)
    summaries = [b["summary"] for b in receiver.delivered.values()]
    assert summaries == ["prod rolled back", "staging paused", "staging resumed"], summaries


def test_resumed_goes_to_a_target_that_asked_for_paused_and_is_a_known_event() -> None:
    from rollbackkit.notify.config import parse_targets

    (oncall,) = parse_targets([{"name": "oncall", "url": "http://127.0.0.1:9/x", "secret": "s", "events": ["paused"]}])
    (rollbacks,) = parse_targets([{"name": "r", "url": "http://127.0.0.1:9/x", "secret": "s", "events": ["rollback"]}])
    assert "resumed" in EVENTS and oncall.wants("resumed") and not rollbacks.wants("resumed")
    (everything,) = parse_targets([{"name": "all", "url": "http://127.0.0.1:9/x", "secret": "s"}])
    assert everything.wants("resumed")


def test_notify_test_of_one_target_validates_and_sends_to_that_target_alone(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    from rollbackkit.ops.notices import send_test

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)  # the other target's: not oncall's problem (PROBE21b N6)
    with receiving() as receiver:
        oncall = f"  - name: oncall\n    url: {receiver.url}\n    secret: {SECRET}\n"
        slack = "  - name: team-channel\n    url_env: SLACK_WEBHOOK_URL\n    format: slack\n"
        _paths(tmp_path, f"notify:\n{oncall}{slack}")
        answers = send_test(tmp_path, "oncall")
        assert list(answers) == ["oncall"] and answers["oncall"].ok, answers
        assert [b["event"] for b in receiver.delivered.values()] == ["test"]
        with pytest.raises(NotifyConfigError, match="team-channel: url_env SLACK_WEBHOOK_URL is not set"):
            send_test(tmp_path, "team-channel")  # the one named is still validated
        with pytest.raises(NotifyConfigError, match="no target named pager") as raised:
            send_test(tmp_path, "pager")
        assert "oncall, team-channel" in (raised.value.hint or "")
        with pytest.raises(NotifyConfigError, match="SLACK_WEBHOOK_URL"):
            send_test(tmp_path)  # every target: every one must be right


def test_a_drain_started_while_another_ends_waits_for_it_and_delivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollbackkit.notify import drain
    from rollbackkit.notify.process import hold_drain_lock

    with receiving() as receiver:
        config = f"notify:\n  - name: oncall\n    url: {receiver.url}\n    secret_env: ONCALL_SECRET\n"
        paths = _paths(tmp_path, config)
        monkeypatch.setenv("ONCALL_SECRET", SECRET)
        ending = hold_drain_lock(paths)  # a drain that found nothing and is exiting
        assert ending is not None
        notice = Notice("rollback", "back to v1.0.0")
        late = _notifier(tmp_path, receiver.url)
        late.outbox = Outbox(paths.local / "outbox")
        late.close()
        late.send(notice)  # a CLI's entry, written just then
        done: list[int] = []
        second = threading.Thread(target=lambda: done.append(drain.main(str(tmp_path))), daemon=True)
        second.start()
        time.sleep(0.3)
        os.close(ending)  # the first drain exits
        second.join(30)
    assert done == [0] and list(receiver.delivered) == [notice.id]


def test_every_notify_thread_is_rollbackkits_and_serves_shutdown_waits_for_it(tmp_path: Path) -> None:
    """A delivery under way at SIGTERM (and its deadline timer) is joined by serve's shutdown, not left running."""
    from rollbackkit.serving.server import _join_threads

    with receiving(silent=True) as silent:
        before = set(threading.enumerate())  # the receiver's threads are not the notifier's
        notifier = _notifier(tmp_path, silent.url, timeout=0.5, attempts=1)
        notifier.send(Notice("auto-rollback", "back to v1.0.0"))
        wait(lambda: silent.attempts, 10, "the attempt to hang on the endpoint", every=0.02)
        notifier.close(wait=0.0)  # serve's close: the worker is still in its attempt
        started = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and "process_request" not in t.name
        ]
        assert started and all(t.name.startswith("rollbackkit-notify-") for t in started), started
        _join_threads(3.0, before)
    assert not [t for t in started if t.is_alive()], started


def test_a_command_that_succeeded_stays_a_success_when_handing_off_to_a_drain_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from rollbackkit import cli
    from rollbackkit.notify import process

    def broken() -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(process, "hand_off", broken)
    monkeypatch.setattr(sys, "argv", ["rollbackkit", "--help"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code in (0, None)
    warned = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warned) == 1 and warned[0].startswith("warning: notifications not handed to a drain"), warned
