"""The :class:`Notifier`: notices spooled to the outbox, then POSTed, signed, by one thread per target.

:meth:`Notifier.send` only appends to a queue (microseconds: a traffic shift never waits); the
spool thread writes each notice to the durable outbox, then each target's worker delivers its
entries: retried with exponential backoff and jitter on a refusal, a timeout or a 5xx, 408 or
429, until ``attempts``; every final outcome is journaled (``notification``: id, target, event,
outcome, attempts, HTTP status or error; never a secret nor a body). A worker blocked on a
dead endpoint delays only its own target.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rollbackkit.notify.config import Target
from rollbackkit.notify.message import Notice, body
from rollbackkit.notify.outbox import Claim, Entry, Outbox
from rollbackkit.notify.signing import HEADER, sign
from rollbackkit.registry.journal import Journal

RETRY_STATUSES = frozenset({408, 425, 429})
SCAN_SECONDS = 1.0  # how often a worker looks for entries another process left
SPOOL_JOIN_SECONDS = 5.0  # close() waits this long at most for a notice being written to the outbox


def _user_agent() -> str:
    try:
        return f"rollbackkit/{version('rollbackkit')}"
    except PackageNotFoundError:
        return "rollbackkit"


@dataclass
class TargetStatus:
    """One target's deliveries by this process, and what waits in the outbox for it."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0
    queued: int = 0
    last_error: str | None = None


@dataclass
class NotifyStatus:
    """Every target's :class:`TargetStatus` (``/status``'s ``notifications``)."""

    targets: dict[str, TargetStatus] = field(default_factory=dict)
    errors: int = 0  # deliveries whose journal entry failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: totals, then per target (no URL: a Slack URL is itself a secret)."""
        totals = {k: sum(getattr(t, k) for t in self.targets.values()) for k in ("delivered", "failed", "queued")}
        return {**totals, "errors": self.errors, "targets": {n: asdict(t) for n, t in self.targets.items()}}


@dataclass(frozen=True)
class Attempt:
    """How one POST went: ``ok``, whether to ``retry``, the HTTP ``status`` or the ``error``."""

    ok: bool
    retry: bool
    status: int | None = None
    error: str = ""


def post(target: Target, notice: Notice, client: Any) -> Attempt:
    """POST ``notice`` to ``target``, signed now (the URL never appears in the error said)."""
    import httpx

    payload = body(target.format, notice)
    headers = {
        "Content-Type": "application/json",
        HEADER: sign(target.secret, payload, int(time.time())),
        "X-Rollbackkit-Event": notice.event,
        "X-Rollbackkit-Delivery": notice.id,
        "Idempotency-Key": notice.id,
        "User-Agent": _user_agent(),
    }
    try:
        response = client.post(target.url, content=payload, headers=headers, timeout=target.timeout)
    except httpx.HTTPError as exc:
        said = str(exc).replace(target.url, "<url>") or "no answer"
        return Attempt(False, True, error=f"{type(exc).__name__}: {said}"[:300])
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, False, code)
    return Attempt(False, code >= 500 or code in RETRY_STATUSES, code, f"HTTP {code}")


