"""Cards: how the objects a notebook user holds render at the end of a cell.

A :class:`Card` is a title, a status, labelled fields and sections. ``.html()`` is the
``text/html`` a notebook shows (every value escaped, inline styles only, readable in light
and dark themes: text keeps the theme's colour, statuses use translucent backgrounds and
``currentColor`` borders); ``.text()`` is the ``text/plain`` one (terminals, IPython). Long
lists stay compact: the first rows, then the rest in a collapsed ``<details>``. Values whose
key looks like a credential are never shown. Objects hand their card to IPython with
:func:`pretty` (``_repr_pretty_``) and ``card.html()`` (``_repr_html_``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SHOWN_ROWS = 12
"""Rows a section shows before the rest folds away."""

PASS = "#1a7f37"
"""The one green of a pass (badges, markers, a diff's additions): every card and panel uses these names."""
FAIL = "#cf222e"
"""The one red of a failure, a rollback, an error line."""
WARN = "#9a6700"
"""The one amber of a warning, a canary, a changed value."""
QUIET = "#6e7781"
"""The one grey of what is skipped, a shadow, a baseline."""
ACCENT = "#0969da"
"""The blue of an observed value or the version shown (not a status)."""
MUTED = "#57606a"
"""Secondary text and a bound's line."""
SECOND = "#8250df"
"""A second series beside the value (labelled rows, a shadow)."""


VERSIONS = (
    ACCENT, SECOND, "#1b7c83", "#bc4c00", "#bf3989", "#54aeff",
    "#4d2d00", "#a475f9", "#0a3069", "#3fb1b9", "#767600", "#424a53",
)  # fmt: skip
"""Each version's colour in figures, in order of first appearance: no state's colour (:data:`PASS`,
:data:`FAIL`, :data:`WARN`, :data:`QUIET`), so a version never reads as a status."""
FOLDED = "#afb8c1"
"""The light grey of versions folded into one band (past the figure's own colours)."""
NOW = PASS
"""The "now" line and label: the tone of what serves live (``live`` badges are :data:`PASS`'s tint)."""


def version_colour(index: int) -> str:
    """The colour of the ``index``-th version a figure draws (:data:`VERSIONS`, cycling)."""
    return VERSIONS[index % len(VERSIONS)]


def _rgb(colour: str) -> str:
    return ",".join(str(int(colour[i : i + 2], 16)) for i in (1, 3, 5))


TONES = {"good": _rgb(PASS), "bad": _rgb(FAIL), "doubt": _rgb(WARN), "quiet": _rgb(QUIET)}
"""Each tone's ``r,g,b`` (from :data:`PASS`, :data:`FAIL`, :data:`WARN`, :data:`QUIET`), drawn translucent."""
_TONE_OF = {
    "pass": "good",
    "ok": "good",
    "compatible": "good",
    "succeeded": "good",
    "completed": "good",
    "live": "good",
    "fail": "bad",
    "failed": "bad",
    "rollback": "bad",
    "incompatible": "bad",
    "error": "bad",
    "warn": "doubt",
    "warning": "doubt",
    "adaptable": "doubt",
    "adapt": "doubt",
    "insufficient": "doubt",
    "inconclusive": "doubt",
    "changed": "doubt",
    "added": "good",
    "removed": "bad",
    "skipped": "quiet",
}
_SECRET = re.compile(
    r"(secret|token|password|passwd|api[_-]?key|credential|authorization|private[_-]?key|(^|[^a-z])(dsn|auth)$)", re.I
)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
HIDDEN = "••• (hidden)"


def esc(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def blank(value: Any) -> bool:
    """None, or an empty string, list or dict (a field a card leaves out)."""
    return value is None or (isinstance(value, str | list | dict | tuple) and len(value) == 0)


def redacted(key: str, value: Any) -> Any:
    """``value``, unless ``key`` names a credential (then :data:`HIDDEN`); URLs lose their user:password@."""
    if _SECRET.search(str(key)) and not blank(value):
        return HIDDEN
    if isinstance(value, str):
        return _USERINFO.sub(r"\g<scheme>•••@", value)
    return value


DIGITS = 4
"""Significant digits of a number on a card or panel (a diff's values:
:data:`rollbackkit.short_text.DIFF_DIGITS`)."""


def number(value: Any, digits: int = DIGITS, missing: str = "") -> str:
    """A value for a cell: floats to ``digits`` significant digits, booleans in lower case, None as ``missing``."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def clock(value: Any, day: bool = False) -> str:
    """A time (datetime, Timestamp or ISO text) as ``01:54:27 UTC`` (``day``: ``2026-12-01 01:54:27 UTC``);
    "" for None; text that is no time stays as it is."""
    if value is None or value == "":
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(f"{'%Y-%m-%d ' if day else ''}%H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")


def rgba(colour: str, alpha: float) -> str:
    """A ``#rrggbb`` colour of this palette, translucent (a figure label's background, for light and dark themes)."""
    return f"rgba({_rgb(colour)},{alpha})"


def tone(status: str) -> str:
    """The ``r,g,b`` of a status's tone (:data:`TONES`: good, bad, doubt, quiet)."""
    return TONES.get(status.lower()) or TONES[_TONE_OF.get(status.lower(), "quiet")]


def tint(status: str, alpha: float = 0.18) -> str:
    """A translucent background of a status's (or tone's) colour: readable in light and dark themes."""
    return f"background:rgba({tone(status)},{alpha})"


def badge(status: str, css: str = "rollbackkit-badge", text: str | None = None, title: str = "") -> str:
    """A status label: the theme's text colour on a translucent tint of the status's tone (``text``
    instead of the status's name, ``title`` as its tooltip)."""
    rgb = tone(status)
    tip = f' title="{esc(title)}"' if title else ""
    return (
        f'<span class="{esc(css)} rollbackkit-{esc(status)}"{tip} style="padding:0 6px;border-radius:8px;'
        f"background:rgba({rgb},0.18);border:1px solid rgba({rgb},0.7);color:inherit;font-size:0.85em;"
        f'white-space:nowrap">{esc(status if text is None else text)}</span>'
    )


@dataclass(frozen=True)
class Section:
    """A part of a card: rows of cells (escaped), or ready ``html`` (built from escaped parts) and its ``text``.

    ``count`` goes into the heading (``Features (52)``); ``folded`` collapses it.
    """

    heading: str
    rows: Sequence[Sequence[Any]] = ()
    headers: Sequence[str] = ()
    html: str = ""
    text: str = ""
    count: int | None = None
    folded: bool = False

    def title(self) -> str:
        """The heading with its count."""
        return self.heading + (f" ({self.count})" if self.count is not None else "")

    def to_html(self) -> str:
        """A collapsible ``<details>`` block (open unless ``folded``)."""
        return _section_html(self)

    def to_text(self) -> str:
        """The section's body as plain text."""
        return _section_text(self)


@dataclass(frozen=True)
class Card:
    """A title, a status, ``(label, value)`` fields and sections; ``.html()`` and ``.text()``.

    ``sections`` holds :class:`Section` objects or ``(heading, html)`` pairs (HTML built from
    escaped parts; its text is the HTML without tags).
    """

    title: str
    status: str | None = None
    fields: Sequence[tuple[str, Any]] = ()
    sections: Sequence[Section | tuple[str, str]] = ()
    css: str = ""
    notes: Sequence[str] = field(default_factory=list)

    def _sections(self) -> list[Section]:
        return [s if isinstance(s, Section) else Section(s[0], html=s[1]) for s in self.sections]

    def html(self) -> str:
        """Self-contained HTML (inline styles), every value escaped."""
        head = f"<b>{esc(self.title)}</b>" + (f" {badge(self.status)}" if self.status else "")
        fields = "".join(
            f"<tr><td style='opacity:0.7;padding:1px 12px 1px 0;vertical-align:top;text-align:left'>{esc(k)}</td>"
            f"<td style='padding:1px 0;text-align:left'>{esc(redacted(k, v))}</td></tr>"
            for k, v in self.fields
            if not blank(v)
        )
        parts = [f"<div style='font-size:1.05em;margin-bottom:4px'>{head}</div>"]
        if fields:
            parts.append(f"<table style='border-collapse:collapse;margin:0'>{fields}</table>")
        parts += [f"<div style='opacity:0.8;margin-top:4px'>{esc(n)}</div>" for n in self.notes]
        parts += [s.to_html() for s in self._sections()]
        classes = "rollbackkit-card" + (f" {esc(self.css)}" if self.css else "")
        return (
            f"<div class='{classes}' style='border:1px solid rgba(127,127,127,0.45);border-radius:6px;"
            "padding:6px 10px;margin:2px 0;color:inherit;background:rgba(127,127,127,0.06);"
            f"font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;max-width:60em'>{''.join(parts)}</div>"
        )

    def text(self) -> str:
        """A plain card for terminals: the title line, aligned fields, then each section."""
        lines = [self.title + (f" [{self.status}]" if self.status else "")]
        shown = [(k, redacted(k, v)) for k, v in self.fields if not blank(v)]
        width = max((len(k) for k, _ in shown), default=0)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in shown]
        lines += [f"  {n}" for n in self.notes]
        for s in self._sections():
            lines.append(f"  {s.title()}:")
            lines += ["    " + line for line in s.to_text().splitlines()]
        return "\n".join(lines)


def pretty(card: Card, p: Any, cycle: bool) -> None:
    """``_repr_pretty_``: the card's text into IPython's pretty printer."""
    p.text("<card>" if cycle else card.text())


class HasCard:
    """Mixin: an object that renders as its :meth:`card` at the end of a notebook cell.

    IPython's display formatter calls ``_repr_html_`` for ``text/html`` and ``_repr_pretty_``
    for ``text/plain``; ``repr()`` stays the dataclass's own.
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # IPython walks the MRO and takes the first class that defines __repr__ or
        # _repr_pretty_: a dataclass defines its own __repr__, so each subclass carries the method.
        cls._repr_pretty_ = HasCard._repr_pretty_  # type: ignore[method-assign]

    def card(self) -> Card:
        """This object's card."""
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.card().html()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty(self.card(), p, cycle)


def listing(names: Iterable[Any], limit: int = 40) -> tuple[str, str]:
    """A compact list of names: ``(html, text)``, the first ``limit`` then "and N more" (folded in HTML)."""
    items = [str(n) for n in names]
    head, rest = items[:limit], items[limit:]
    text = ", ".join(head) + (f", ... and {len(rest)} more" if rest else "")
    body = esc(", ".join(head))
    if rest:
        body += f"<details><summary>and {len(rest)} more</summary>{esc(', '.join(rest))}</details>"
    return f"<div style='line-height:1.4'>{body}</div>", text


class Badge(str):
    """A table cell shown as a status badge."""

    __slots__ = ()


def _cell(value: Any) -> str:
    return badge(value) if isinstance(value, Badge) else esc(value)


def _row_html(row: Sequence[Any]) -> str:
    cells = "".join(
        f"<td style='padding:1px 10px 1px 0;vertical-align:top;text-align:left'>{_cell(c)}</td>" for c in row
    )
    return f"<tr style='border-top:1px solid rgba(127,127,127,0.2)'>{cells}</tr>"


def _rows_html(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:1px 10px 1px 0;opacity:0.7'>{esc(h)}</th>" for h in headers)
    shown, rest = rows[:SHOWN_ROWS], rows[SHOWN_ROWS:]
    out = f"<table style='border-collapse:collapse'>{f'<tr>{head}</tr>' if head else ''}"
    out += "".join(_row_html(r) for r in shown) + "</table>"
    if rest:
        more = "".join(_row_html(r) for r in rest)
        out += (
            f"<details><summary>{len(rest)} more</summary><table style='border-collapse:collapse'>{more}</table>"
            "</details>"
        )
    return out


def _section_html(s: Section) -> str:
    body = s.html + (_rows_html(s.headers, s.rows) if s.rows else "")
    return (
        f"<details{'' if s.folded else ' open'} style='margin-top:6px'>"
        f"<summary style='cursor:pointer;font-weight:600'>{esc(s.title())}</summary>"
        f"<div style='margin:2px 0 0 14px'>{body}</div></details>"
    )


def _section_text(s: Section) -> str:
    text = s.text or (html.unescape(re.sub(r"<[^>]+>", " ", s.html)).strip() if s.html and not s.rows else "")
    rows = [[str(c) for c in r] for r in s.rows]
    if rows:
        table = [list(s.headers), *rows] if s.headers else rows
        widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(len(r) for r in table))]
        shown = table[: SHOWN_ROWS + (1 if s.headers else 0)]
        lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in shown]
        if len(table) > len(shown):
            lines.append(f"... and {len(table) - len(shown)} more")
        text = "\n".join([text, *lines]) if text else "\n".join(lines)
    return text
