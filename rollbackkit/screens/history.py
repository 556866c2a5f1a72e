"""The ``history`` screen: which version served when, and why, readable at 80 columns.

Times are local to the minute (UTC in ``--wide``), actions whole, reasons in plain words
(old gate summaries with dict reprs included, :func:`rollbackkit.analysis.gates.plain_words`),
and ``*`` marks the assignment that serves now (the registry's one rule,
:meth:`rollbackkit.registry.assignments.Deployments.state`); ``~`` a running canary, ``=`` a
running shadow. Each step of a stepped rollout is a row (``canary 25% (step 2 of 4, bake 10m)``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rollbackkit.analysis.durations import format_duration
from rollbackkit.analysis.gates import plain_words
from rollbackkit.screens import times
from rollbackkit.screens.tables import Column, show, table

if TYPE_CHECKING:
    from rollbackkit.registry.assignments import Assignment, Serving

LIVE = "*"
CANARY = "~"
SHADOW = "="


def marker(a: Assignment, now: Serving | None) -> str:
    """``*`` on the assignment that serves now, ``~`` on a running canary's, ``=`` on a running
    shadow's, else empty."""
    if now is not None and now.live is not None and a.tag == now.live.tag:
        return LIVE
    if now is not None and now.canary is not None and a.tag == now.canary.tag:
        return CANARY
    if now is not None and now.shadow is not None and a.tag == now.shadow.tag:
        return SHADOW
    return ""


def action(a: Assignment, *, lines: bool = False) -> str:
    """The action, whole, with its share and its place in a stepped rollout: ``canary 10%``,
    ``shadow 50%``, ``canary 25% (step 2 of 4, bake 10m)``, ``promote (step 4 of 4)``.

    ``lines``: the step on a line of its own, so a narrow column stays narrow.
    """
    head = a.action
    if a.action == "canary" and a.canary_percent is not None:
        head = f"{a.action} {a.canary_percent}%"
    elif a.action == "shadow" and a.shadow_percent is not None:
        head = f"{a.action} {a.shadow_percent}%"
    step = a.step or ((len(a.steps), len(a.steps)) if a.action == "promote" and a.steps else None)
    if step is None:
        return head
    bake = f", bake {format_duration(a.bake_s)}" if a.bake_s is not None and a.action == "canary" else ""
    sep = "\n" if lines else " "
    return f"{head}{sep}(step {step[0]} of {step[1]}{bake})"


def _with_plan(a: Assignment, before: Serving | None) -> Assignment:
    """A promotion with the plan of the stepped canary it ended (so it reads ``promote (step 4 of 4)``)."""
    canary = before.canary if before is not None else None
    if a.action != "promote" or a.steps or canary is None or not canary.steps or canary.version != a.version:
        return a
    return replace(a, steps=canary.steps, bake_s=canary.bake_s)


_GATE_HEAD = re.compile(r"^(gate failed: (?:rollback|warn):) ")


def reason(a: Assignment, *, incident: bool = True, lines: bool = False) -> str:
    """The reason in plain words, with the incident and a forced preflight when there are.

    ``lines``: one clause per line (each failed gate, the incident), so a narrow column
    wraps between clauses rather than inside them.
    """
    text = plain_words(a.reason)
    extra = ([f"incident {a.incident}"] if incident and a.incident else []) + (["preflight forced"] if a.forced else [])
    text = "; ".join(p for p in (text, *extra) if p)
    if not lines:
        return text
    return _GATE_HEAD.sub(r"\1\n", text).replace("; ", "\n")


def render(console: Any, name: str, env: str, states: Sequence[tuple[Assignment, Serving]], *, wide: bool) -> None:
    """Print the history of ``name`` in ``env`` (``states``: each assignment with the state after it).

    Args:
        console: The rich console (its width decides the columns).
        name: Bundle name.
        env: Environment.
        states: :meth:`~rollbackkit.registry.assignments.Deployments.states`, oldest first.
        wide: Every field (local and UTC time, tag, incident, actor, forced), however wide.
    """
    if not states:
        console.print(f"No assignments of {name} in {env} yet.", highlight=False)
        return
    now = states[-1][1]
    states = [(_with_plan(a, states[i - 1][1] if i else None), after) for i, (a, after) in enumerate(states)]
    if wide:
        utc = times.zone() != "UTC"  # a second, identical time column says nothing
        columns = [
            Column(""),
            Column(f"time ({times.zone()})"),
            *([Column("utc")] if utc else []),
            Column("version"),
            Column("action"),
            Column("reason", wrap=True, min_width=24),
            Column("incident"),
            Column("actor"),
            Column("tag"),
            Column("forced"),
        ]
        rows = [
            [
                marker(a, now),
                times.local(a.time),
                *([times.utc(a.time)] if utc else []),
                a.version,
                action(a),
                reason(a, incident=False),
                a.incident,
                a.actor,
                a.tag,
                "yes" if a.forced else "",
            ]
            for a, _ in states
        ]
    else:
        columns = [
            Column(""),
            Column("time"),
            Column("version"),
            Column("action"),
            Column("reason", wrap=True, min_width=36),  # the why matters more than the who at 80 columns
            Column("actor", priority=2),
        ]
        rows = [
            [marker(a, now), times.local(a.time), a.version, action(a, lines=True), reason(a, lines=True), a.actor]
            for a, _ in states
        ]
    fitted = table(columns, rows, 10_000 if wide else console.width)
    if wide:  # every field on one line each, wider than the terminal if need be (like kubectl -o wide)
        console.width = max(console.width, fitted.natural)
    show(console, fitted)  # never cropped: a table wider than the terminal is printed whole
    legend = [f"{LIVE} serves now"] + ([f"{CANARY} canary"] if now.canary is not None else [])
    legend += [f"{SHADOW} shadow"] if now.shadow is not None else []
    legend.append(f"times {times.zone()}")
    if not wide:
        legend.append("--wide: UTC, tag, actor, incident")
    console.print("  ".join(legend), highlight=False)
