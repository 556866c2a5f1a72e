"""What deploy, promote, rollback and serve say they did: from -> to, the share, the preflight
verdict, the shift time, the tag recorded and the via; a dry run's plan; a runbook's record.

Each function prints one typed result (``ops``/``serving``) at the console's width, as
``label  value`` lines under a one-line headline, so a reader at 80 columns sees what
happened without scrolling. Paths are printed whole (never folded), so they can be copied.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rollbackkit.analysis.durations import format_duration

if TYPE_CHECKING:
    from rollbackkit.ops.assignment_results import AssignmentResult, Cancelled, Preflight
    from rollbackkit.ops.convergence import Convergence, GitRemote
    from rollbackkit.ops.plan_results import RollbackPlan
    from rollbackkit.ops.runbooks import RunbookResult
    from rollbackkit.registry.assignments import Assignment
    from rollbackkit.registry.serving_state import Serving
    from rollbackkit.serving.status import TrafficEvent

LABEL_WIDTH = 10


def change(previous: str | None, version: str) -> str:
    """``v1.1.0 -> v1.0.0`` (``nothing -> v1.0.0`` for a first deploy)."""
    return f"{previous or 'nothing'} -> {version}"


def milliseconds(ms: float) -> str:
    """``74.2 ms``, ``0.41 ms``."""
    return f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def share(version: str, previous: str | None, percent: int | None) -> str:
    """Who takes the traffic: ``v1.1.0 takes 30% of traffic, v1.0.0 the rest`` for a canary."""
    if percent is not None and percent < 100 and previous is not None:
        return f"{version} takes {percent}% of traffic, {previous} the rest"
    return f"{version} takes all traffic"


def mirror(a: Assignment) -> str:
    """``v1.1.0 scores a mirror of 50% of requests; its answers are logged, never returned``."""
    share = f"{a.shadow_percent}% of requests" if a.shadow_percent is not None else "requests"
    return f"{a.version} scores a mirror of {share}; its answers are logged, never returned"


def steps(a: Assignment) -> str:
    """``5% -> 25% -> 50% -> 100%, each once its gates pass for 10m; now step 1 of 4``."""
    bake = f"for {format_duration(a.bake_s)}" if a.bake_s is not None else "for the server's bake"
    at = f"; now step {a.step[0]} of {a.step[1]}" if a.step is not None else ""
    return " -> ".join(f"{p}%" for p in a.steps) + f", each once its gates pass {bake}{at}"


def cancelled_row(stopped: Cancelled) -> str:
    """``the shadow v1.4.0: its mirror stops`` / ``the canary v1.1.0: its share goes back``."""
    if stopped.role == "shadow":
        return f"the shadow {stopped.version}: its mirror stops (its shadow rows stay, never in production)"
    return f"the canary {stopped.version}: it takes no more traffic"


def preflight_text(preflight: Preflight, kept: str | None = None) -> str:
    """``compatible, 0 findings`` (``skipped`` for an automatic rollback, or one that keeps ``kept`` live)."""
    if preflight.verdict == "skipped":
        return (
            f"skipped ({kept} already serves live traffic)"
            if kept
            else "skipped (an automatic rollback moves traffic at once)"
        )
    n = len(preflight.findings)
    return f"{preflight.verdict}, {n} finding{'' if n == 1 else 's'}"


def unchecked_contract(preflight: Preflight) -> list[tuple[str, str]]:
    """A ``contract`` row when the output contract was not checked (the leaving version unreadable here)."""
    from rollbackkit.registry.checks import UNCHECKED

    return [("contract", f.detail) for f in preflight.findings if f.kind == UNCHECKED]


def _fields(console: Console, rows: list[tuple[str, str]]) -> None:
    """``label  value`` lines; a long value wraps under itself, never under the label."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, min_width=LABEL_WIDTH)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(Text(label, style="dim"), Text(value))
    console.print(grid)


