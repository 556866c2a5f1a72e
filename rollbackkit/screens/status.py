"""The ``rollbackkit status`` screen: one environment at a glance, at 80x24 or wider.

Renders an :class:`~rollbackkit.ops.overview.Overview` as a two-column grid (a label, then
words that wrap to the terminal's width and are never cut); times read as local time, UTC and
"12 min ago" (:mod:`rollbackkit.screens.times`), replicas as :mod:`rollbackkit.screens.replicas`
lays them out. No logic beyond formatting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from rollbackkit.analysis.gates import GateResult
from rollbackkit.ops.overview import Behind, Departure, Overview
from rollbackkit.registry.assignments import Assignment
from rollbackkit.screens.replicas import replicas_line, replicas_table
from rollbackkit.screens.times import ago, parse, span, when
from rollbackkit.serving.rollout import Rollout
from rollbackkit.serving.status import GateStatus, LogStatus, SlotStatus

LABEL = 8
"""The widest label (``previous``, ``runtime``, ``behind``); the values get the width less this and the gap of 2."""
_NOTIFY_STYLE = {"ok": "", "waiting": "yellow", "failing": "red"}
"""The ``notify`` row's colour by :attr:`~rollbackkit.serving.notify_health.NotifyHealth.level`."""
REASON_LINES = 2
"""A reason gets at most this many lines after the line it starts on; the history has it whole."""


def render(view: Overview, now: datetime | None = None) -> StatusScreen:
    """The status screen of ``view`` (``now`` for the relative times; default: the clock)."""
    return StatusScreen(view, now or datetime.now(UTC))


@dataclass(frozen=True)
class StatusScreen:
    """The status screen, laid out at the width rich prints it at (reasons cut to fit 24 lines)."""

    view: Overview
    now: datetime

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The heading and the grid, the values wrapped to what is left of ``options.max_width``."""
        yield _screen(self.view, self.now, _Fitter(console, max(20, options.max_width - LABEL - 2)))


class _Fitter:
    """Cuts a reason to its lines at the value column's width, at a word, ending with "…"."""

    def __init__(self, console: Console, width: int) -> None:
        self.console, self.width, self.cut = console, width, False

    def why(self, a: Assignment) -> str:
        """:func:`_why` of ``a`` on at most ``1 + REASON_LINES`` lines."""
        lines = [line.plain.rstrip() for line in Text(_why(a)).wrap(self.console, self.width, overflow="fold")]
        if len(lines) <= 1 + REASON_LINES:
            return "\n".join(lines)
        self.cut = True
        kept = lines[: 1 + REASON_LINES]
        last = kept[-1]
        while last and cell_len(last) + 1 > self.width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        kept[-1] = last + "…"
        return "\n".join(kept)

    def behind(self, lag: Behind) -> str:
        """``MLflow alias champion not moved (1 failure): <reason>`` on at most two lines, then the retry."""
        count = f" ({lag.failures} failure{'' if lag.failures == 1 else 's'})" if lag.failures else ""
        text = f"{lag.what}{count}: {lag.reason}" if lag.reason else f"{lag.what}{count}"
        lines = [line.plain.rstrip() for line in Text(text).wrap(self.console, self.width, overflow="fold")]
        if len(lines) > 2:
            last = lines[1]
            while last and cell_len(last) + 1 > self.width:
                last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
            lines = [lines[0], last + "…"]
        return "\n".join([*lines, *([f"retry: {lag.retry}"] if lag.retry else [])])

    def whole(self, view: Overview) -> Iterator[str]:
        """Where the whole reason is, once, when one was cut."""
        if self.cut:
            self.cut = False
            yield f"whole reason: rollbackkit history {view.name} --env {view.env}"


