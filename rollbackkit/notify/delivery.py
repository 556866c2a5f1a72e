"""The :class:`Notifier`: notices spooled to the outbox, then POSTed, signed, by one thread per target.

:meth:`Notifier.send` only appends to a queue (microseconds: a traffic shift never waits); the
spool thread writes each notice to the durable outbox, then each target's worker delivers its
entries: retried with exponential backoff and jitter on a refusal, a timeout or a 5xx, 408, 425
or 429, until ``attempts``; every final outcome is journaled (:func:`journal_outcome`). A worker
blocked on a dead endpoint delays only its own target. Its threads are ``rollbackkit-notify-*``
(serve's shutdown waits for them).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rollbackkit.notify.config import Target, note_config_failure
from rollbackkit.notify.message import Notice
from rollbackkit.notify.outbox import Claim, Entry, Outbox
from rollbackkit.notify.posting import Attempt, backoff, post
from rollbackkit.notify.posting import client as http_client
from rollbackkit.registry.journal import Journal

__all__ = ["Attempt", "Notifier", "NotifyStatus", "TargetStatus", "backoff", "journal_outcome", "post"]
SCAN_SECONDS = 1.0  # how often a worker looks for entries another process left
SPOOL_JOIN_SECONDS = 5.0  # close() waits this long at most for a notice being written to the outbox


@dataclass
class TargetStatus:
    """One target's deliveries by this process, and what waits in the outbox for it."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0
    queued: int = 0
    unreadable: int = 0  # outbox entries that could not be read (kept as .bad files for a person)
    last_error: str | None = None


@dataclass
class NotifyStatus:
    """Every target's :class:`TargetStatus` (``/status``'s ``notifications``)."""

    targets: dict[str, TargetStatus] = field(default_factory=dict)
    errors: int = 0  # journal entries, outbox writes and delivery loops that failed (each also in last_error)
    unsaved: int = 0  # notices kept in memory because the outbox could not be written (retried)
    config_errors: int = 0  # notices not sent because notify: was broken when they happened (journaled)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: totals, then per target (no URL: a Slack URL is itself a secret)."""
        keys = ("delivered", "failed", "queued", "unreadable")
        totals = {k: sum(getattr(t, k) for t in self.targets.values()) for k in keys}
        said = {"errors": self.errors, "unsaved": self.unsaved, "config_errors": self.config_errors}
        return {**totals, **said, "targets": {n: asdict(t) for n, t in self.targets.items()}}


def journal_outcome(journal: Journal, notice: Notice, target: str | None, attempts: int, attempt: Attempt) -> None:
    """Journal one notice's final outcome at ``target`` (``notification``: id, target, event, outcome,
    attempts, HTTP status or error; never a secret, a URL nor a body)."""
    journal.append(
        "notification", id=notice.id, target=target, notice_event=notice.event,
        outcome="delivered" if attempt.ok else "failed", attempts=attempts, status=attempt.status,
        error=attempt.error or None,
    )  # fmt: skip