def _whole(console: Console, label: str, value: str) -> None:
    """A ``label  value`` line never wrapped nor cut (a path to copy)."""
    console.print(Text.assemble((label.ljust(LABEL_WIDTH + 2), "dim"), value), soft_wrap=True, highlight=False)


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter to read and copy)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def assignment(console: Console, result: AssignmentResult, verb: str) -> None:
    """``Rolled back churn in prod: v1.1.0 -> v1.0.0 (rollback)``, then traffic, preflight,
    shift time and via, and the tag recorded with its reason and incident."""
    a = result.assignment
    moved = f"{a.version} beside {result.previous or 'nothing'}" if a.action == "shadow" else None
    stopped = result.cancelled
    if stopped is not None and stopped.kept:  # nothing moved: "v1.3.0 -> v1.3.0" would say nothing
        moved = stopped.line(a.version)
    reach = result.replicas
    partly = not result.converged
    where = f" {a.name} in {a.env}"
    if reach is not None and not reach.converged:  # "Rolled back churn in prod on 2 of 3 replicas": never green
        where += f" on {reach.reached} of {reach.total} replicas" if reach.reached else " on this replica only"
    elif partly:  # every replica switched, then another replica's change replaced it
        where += ", then superseded"
    headline = Text.assemble(
        (verb, "bold yellow" if partly else "bold green"),
        f"{where}: ",
        (moved or change(result.previous, a.version), "bold"),
        f" ({a.action})",
    )
    console.print(headline, highlight=False)
    percent = a.canary_percent
    if percent is None and result.status is not None and result.status.canary is not None:
        percent = result.status.canary.percent if a.action == "canary" else None
    rows = [("traffic", share(a.version, result.previous, percent if a.action == "canary" else None))]
    if a.action == "shadow":
        rows = [("traffic", f"{result.previous or 'nothing'} keeps all traffic"), ("shadow", mirror(a))]
    if stopped is not None:
        rows.append(("cancelled", cancelled_row(stopped)))
    if a.steps:
        rows.append(("steps", steps(a)))
    if result.preflight is not None:
        forced = " (forced: recorded)" if a.forced else ""
        kept = a.version if stopped is not None and stopped.kept else None
        rows.append(("preflight", preflight_text(result.preflight, kept) + forced))
        rows += unchecked_contract(result.preflight)
    if result.shift_ms is not None:
        rows.append(("shift", f"{milliseconds(result.shift_ms)} via {result.via}"))
    elif result.restored is not None:
        rows.append(("via", f"workspace (no server): restored into {_shown_path(result.restored)}"))
    else:
        rows.append(("via", result.via))
    recorded = a.tag + (f" by {a.actor}" if a.actor else "")
    rows.append(("recorded", recorded))
    if a.reason:
        rows.append(("reason", a.reason))
    if a.incident:
        rows.append(("incident", a.incident))
    _fields(console, rows)
    if reach is not None:
        replicas(console, reach, a.name, a.env, a.version, a.action)
    if result.git_remote is not None and result.git_remote.error:
        console.print(Text(unshared(result.git_remote, a.tag), style="yellow"), highlight=False)


def unshared(remote: GitRemote, tag: str) -> str:
    """``churn#prod#7 not pushed to origin: ... run: git push origin --tags``: the change stands,
    but the hosts with their own clone do not see its tag until it is pushed."""
    said = remote.error or ""
    said = said if tag in said else f"{tag}: {said}"
    origin = remote.remote
    return said if "run:" in said else f"{said} (run: git fetch {origin} --tags; git push {origin} --tags)"