def backoff(target: Target, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: ``backoff * 2**(n-1)``, at most
    ``max_delay``, jittered down to half (so many notifiers never retry in step)."""
    delay = min(target.max_delay, target.backoff * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)


class Notifier:
    """Delivers notices to a project's targets (one per project per process: :func:`notifier_for`)."""

    def __init__(self, outbox: Outbox, targets: list[Target], journal: Journal) -> None:
        self.outbox = outbox
        self.targets = {t.name: t for t in targets}
        self.journal = journal
        self._status = NotifyStatus({t.name: TargetStatus() for t in targets})
        self._incoming: deque[Notice] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ready = {name: threading.Event() for name in self.targets}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ the caller's side
    def send(self, notice: Notice) -> None:
        """Queue ``notice`` for every target that wants its event (never blocks, never raises)."""
        if not any(t.wants(notice.event) for t in self.targets.values()):
            return
        self._incoming.append(notice)
        if self.closed:  # closed (an edited config made another): to the outbox now, whoever delivers it
            try:
                self.flush()
            except OSError as exc:
                self._fail_all(f"outbox: {exc}")
            return
        self._wake.set()
        self.start()

    def start(self) -> None:
        """Start the spool thread and one worker per target (once): what an earlier process left goes too."""
        with self._lock:
            if self._threads or self._stop.is_set():
                return
            spool = threading.Thread(target=self._spool_loop, name="notify-spool", daemon=True)
            workers = [
                threading.Thread(target=self._worker, args=(t,), name=f"notify-{t.name}", daemon=True)
                for t in self.targets.values()
            ]
            self._threads = [spool, *workers]
        for thread in self._threads:
            thread.start()

    def flush(self) -> int:
        """Write the queued notices to the outbox now (local disk only); returns how many."""
        written = 0
        while self._incoming:
            try:
                notice = self._incoming.popleft()
            except IndexError:
                break
            for target in self.targets.values():
                if target.wants(notice.event):
                    self.outbox.put(Entry(notice, target.name, next_at=time.time()))
                    self._ready[target.name].set()
            written += 1
        return written

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (:func:`~rollbackkit.notify.process.notifier_for` then makes another)."""
        return self._stop.is_set()

    def status(self) -> NotifyStatus:
        """Counters since this process started; ``queued``: entries waiting in the outbox (any process's)."""
        counts = self.outbox.counts()
        for name, said in self._status.targets.items():
            said.queued = counts.get(name, 0)
        return NotifyStatus(
            {n: TargetStatus(**asdict(t)) for n, t in self._status.targets.items()}, self._status.errors
        )

    def pending(self) -> int:
        """Notices queued in memory plus entries in the outbox for a configured target."""
        counts = self.outbox.counts()
        return len(self._incoming) + sum(counts.get(name, 0) for name in self.targets)

    def close(self, wait: float = 0.0) -> int:
        """Spool what is queued, stop the threads (waiting up to ``wait`` s); returns the entries left."""
        self._stop.set()
        self._wake.set()
        for ready in self._ready.values():
            ready.set()
        if self._threads:  # the spool thread finishes the notice it is writing (local disk only)
            self._threads[0].join(SPOOL_JOIN_SECONDS)
        try:
            self.flush()
        except OSError as exc:  # the notices in memory are lost: said in status
            self._fail_all(f"outbox: {exc}")
        deadline = time.monotonic() + wait
        for thread in self._threads[1:]:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.pending()

    def drain(self, seconds: float) -> int:
        """Deliver until nothing waits or ``seconds`` pass (``notify test``, a detached drain); returns what is left."""
        self.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._wake.set()
            if self.pending() == 0:
                return 0
            time.sleep(0.05)
        return self.pending()

    def send_now(self, notice: Notice, names: list[str]) -> dict[str, Attempt]:
        """One attempt at each of ``names`` at once, no outbox nor retry (``notify test``); each outcome
        journaled and counted. Takes at most the slowest target's ``timeout``."""
        import httpx

        answers: dict[str, Attempt] = {}

        def one(target: Target) -> None:
            with httpx.Client() as client:
                answers[target.name] = post(target, notice, client)

        threads = [threading.Thread(target=one, args=(self.targets[n],), name=f"notify-test-{n}") for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name in names:
            self._journal(self.targets[name], notice, 1, answers[name])
        return {name: answers[name] for name in names}  # in the config's order

    # ------------------------------------------------------------------ the threads
    def _spool_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SCAN_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except OSError as exc:  # a full disk: counted, retried next time
                self._fail_all(f"outbox: {exc}")

    def _fail_all(self, error: str) -> None:
        for said in self._status.targets.values():
            said.last_error = error

    def _worker(self, target: Target) -> None:
        import httpx

        ready = self._ready[target.name]
        with httpx.Client() as client:
            while not self._stop.is_set():
                soonest = self._deliver_due(target, client)
                ready.wait(max(0.01, min(SCAN_SECONDS, soonest - time.time())))
                ready.clear()

    def _deliver_due(self, target: Target, client: Any) -> float:
        """One attempt at each due entry of ``target``; returns when the next one is due."""
        soonest = time.time() + SCAN_SECONDS
        for path in self.outbox.entries(target.name):
            if self._stop.is_set():
                break
            with self.outbox.claim(path) as claim:
                if claim is None:
                    continue
                if claim.entry.next_at > time.time():
                    soonest = min(soonest, claim.entry.next_at)
                    continue
                self._attempt(target, claim, client)
                if not claim.path.exists():
                    continue
                soonest = min(soonest, claim.entry.next_at)
        return soonest

    def _attempt(self, target: Target, claim: Claim, client: Any) -> None:
        entry, said = claim.entry, self._status.targets[target.name]
        attempt = post(target, entry.notice, client)
        entry.attempts += 1
        if attempt.ok or not attempt.retry or entry.attempts >= target.attempts:
            self._final(target, claim, attempt)
            return
        said.retries += 1
        said.last_error = attempt.error
        entry.last_error = attempt.error
        entry.next_at = time.time() + backoff(target, entry.attempts)
        claim.save()

    def _final(self, target: Target, claim: Claim, attempt: Attempt) -> None:
        """Journal the outcome, count it, and remove the entry."""
        self._journal(target, claim.entry.notice, claim.entry.attempts, attempt)
        claim.done()

    def _journal(self, target: Target, notice: Notice, attempts: int, attempt: Attempt) -> None:
        """Journal and count one final outcome (a journal that fails is counted, never raised)."""
        said = self._status.targets[target.name]
        outcome = "delivered" if attempt.ok else "failed"
        try:
            self.journal.append(
                "notification", id=notice.id, target=target.name, notice_event=notice.event, outcome=outcome,
                attempts=attempts, status=attempt.status, error=attempt.error or None,
            )  # fmt: skip
        except Exception as exc:  # a damaged journal must not make it resend forever: counted instead
            self._status.errors += 1
            said.last_error = f"journal: {type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
        if attempt.ok:
            said.delivered += 1
        else:
            said.failed += 1
            said.last_error = attempt.error
