"""Cards (:mod:`rollbackkit.cards`) for the analysis layer's objects: a gate report, a preflight, a diff.

The diff's groups (:mod:`rollbackkit.analysis.diffsections`) render here once, for the diff's
card and for the schema diff panel: each group a collapsible block with its count, each gate
its own block, code as a coloured unified diff. The objects are typed ``Any`` here because
their modules import this one lazily for their ``card()``.
"""

from __future__ import annotations

from typing import Any

from rollbackkit.analysis.diffsections import DiffLine, DiffSection, diff_sections
from rollbackkit.bundle.card_views import adaptation_said, findings_section, severity_counts
from rollbackkit.cards import Badge, Card, Section, esc, number
from rollbackkit.cards import tint as tone_tint
from rollbackkit.short_text import list_change, short

SIGNS = {"added": "+", "removed": "-", "changed": "~"}
CODE_LINES = 400
"""Lines of a unified diff shown (the rest is counted)."""
LINES_SHOWN = 40
"""Changes a section lists before the rest folds away (a 500-feature diff stays readable)."""


def tint(change: str) -> str:
    """The translucent row background for an added, removed or changed line (both themes)."""
    return tone_tint(change, 0.16)


def gate_report_card(report: Any) -> Card:
    """The decision, the window's rows, each gate's outcome in words, and per-slice values of slice gates."""
    return Card(
        f"Gates for {report.version}",
        status=report.decision,
        fields=[("rows", report.n), ("why", report.summary())],
        sections=gate_sections(report.gates),
        css="rollbackkit-gate-card",
    )


def gate_sections(gates: Any) -> list[Section]:
    """A table of gates (status badge, outcome in words), then each slice gate's slices (folded)."""
    rows = [(g.name, g.kind, g.severity, Badge(g.status), g.words()) for g in gates]
    sections = [Section("Gates", rows=rows, headers=("gate", "kind", "severity", "status", "outcome"), count=len(rows))]
    return sections + [_slices_section(g) for g in gates if g.evidence.get("slices")]


def gate_status_card(status: Any) -> Card:
    """A :class:`~rollbackkit.serving.status.GateStatus`: the gate report's card plus where it
    was judged (slot, rollout, why paused or no rollback), or why there is no report yet."""
    fields: list[tuple[str, Any]] = [
        ("rows", status.n),
        ("slot", status.slot),
        ("why", status.reason),
        ("no rollback", status.rollback),
        ("paused", status.paused),
        ("promoted", status.promoted),
        ("watchdog errors", status.watchdog_errors or None),
        ("last watchdog error", status.last_watchdog_error),
    ]
    return Card(
        f"Gates for {status.version}" if status.version else "Gates",
        status=status.decision,
        fields=fields,
        sections=gate_sections(status.gates or []),
        css="rollbackkit-gate-card",
    )


def _slices_section(g: Any) -> Section:
    worst = g.evidence.get("worst_slice")
    rows = []
    for s in g.evidence.get("slices") or []:
        label = ", ".join(f"{k}={v}" for k, v in (s.get("slice") or {}).items())
        value = s.get("value", s.get("observed"))
        rows.append((label + (" (worst)" if s.get("slice") == worst else ""), s.get("n", ""), _num(value)))
    return Section(f"{g.name}: slices", rows=rows, headers=("slice", "rows", "value"), count=len(rows), folded=True)


def preflight_card(report: Any) -> Card:
    """The verdict for a target (and the consumer it replaces), findings, adaptation, parity."""
    title = f"Preflight {report.target}" + (f" (consumers of {report.consumer})" if report.consumer else "")
    fields: list[tuple[str, Any]] = [
        ("findings", severity_counts(report.findings)),
        ("adaptation", adaptation_said(report.adaptation)),
    ]
    if report.parity is not None:
        bad = [c.column for c in report.parity.features if not c.ok]
        fields.append(("feature parity", report.parity.error or (f"{len(bad)} column(s) differ" if bad else "same")))
    sections = [findings_section(report.findings)] if report.findings else []
    return Card(title, status=report.verdict, fields=fields, sections=sections, css="rollbackkit-preflight-card")