def replicas(console: Console, reach: Convergence, name: str, env: str, version: str, action: str = "") -> None:
    """``3 of 3 replicas serve v1.0.0 (generation 42, 14 ms)`` (dim), or one line per replica
    that does not serve it: what it still serves and why (red: it cannot, yellow: not yet).
    When another replica published since: ``..., then superseded by deploy (generation 43) by r2:
    the replicas serve v1.2.0 live`` (yellow when that is not this operation's version)."""
    waited = milliseconds(reach.waited_ms) if reach.waited_ms < 1000 else f"{reach.waited_ms / 1000:.1f} s"
    said = f"{reach.reached} of {reach.total} replicas serve {version} (generation {reach.generation}, {waited})"
    look = f"rollbackkit status {name} --env {env}"
    later, held = reach.superseded_by, reach.holds(action, version)
    if later is not None:
        said = (
            f"{reach.reached} of {reach.total} replicas reached generation {reach.generation} ({waited}), "
            f"then superseded by {later.action} (generation {later.generation}) by {later.by}: "
            f"the replicas serve {reach.serving_now()}" + ("" if held else f" (check: {look})")
        )
    if reach.converged:
        console.print(Text(said, style="dim" if held else "yellow"), highlight=False)
        return
    if not reach.replicas:  # nothing heard from the others: not published, or the store went away
        for why in reach.lagging.values():
            said = f"{why}; the other replicas may still serve what they served (check: {look})"
            console.print(Text(said, style="red"), highlight=False)
        return
    console.print(Text(said, style="yellow"), highlight=False)
    for replica, why in reach.lagging.items():
        serves = reach.serves(replica)
        failed = any(r.replica == replica and r.error for r in reach.replicas)
        where = f"{replica} still serves {serves}" if serves and serves != version else f"{replica} has not switched"
        then = f"fix it, then: {look}" if failed else f"it may still catch up: {look}"
        console.print(Text(f"{where}: {why} ({then})", style="red" if failed else "yellow"), highlight=False)


def plan(console: Console, planned: RollbackPlan, *, features: bool) -> None:
    """A dry run's plan: what would shift, the target's preflight, the rows per version that
    would be quarantined and backfilled, and the command that does it."""
    console.print(Text.assemble(("Dry run", "bold yellow"), ": nothing changed. The rollback would do this:"))
    checked = "" if features else " (schema checks only; --features FILE checks live features)"
    stopped, shift = planned.cancelled, change(planned.previous, planned.target)
    if stopped is not None and stopped.kept:  # nothing would move but the canary or shadow stopping
        shift = stopped.line(planned.target).replace("Cancelled", "would cancel", 1)
        shift = shift.replace("keeps", "would keep").replace("takes", "would take")
    kept = stopped is not None and stopped.kept
    takes = "keep" if kept else "take"
    checked = "" if planned.preflight.verdict == "skipped" else checked
    rows = [
        ("shift", f"{planned.name} in {planned.env}: {shift}"),
        ("traffic", f"{planned.target} would {takes} all traffic, via {planned.via}"),
        ("preflight", preflight_text(planned.preflight, planned.target if kept else None) + checked),
        *unchecked_contract(planned.preflight),
    ]
    if stopped is not None:
        rows.insert(2, ("cancels", cancelled_row(stopped)))
    for r in planned.rows:
        if not r.logged:
            rows.append((f"{r.version} rows", "no prediction log: none to quarantine or backfill"))
            continue
        done = f", {r.already_backfilled} backfilled before" if r.already_backfilled else ""
        rows.append(
            (
                f"{r.version} rows",
                f"{r.rows} logged: {r.quarantine} would be quarantined, {r.backfill} backfilled "
                f"(by --runbook or rollbackkit backfill){done}",
            )
        )
    if planned.via == "workspace" and any(r.logged for r in planned.rows):
        rows.append(("note", "no server: the rows are quarantined only when a server shifts the traffic"))
    _fields(console, rows)


def runbook(console: Console, result: RunbookResult, root: Path) -> None:
    """Where the runbook's record is, its verdict, and what it repaired."""
    from rollbackkit.ops.runbook_record import display_path

    where = display_path(result.notebook, root)
    style = "bold green" if result.status == "ok" else "bold red"
    took = f" in {result.seconds:g} s" if result.seconds is not None else ""  # the whole run, as its record says
    console.print(
        Text.assemble(("Runbook", style), f" rollback: verdict {result.verdict} ({result.status}){took}"),
        highlight=False,
    )
    _whole(console, "record", where)
    rows = []
    side = result.results.get("side_effects")
    if isinstance(side, dict) and isinstance(side.get("backfill"), dict):
        rows.append(("backfill", f"{side['backfill'].get('rescored', 0)} rows re-scored"))
    elif isinstance(side, dict) and side.get("note"):
        rows.append(("backfill", str(side["note"])))
    if result.error:
        rows.append(("error", result.error))
    if rows:
        _fields(console, rows)
    command = f"rollbackkit runbook show {where}"
    if LABEL_WIDTH + 2 + len(command) > console.width:
        command = "rollbackkit runbook show RECORD (the path above)"
    _whole(console, "read it", command)


