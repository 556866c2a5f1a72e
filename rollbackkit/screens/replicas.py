"""The replicas on a shared store, for people: the ``replicas`` row of the status screen (how many
are alive, who leads the watchdog, the generation published) and one table row per replica.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rollbackkit.ops.replicas import Replicas
from rollbackkit.screens.times import ago, parse
from rollbackkit.serving.replica_status import ReplicaStatus


def replicas_table(listed: list[ReplicaStatus], now: datetime, of: Replicas | None = None) -> Group:
    """One row per replica (:func:`replicas_rows`), then each one's error on its own line."""
    errors = [Text(f"{r.replica}: {r.error}", style="red") for r in listed if r.error]
    return Group(replicas_rows(listed, now, of), *errors)


def replicas_line(listed: Replicas) -> str:
    """``3 alive of 4, watchdog led by web-2 (from the store postgresql://...)``, or why none could be read."""
    where = f"store {listed.store}"
    if listed.error is not None:  # one line: the error names the store (password redacted)
        return f"unknown, the store did not answer: {listed.error}"
    alive = len(listed.alive)
    head = f"{alive} alive" + (f" of {len(listed.replicas)}" if alive != len(listed.replicas) else "")
    lead = f"watchdog led by {listed.leader}" if listed.leader else "no watchdog leader (one takes over within seconds)"
    source = "read from the store: no server answered" if listed.source == "store" else "as the server lists them"
    if not listed.replicas:
        head = "none running"
    said = listed.published
    if said is not None:
        at = parse(said.at) if said.at else None
        moment = f", {at.astimezone().strftime('%H:%M:%S')}" if at is not None else ""
        where = f"generation {said.generation} published ({said.action} by {said.by}{moment}); {where}"
    return f"{head}, {lead}\n{where}, {source}"


def replicas_rows(listed: list[ReplicaStatus], now: datetime, of: Replicas | None = None) -> Table:
    """One row per replica: id, url, what it serves, generation, last switch, heartbeat age, state
    (``leader``, ``STALE``: no heartbeat lately, ``ERROR``: it cannot follow, said below the table,
    ``behind (gen N of M)``: alive but serving an older generation than ``of`` says is published)."""
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for column in ("replica", "url", "serving", "gen", "switched", "beat", "state"):
        table.add_column(column, overflow="fold", no_wrap=column in ("replica", "url", "gen"))
    for r in listed:
        moment = parse(r.last_switch) if r.last_switch else None
        switched = ago(now - moment) if moment is not None else "never"
        beat = f"{r.heartbeat_age_s:.1f} s ago" if r.heartbeat_age_s is not None and r.heartbeat_age_s < 60 else None
        beat = beat or (ago(timedelta(seconds=r.heartbeat_age_s)) if r.heartbeat_age_s is not None else "never")
        state = [*(["leader"] if r.leader else []), *(["STALE"] if r.stale else []), *(["ERROR"] if r.error else [])]
        published = of.published if of is not None else None
        late = of is not None and published is not None and of.behind(r)
        if late and published is not None:
            state.append(f"behind (gen {r.generation if r.generation is not None else '-'} of {published.generation})")
        table.add_row(
            r.replica,
            r.url or "-",
            serving_words(r),
            str(r.generation) if r.generation is not None else "-",
            switched,
            beat,
            Text(", ".join(state) or "ok", style="red" if r.stale or r.error else "yellow" if late else ""),
        )
    return table


def serving_words(replica: ReplicaStatus) -> str:
    """``v1.1.0``, ``v1.1.0, canary v1.2.0 25%``, ``, shadow ...``; ``nothing`` when it serves none."""
    said = []
    for role in ("live", "canary", "shadow"):
        placed = replica.role(role)
        if placed is not None:
            version, percent = placed
            share = f" {percent}%" if percent is not None and role != "live" else ""
            said.append(version if role == "live" else f"{role} {version}{share}")
    return ", ".join(said) or "nothing"