def diff_card(d: Any) -> Card:
    """A diff grouped by section, each with its count."""
    groups = diff_sections(d)
    total = sum(s.count for s in groups)  # the status counts what the sections list (moved medians too)
    return Card(
        f"{d.a} → {d.b}",
        status=f"{total} changes" if total else "no differences",
        sections=[Section(s.title, html=section_html(s), text=section_text(s), count=s.count) for s in groups],
        css="rollbackkit-diff-card",
    )


def section_html(s: DiffSection, css: str = "") -> str:
    """A group's body: a table of its lines (tinted), a block per part, the code diff."""
    out = ""
    if s.lines:
        rows = "".join(_line_html(line) for line in s.lines[:LINES_SHOWN])
        out += (
            f"<table class='rollbackkit-diff-{esc(s.key)} {esc(css)}' style='border-collapse:collapse'>"
            "<tr><th></th><th style='text-align:left;opacity:0.7;padding:1px 8px'>item</th>"
            "<th style='text-align:left;opacity:0.7;padding:1px 8px'>from</th>"
            f"<th style='text-align:left;opacity:0.7;padding:1px 8px'>to</th></tr>{rows}</table>"
        )
        rest = s.lines[LINES_SHOWN:]
        if rest:
            more = "".join(_line_html(line) for line in rest)
            out += (
                f"<details class='rollbackkit-more'><summary>{len(rest)} more</summary>"
                f"<table style='border-collapse:collapse'>{more}</table></details>"
            )
    for part in s.parts:
        out += (
            f"<details open style='margin:2px 0'><summary>{esc(part.title)} ({part.count})</summary>"
            f"<div style='margin-left:14px'>{section_html(part)}</div></details>"
        )
    if s.code:
        out += code_html(s.code)
    return out or "<div style='opacity:0.7'>no changes</div>"


def section_text(s: DiffSection) -> str:
    """A group's body as plain lines."""
    lines = [_line_text(line) for line in s.lines[:LINES_SHOWN]]
    if len(s.lines) > LINES_SHOWN:
        lines.append(f"... and {len(s.lines) - LINES_SHOWN} more")
    for part in s.parts:
        lines.append(f"{part.title}:")
        lines += ["  " + _line_text(line) for line in part.lines]
    if s.code:
        lines += s.code.rstrip().splitlines()[:CODE_LINES]
    return "\n".join(lines) or "no changes"


def code_html(diff: str) -> str:
    """A unified diff, added lines green, removed red (translucent), at most :data:`CODE_LINES` lines."""
    lines = diff.rstrip().splitlines()
    shown = []
    for line in lines[:CODE_LINES]:
        change = "added" if line.startswith("+") else "removed" if line.startswith("-") else ""
        if line.startswith(("+++", "---", "@@")):
            change = ""
        style = tint(change) if change else "opacity:0.75"
        shown.append(f"<div style='{style}'>{esc(line) or '&nbsp;'}</div>")
    more = f"<div style='opacity:0.7'>... {len(lines) - CODE_LINES} more lines</div>" if len(lines) > CODE_LINES else ""
    return (
        "<div class='rollbackkit-code-diff' style='font-family:var(--jp-code-font-family,monospace);"
        f"white-space:pre;overflow-x:auto;font-size:12px'>{''.join(shown)}{more}</div>"
    )


def _line_html(line: DiffLine) -> str:
    item = line.item + (f" {line.field}" if line.field and line.field != line.item else "")
    cells = [SIGNS[line.change], item, *_before_after(line)]
    body = "".join(f"<td style='padding:1px 8px;vertical-align:top;text-align:left'>{esc(c)}</td>" for c in cells)
    return f"<tr class='rollbackkit-{line.change}' style='{tint(line.change)}'>{body}</tr>"


def _line_text(line: DiffLine) -> str:
    item = line.item + (f" {line.field}" if line.field and line.field != line.item else "")
    if line.change == "added" and line.before is None:
        return f"+ {item}" + (f": {_short(line.after)}" if line.after is not None else "")
    if line.change == "removed" and line.after is None:
        return f"- {item}" + (f": {_short(line.before)}" if line.before is not None else "")
    before, after = _before_after(line)
    return f"~ {item}: {before} -> {after}"


def _before_after(line: DiffLine) -> tuple[str, str]:
    """A line's two sides: a changed list says what was removed and added, not its cut-off start."""
    return list_change(line.before, line.after) or (_short(line.before), _short(line.after))


_short = short
_num = number