def _screen(view: Overview, now: datetime, fit: _Fitter) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True, min_width=LABEL)
    grid.add_column(overflow="fold")
    live = _live(view, now, fit)
    live = "\n".join([live, *fit.whole(view)]) if view.previous is None else live
    rows: list[tuple[str, str]] = [
        ("live", live),
        ("previous", "\n".join([_previous(view.previous, now, fit), *fit.whole(view)])),
        ("canary", _canary(view, now)),
        *([("shadow", _shadow(view, now))] if view.shadow is not None or view.shadow_percent is not None else []),
        *([("rollout", _rollout(view))] if _moving(view.rollout) else []),
        ("gates", _gates(view)),
        ("log", _log(view.log) if view.server else "written by a running server only"),
        ("server", view.server or "none"),
    ]
    notified = view.status.notifications if view.status is not None else None
    if notified is not None:  # a server with notify: targets says how its deliveries fare
        rows.append(("notify", notified.words()))
    differs = [f"{slot.version}: {line}" for slot in _slots(view) for line in slot.runtime or []]
    if differs:  # a major-version difference (or a missing library) the server found at load
        rows.insert(1, ("runtime", "\n".join(differs)))
    if view.behind is not None:  # an alias consumers still load the old version through
        rows.insert(1, ("behind", fit.behind(view.behind)))
    if view.replicas is not None:
        rows.append(("replicas", replicas_line(view.replicas)))
    if view.unfetched is not None:  # another host's tags may be missing from "previous" and history
        rows.append(("git", view.unfetched))
    if view.server is None:
        rows.append(("next", f"rollbackkit serve {view.name} --env {view.env}"))
    for label, value in rows:
        style = _NOTIFY_STYLE[notified.level] if label == "notify" and notified is not None else ""
        grid.add_row(label, Text(value, style=style))
    listed = view.replicas.replicas if view.replicas is not None else []
    table = [replicas_table(listed, now, view.replicas)] if listed and view.replicas is not None else []
    return Group(Text(_heading(view), style="bold"), grid, *table)


def _slots(view: Overview) -> list[SlotStatus]:
    """The server's live and canary slots (none without a server)."""
    status = view.status
    return [s for s in (status.live, status.canary) if s is not None] if status is not None else []


def _heading(view: Overview) -> str:
    if view.server is not None:
        return f"{view.name} in {view.env}, from its server"
    down = view.replicas.error if view.replicas is not None else None
    if view.server_error is not None and down is not None and down == view.server_error:
        return f"no server found for {view.env} (the store is down: see replicas); from the history:"
    if view.server_error is not None:
        return f"the server for {view.env} did not answer ({view.server_error}); from the history:"
    return f"no server running for {view.env}; from the history ({view.assignments} assignments):"


def _why(a: Assignment) -> str:
    """``rollback by Ada Oncall, incident INC-7: the tail segment degraded``."""
    head = f"{a.action}{' (forced)' if a.forced else ''} by {a.actor or 'unknown'}"
    if a.incident:
        head += f", incident {a.incident}"
    return f"{head}: {a.reason}" if a.reason else head


def _live(view: Overview, now: datetime, fit: _Fitter) -> str:
    if view.live is None:
        return f"nothing serves {view.name} in {view.env}"
    if view.live_since is None:
        return view.live
    since = f"{view.live} since {when(view.live_since.time, now)}"
    told = view.previous is not None and view.previous.by.tag == view.live_since.tag  # the row below says why
    return since if told else f"{since}\n{fit.why(view.live_since)}"


def _previous(gone: Departure | None, now: datetime, fit: _Fitter) -> str:
    if gone is None:
        return "none"
    role = f"canary at {gone.percent}%" if gone.role == "canary" and gone.percent else gone.role
    left = parse(gone.by.time)
    began = parse(gone.served_since) if gone.served_since is not None else None
    if left is not None and began is not None:
        role += f" for {span(left - began)}"
    gone_when = f" left {ago(now - left)}" if left is not None else f" left at {gone.by.time}"
    return f"{gone.version} ({role}){gone_when}\n{fit.why(gone.by)}"


def _canary(view: Overview, now: datetime) -> str:
    if view.canary_percent is None and view.canary is None:
        return "none"
    if view.canary is None:
        return f"takes {view.canary_percent}% of traffic"
    share = f"{view.canary.version} at {view.canary_percent}% of traffic"
    return f"{share} since {when(view.canary.time, now)}"


def _shadow(view: Overview, now: datetime) -> str:
    """``v1.1.0 scores a mirror of 50% of requests since ...`` then the mirror's counters."""
    share = f"a mirror of {view.shadow_percent}% of requests" if view.shadow_percent is not None else "a mirror"
    head = f"{view.shadow.version if view.shadow else 'a version'} scores {share}, answers never returned"
    if view.server is None:  # the history says a shadow runs; a server resumes it when it starts
        head = f"{view.shadow.version if view.shadow else 'a version'} scores {share} once a server runs"
    if view.shadow is not None:
        head += f"\nsince {when(view.shadow.time, now)}"
    counted = view.mirror
    if counted is not None:
        head += f"\n{counted.mirrored} requests mirrored, {counted.dropped} dropped, {counted.failed} failed"
        head += f" (last: {counted.last_error})" if counted.failed and counted.last_error else ""
    return head


def _moving(rollout: Rollout | None) -> bool:
    """Whether the rollout row says anything the other rows do not (a step, a bake, a pause)."""
    return rollout is not None and (bool(rollout.steps) or rollout.state != "holding" or rollout.role != "live")


