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
from rollbackkit.cards import TONES, Badge, Card, Section, esc

TINTS = {"added": TONES["good"], "removed": TONES["bad"], "changed": TONES["doubt"]}
SIGNS = {"added": "+", "removed": "-", "changed": "~"}
CODE_LINES = 400
"""Lines of a unified diff shown (the rest is counted)."""
LINES_SHOWN = 40
"""Changes a section lists before the rest folds away (a 500-feature diff stays readable)."""


def tint(change: str) -> str:
    """The translucent row background for an added, removed or changed line (both themes)."""
    return f"background:rgba({TINTS.get(change, TONES['quiet'])},0.16)"


def gate_report_card(report: Any) -> Card:
    """The decision, the window's rows, each gate's outcome in words, and per-slice values of slice gates."""
    rows = [(g.name, g.kind, g.severity, Badge(g.status), g.words()) for g in report.gates]
    sections = [Section("Gates", rows=rows, headers=("gate", "kind", "severity", "status", "outcome"), count=len(rows))]
    sections += [_slices_section(g) for g in report.gates if g.evidence.get("slices")]
    return Card(
        f"Gates for {report.version}",
        status=report.decision,
        fields=[("rows", report.n), ("why", report.summary())],
        sections=sections,
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
    total = sum(s.count for s in groups)
    return Card(
        f"{d.a} → {d.b}",
        status="no differences" if d.empty else f"{total} changes",
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
    cells = [SIGNS[line.change], item, _short(line.before), _short(line.after)]
    body = "".join(f"<td style='padding:1px 8px;vertical-align:top'>{esc(c)}</td>" for c in cells)
    return f"<tr class='rollbackkit-{line.change}' style='{tint(line.change)}'>{body}</tr>"


def _line_text(line: DiffLine) -> str:
    item = line.item + (f" {line.field}" if line.field and line.field != line.item else "")
    if line.change == "added" and line.before is None:
        return f"+ {item}" + (f": {_short(line.after)}" if line.after is not None else "")
    if line.change == "removed" and line.after is None:
        return f"- {item}" + (f": {_short(line.before)}" if line.before is not None else "")
    return f"~ {item}: {_short(line.before)} -> {_short(line.after)}"


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"  # a trained range reads 10.892, not 10.89200761722041
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value if value is not None else "")