def event(console: Console, happened: TrafficEvent) -> None:
    """One line per traffic change or gate breach while ``serve`` runs (local time first)."""
    now = datetime.now().astimezone().strftime("%H:%M:%S")
    where = f"{happened.name} {happened.env}"
    if happened.kind == "gate-breach":
        line = (
            f"{now} gate breach on {happened.version} in {where}: {happened.gates}; traffic stays ({happened.reason})"
        )
        console.print(Text(line, style="bold red"), highlight=False, soft_wrap=True)
        return
    if happened.kind == "resumed":  # a told pause ended: the next gate line says how it goes
        return
    if happened.kind in ("gate-failed", "paused"):  # told once each (notify: sends them too)
        said = f"gates failed: {happened.gates}" if happened.kind == "gate-failed" else f"paused: {happened.reason}"
        line = f"{now} {where}: {happened.version} {said}"
        style = "bold red" if happened.kind == "gate-failed" else "yellow"
        console.print(Text(line, style=style), highlight=False, soft_wrap=True)
        return
    if happened.kind == "not-everywhere":  # a shift some replicas have not made (yet)
        line = f"{now} {where}: {happened.version} ({happened.action}) NOT on every replica yet: {happened.reason}"
        console.print(Text(line, style="bold yellow"), highlight=False, soft_wrap=True)
        return
    what = happened.action
    if happened.action == "canary" and happened.canary_percent is not None:
        what = f"canary {happened.canary_percent}%"
    if happened.gates:
        what += f": {happened.gates}"
    shift = f", {milliseconds(happened.shift_ms)}" if happened.shift_ms is not None else ""
    moved = change(happened.previous, happened.version)
    if happened.action == "shadow":  # nothing moved: the version scores a mirror beside live
        moved = f"{happened.version} beside {happened.previous or 'nothing'}"
    line = f"{now} {where}: {moved} ({what}) {happened.tag}{shift}"
    style = "bold red" if happened.action == "auto-rollback" else ""
    console.print(Text(line, style=style), highlight=False, soft_wrap=True)


def resumed(state: Serving, bake_seconds: float) -> str | None:
    """What ``serve`` takes up again from the history after a restart, or None (nothing running):
    ``resumed canary v1.3.0 at 5% (step 1 of 2, bake 5s)``, ``resumed shadow v1.4.0 mirroring 50%
    of requests`` (``bake_seconds``: the server's bake, for a plan without its own)."""
    if state.canary is not None:
        a = state.canary
        at = f"step {a.step[0]} of {a.step[1]}, " if a.step is not None else ""
        bake = f" ({at}bake {format_duration(a.bake_s if a.bake_s is not None else bake_seconds)})" if a.steps else ""
        return f"resumed canary {a.version} at {a.canary_percent}%{bake} beside {state.version or 'nothing'}"
    if state.shadow is not None:
        share = f"{state.shadow.shadow_percent}% of requests" if state.shadow.shadow_percent is not None else "requests"
        return f"resumed shadow {state.shadow.version} mirroring {share} beside {state.version or 'nothing'}"
    return None


def runbook_done(console: Console, result: RunbookResult, root: Path) -> None:
    """One line when the runbook after an automatic rollback has finished (``serve``)."""
    from rollbackkit.ops.runbook_record import display_path

    now = datetime.now().astimezone().strftime("%H:%M:%S")
    console.print(
        f"{now} rollback runbook: verdict {result.verdict} ({result.status}), "
        f"record {display_path(result.notebook, root)}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