class Notifier:
    """Delivers notices to a project's targets (one per project per process: :func:`notifier_for`)."""

    def __init__(self, outbox: Outbox, targets: list[Target], journal: Journal) -> None:
        self.outbox = outbox
        self.targets = {t.name: t for t in targets}
        self.journal = journal
        self._status = NotifyStatus({t.name: TargetStatus() for t in targets})
        self._incoming: deque[tuple[Notice, list[str]]] = deque()  # a notice, the targets it has yet to reach
        self._held: dict[tuple[str, str, str], tuple[Notice, float]] = {}  # (target, name, env) -> paused, due
        self._told: set[tuple[str, str, str]] = set()  # (target, name, env) whose paused was sent, not yet resolved
        self._lock = threading.Lock()
        self._counting = threading.Lock()  # the counters: several threads count
        self._flushing = threading.Lock()  # one flush at a time (the spool thread, close, a send once closed)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ready = {name: threading.Event() for name in self.targets}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ the caller's side
    def send(self, notice: Notice, *, deliver: bool = True) -> None:
        """Queue ``notice`` for every target that wants its event (microseconds; never raises).

        Once closed, or with ``deliver=False`` (a server of the project runs elsewhere and delivers
        it, counted in its ``/status``), it writes the notice to the outbox itself (local disk; a
        write that fails keeps it in memory, counted). A ``paused`` notice waits each target's
        ``pause_grace`` first, every time: any later notice of the same environment (or its
        ``resumed``) cancels it. ``resumed`` goes only to the targets its ``paused`` was sent to.
        """
        with self._lock:
            where = (notice.name, notice.env)
            for key in [k for k in self._held if k[1:] == where]:
                del self._held[key]
            told = {k[0] for k in self._told if k[1:] == where}
            self._told -= {(name, *where) for name in told}
            names = [t.name for t in self.targets.values() if t.wants(notice.event)]
            if notice.event == "resumed":  # only a pause someone was paged for is resolved
                names = [name for name in names if name in told]
            if notice.event == "paused":
                due = time.monotonic()
                for name in names:
                    self._held[(name, *where)] = (notice, due + self.targets[name].pause_grace)
                names = []
        if not names:
            return
        self._incoming.append((notice, names))
        if self.closed or not deliver:  # to the outbox now, for whoever delivers it
            try:
                self.flush()
            except OSError as exc:  # kept in memory (unsaved): the next flush, or close, retries it
                self._unsaved(exc)
            return
        self._wake.set()
        self.start()

    def start(self) -> None:
        """Start the spool thread and one worker per target (once): what an earlier process left goes too."""
        with self._lock:
            if self._threads or self._stop.is_set():
                return
            spool = threading.Thread(target=self._spool_loop, name="rollbackkit-notify-spool", daemon=True)
            workers = [
                threading.Thread(target=self._worker, args=(t,), name=f"rollbackkit-notify-{t.name}", daemon=True)
                for t in self.targets.values()
            ]
            self._threads = [spool, *workers]
        for thread in self._threads:
            thread.start()

    def flush(self) -> int:
        """Write the queued notices to the outbox now (local disk only); returns how many.

        A notice leaves memory only once every target's entry is written: when a write fails
        (a full disk) it stays queued, counted in ``unsaved``, and the next flush retries it.
        """
        with self._flushing:
            self._release_held()
            written = 0
            while self._incoming:
                notice, names = self._incoming[0]
                while names:
                    self.outbox.put(Entry(notice, names[0], next_at=time.time()))
                    self._ready[names.pop(0)].set()
                self._incoming.popleft()
                written += 1
        with self._counting:
            self._status.unsaved = 0
        return written

    def _release_held(self) -> None:
        """Queue each held ``paused`` notice whose grace has passed."""
        now = time.monotonic()
        with self._lock:
            due = [(k, n) for k, (n, at) in self._held.items() if at <= now]
            for key, _ in due:
                del self._held[key]
                self._told.add(key)
        for (name, _, _), notice in due:
            self._incoming.append((notice, [name]))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (:func:`~rollbackkit.notify.process.notifier_for` then makes another)."""
        return self._stop.is_set()

    def status(self) -> NotifyStatus:
        """Counters since this process started; ``queued``: entries waiting in the outbox (any process's)."""
        counts, bad = self.outbox.counts(), self.outbox.counts(".bad")
        with self._counting:
            for name, said in self._status.targets.items():
                said.queued, said.unreadable = counts.get(name, 0), bad.get(name, 0)
            targets = {n: TargetStatus(**asdict(t)) for n, t in self._status.targets.items()}
            return NotifyStatus(targets, self._status.errors, self._status.unsaved, note_config_failure.count)

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
        except OSError as exc:  # the outbox cannot be written: what is in memory is lost, counted and journaled
            self._lose_unsaved(f"outbox: {exc}")
        deadline = time.monotonic() + wait
        for thread in self._threads[1:]:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.pending()

    def drain(self, seconds: float, until: Callable[[], bool] | None = None) -> int:
        """Deliver until nothing waits, ``seconds`` pass or ``until()`` (asked each :data:`SCAN_SECONDS`)
        says to stop (a detached drain: a server started); returns what is left."""
        self.start()
        deadline = time.monotonic() + seconds
        asked = time.monotonic()
        while time.monotonic() < deadline:
            self._wake.set()
            if self.pending() == 0:
                return 0
            if until is not None and time.monotonic() - asked >= SCAN_SECONDS:
                asked = time.monotonic()
                if until():
                    break
            time.sleep(0.05)
        return self.pending()

    def send_now(self, notice: Notice, names: list[str]) -> dict[str, Attempt]:
        """One attempt at each of ``names`` at once, no outbox nor retry (``notify test``); each outcome
        journaled and counted. Takes at most the slowest target's ``timeout``."""
        answers: dict[str, Attempt] = {}

        def one(target: Target) -> None:
            with http_client() as client:
                answers[target.name] = post(target, notice, client)  # never raises

        threads = [
            threading.Thread(target=one, args=(self.targets[n],), name=f"rollbackkit-notify-test-{n}", daemon=True)
            for n in names
        ]
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
            except OSError as exc:  # a full disk: the notices stay in memory, counted, retried next scan
                self._unsaved(exc)

    def _unsaved(self, exc: OSError) -> None:
        """The outbox could not be written: the notices stay in memory, counted (``unsaved``, ``errors``)."""
        with self._counting:
            self._status.errors += 1
            self._status.unsaved = len(self._incoming)
        self._fail_all(f"outbox: {exc}")

    def _fail_all(self, error: str) -> None:
        with self._counting:
            for said in self._status.targets.values():
                said.last_error = error

    def _lose_unsaved(self, error: str) -> None:
        """At close, with an outbox that cannot be written: each notice still in memory is a final failure."""
        self._fail_all(error)
        while self._incoming:
            notice, names = self._incoming.popleft()
            for name in names:
                self._journal(self.targets[name], notice, 0, Attempt(False, False, error=error[:300]))
        with self._counting:
            self._status.unsaved = 0

    def _worker(self, target: Target) -> None:
        ready = self._ready[target.name]
        with http_client() as client:
            while not self._stop.is_set():
                try:
                    soonest = self._deliver_due(target, client)
                except Exception as exc:  # an outbox that cannot be read or saved: counted, tried again
                    with self._counting:
                        self._status.errors += 1
                        self._status.targets[target.name].last_error = f"{type(exc).__name__}: {exc}"[:300]
                    soonest = time.time() + SCAN_SECONDS
                ready.wait(max(0.01, min(SCAN_SECONDS, soonest - time.time())))
                ready.clear()

    def _deliver_due(self, target: Target, client: Any) -> float:
        """Deliver ``target``'s entries in the order they happened; returns when to look again.

        The oldest entry goes first: while it waits out a backoff (or another process holds it)
        the later ones wait too, so a receiver never gets a rollback before the canary it undoes.
        """
        for path in self.outbox.entries(target.name):
            if self._stop.is_set():
                break
            with self.outbox.claim(path) as claim:
                if claim is None:
                    if path.exists():  # another process is delivering it: after it
                        break
                    continue  # delivered meanwhile, or unreadable (kept as .bad, counted)
                if claim.entry.next_at > time.time():
                    return min(claim.entry.next_at, time.time() + SCAN_SECONDS)
                self._attempt(target, claim, client)
                if claim.path.exists():
                    return claim.entry.next_at
        return time.time() + SCAN_SECONDS

    def _attempt(self, target: Target, claim: Claim, client: Any) -> None:
        entry, said = claim.entry, self._status.targets[target.name]
        attempt = post(target, entry.notice, client)
        entry.attempts += 1
        if attempt.ok or not attempt.retry or entry.attempts >= target.attempts:
            self._final(target, claim, attempt)
            return
        with self._counting:
            said.retries += 1
            said.last_error = attempt.error
        entry.last_error = attempt.error
        entry.next_at = time.time() + backoff(target, entry.attempts)
        claim.save()

    def _final(self, target: Target, claim: Claim, attempt: Attempt) -> None:
        """Journal the outcome, remove the entry, then count it (``queued`` never counts a finished one)."""
        self._journal(target, claim.entry.notice, claim.entry.attempts, attempt, then=claim.done)

    def _journal(
        self, target: Target, notice: Notice, attempts: int, attempt: Attempt, then: Callable[[], None] | None = None
    ) -> None:
        """Journal one final outcome, run ``then``, and count it (a journal that fails is counted, never raised)."""
        said = self._status.targets[target.name]
        try:
            journal_outcome(self.journal, notice, target.name, attempts, attempt)
        except Exception as exc:  # a damaged journal must not make it resend forever: counted instead
            with self._counting:
                self._status.errors += 1
                said.last_error = f"journal: {type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
        if then is not None:
            then()
        with self._counting:
            if attempt.ok:
                said.delivered += 1
            else:
                said.failed += 1
                said.last_error = attempt.error