def _rollout(view: Overview) -> str:
    """``canary 25% (step 2 of 4): baking 3.2s of 10m`` (or ``paused: <why>``), then what comes next."""
    rollout = view.rollout
    if rollout is None:
        return "none"
    following = rollout.next_percent
    if following is not None and rollout.state != "paused":
        step = "the promotion" if following == 100 else f"{following}% of traffic"
        return f"{rollout.words()}\nnext: {step} once the gates pass for the bake"
    if rollout.role == "shadow" and rollout.state == "holding":
        command = f"rollbackkit promote {view.name} --env {view.env} --from-shadow [--canary PCT]"
        return f"{rollout.words()}\nnext: {command}"
    return rollout.words()


def _gates(view: Overview) -> str:
    if view.gates is not None:
        return _report(view.gates)
    if view.candidate_gates is not None:  # the canary or shadow under evaluation
        return _report(view.candidate_gates)
    if view.live is None:
        return "nothing to evaluate"
    if view.server is None:
        return f"no evaluation of {view.live} (a running server evaluates them)"
    other = view.other_gates
    elsewhere = f"; the last report is of {other.version}: {other.decision}" if other and other.version else ""
    return f"no evaluation of {view.live} yet{elsewhere}"


def _report(report: GateStatus) -> str:
    """``churn@v1.1.0: rollback over 400 rows`` then ``failed: score-drift psi 0.912 > 0.2``."""
    head = f"{report.version}: {report.decision}" + (f" over {report.n} rows" if report.n is not None else "")
    if report.reason:
        head += f" ({report.reason})"
    failed = report.failed
    waiting = [g for g in report.gates or [] if g.status in ("inconclusive", "insufficient")]
    skipped = [g for g in report.gates or [] if g.status == "skipped"]
    if failed:
        head += "\nfailed: " + "; ".join(g.words() for g in failed)
    if waiting:
        head += "\ninconclusive: " + _waiting(waiting)
    if not failed and not waiting and report.gates:
        passed = [g.name for g in report.gates if g.status == "pass"]
        if passed:
            head += f"\n{len(passed)} gate{' passes' if len(passed) == 1 else 's pass'}: " + ", ".join(passed)
    if skipped:
        head += "\nskipped: " + ", ".join(g.name for g in skipped) + _skip_reason(skipped)
    if report.paused and (report.rollout is None or report.rollout.paused != report.paused):
        head += f"\npaused: {report.paused}"
    if report.rollback:
        head += f"\nno rollback: {report.rollback.removeprefix('none: ')}"
    if report.promoted:
        head += f"\npromoted: {report.promoted}"
    if report.watchdog_errors:
        head += f"\nwatchdog errors: {report.watchdog_errors} (last: {report.last_watchdog_error})"
    return head


def _waiting(gates: list[GateResult]) -> str:
    """Each inconclusive gate in words; ``errors, latency-p99 (no traffic)`` when none was
    measured and all say the same."""
    reasons = {str(g.evidence.get("reason", "")) for g in gates if g.observed is None}
    if len(reasons) == 1 and all(g.observed is None for g in gates) and "" not in reasons:
        return ", ".join(g.name for g in gates) + f" ({reasons.pop()})"
    return "; ".join(g.words() for g in gates)


def _skip_reason(skipped: list[GateResult]) -> str:
    """`` (no live version serves beside it)`` when every skipped gate says the same."""
    reasons = {str(g.evidence.get("reason", "")) for g in skipped}
    return f" ({reasons.pop()})" if len(reasons) == 1 and "" not in reasons else ""


def _log(log: LogStatus | None) -> str:
    if log is None:
        return "not written (serve --no-log)"
    writer = "" if log.alive is None else ("writer alive, " if log.alive else "writer DOWN, ")
    parts = [
        f"{log.restarts} restarts" if log.restarts is not None else "",
        f"{log.dropped} dropped" if log.dropped is not None else "",
        f"{log.write_errors} write errors",
        f"{log.unwritten} unwritten",
        f"{log.sink_errors} sink errors" if log.sink_errors else "",
    ]
    if log.store is not None:  # a shared store's writer: rows wait in memory while it is away
        writer = "store reachable, " if log.reachable is not False else "store UNREACHABLE, "
        held = f" ({_megabytes(log.buffered_bytes)})" if log.buffered_bytes else ""
        parts[:1] = [f"{log.buffered or 0} buffered{held}", f"{log.reconnects or 0} reconnects"]
    text = writer + ", ".join(p for p in parts if p)
    return text + (f"\nlast write error: {log.last_write_error}" if log.last_write_error else "")


def _megabytes(size: int) -> str:
    """``3.2 MB`` (``< 0.1 MB`` for a few rows: never a misleading ``0.0``)."""
    mb = size / 2**20
    return f"{mb:.1f} MB" if mb >= 0.1 else "< 0.1 MB"
