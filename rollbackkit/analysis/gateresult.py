"""Gate results and reports, and how they read in plain words.

A gate's status is ``pass``, ``fail``, ``insufficient`` (too few rows, labelled rows or
serving time: never a pass), ``inconclusive`` (a difference with live that is material but
not supported by the data, or a failure still within its ``failure_limit``) or ``skipped``
(a gate that needs live while no live version serves beside the candidate). The decision is
``rollback`` (a rollback-severity gate failed) > ``warn`` (a warn-severity gate failed) >
``inconclusive`` (any gate insufficient or inconclusive, or no gate decided at all: the
rollout waits) > ``pass`` (at least one gate passed); skipped gates do not count.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from rollbackkit.analysis.series import json_safe
from rollbackkit.cards import Card, HasCard

Status = Literal["pass", "fail", "insufficient", "inconclusive", "skipped"]
Decision = Literal["rollback", "warn", "inconclusive", "pass"]
UNDECIDED = ("insufficient", "inconclusive")


class Insufficient(Exception):
    """A gate cannot be decided on this window; the message says why (``12 labelled rows, 200 needed``).

    ``evidence`` (optional) goes into the result beside the reason (``labelled``, ``eligible``).
    """

    def __init__(self, reason: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.evidence = evidence or {}


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome over a window (``failure_limit``: from the gate, for :func:`tolerate`)."""

    name: str
    kind: str
    severity: str
    status: Status
    observed: float | None
    threshold: dict[str, float]
    evidence: dict[str, Any] = field(default_factory=dict)
    failure_limit: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]

    def words(self, *, public: bool = False) -> str:
        """The outcome in plain words: gate, metric, observed value and the bound it met or broke.

        ``score-drift psi 0.912 > 0.25`` (failed: the bound it broke), ``p99-latency p99 41.2 ms
        <= 250 ms`` (passed), ``errors: insufficient (80 samples in the window, 200 needed)``,
        ``p99-vs-live p99 61.2 ms vs live 40.1 ms: ratio 1.53 > 1.2 (ci 1.48-1.58)``; label
        gates add ``(120 of 150 rows labelled)``, a tolerated failure ``(failing 1 of 3)``, a
        slice gate its worst slice (`` in segment=west, 400 rows``).

        ``public``: the words for readers outside (webhooks, controllers' logs): name, measure,
        value and bounds only, never the worst slice (it names a feature's value, which any client
        can send) nor an insufficient gate's reason (it can quote labels).
        """
        if self.observed is None:
            why = None if public else self.evidence.get("reason")
            return f"{self.name}: {self.status}" + (f" ({why})" if why else "")
        measure = _measure(self)
        unit = " ms" if self.kind == "latency" else ""
        head = " ".join(p for p in (self.name, measure, f"{_number(self.observed)}{unit}") if p)
        text = f"{head} {_compared(self, unit)}" if "live" in self.evidence else f"{head} {_bound(self, unit)}"
        text = text.rstrip() + ("" if public else _where(self))
        notes = []
        if "labelled" in self.evidence and "eligible" in self.evidence:
            notes.append(f"{self.evidence['labelled']} of {self.evidence['eligible']} rows labelled")
        if "failing" in self.evidence:
            notes.append(f"failing {self.evidence['failing']}")
        return text.rstrip() + "".join(f" ({n})" for n in notes)


def decide(results: list[GateResult]) -> Decision:
    """The decision over gate results: rollback > warn > inconclusive > pass (skipped ignored).

    A pass needs at least one gate that passed: no gates at all, or only skipped ones, is
    ``inconclusive`` (never a pass on silence).
    """
    if any(r.status == "fail" and r.severity == "rollback" for r in results):
        return "rollback"
    if any(r.status == "fail" for r in results):
        return "warn"
    if any(r.status in UNDECIDED for r in results) or not any(r.status == "pass" for r in results):
        return "inconclusive"
    return "pass"


@dataclass(frozen=True)
class GateReport(HasCard):
    """Every gate's result and the overall decision ``rollback``, ``warn``, ``inconclusive`` or ``pass``."""

    version: str
    n: int
    decision: Decision
    gates: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        """Gates that failed (any severity)."""
        return [g for g in self.gates if g.status == "fail"]

    @property
    def undecided(self) -> list[GateResult]:
        """Gates that are insufficient or inconclusive (why the decision waits)."""
        return [g for g in self.gates if g.status in UNDECIDED]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit gates check --json``)."""
        return {
            "version": self.version,
            "n": self.n,
            "decision": self.decision,
            "gates": [g.to_dict() for g in self.gates],
        }

    def summary(self, *, public: bool = False) -> str:
        """One line in plain words: the decision and each gate behind it.

        ``rollback: score-drift psi 0.912 > 0.25; errors error rate 0.12 > 0.05`` (failing gates,
        see :meth:`GateResult.words`); ``inconclusive: accuracy-by-segment: insufficient (12
        labelled rows, 200 needed)`` (the gates it waits for). The watchdog stores it as the
        reason of an automatic rollback (the journal, the tag, ``/status``: the operator's own
        records). ``public``: each gate's public words (no slice, no reason text), the form that
        leaves the server (notifications, ``GET /analysis``).
        """
        behind = self.undecided if self.decision == "inconclusive" else self.failed
        shown = [g for g in behind if g.observed is not None or self.decision == "inconclusive"]
        said = "; ".join(g.words(public=public) for g in shown)
        if not said and self.decision == "inconclusive":
            said = "no traffic" if self.n == 0 else f"no gate decided ({len(self.gates)} gates, none passed)"
        return f"{self.decision}: {said}" if said else self.decision

    def card(self) -> Card:
        """Its card: the decision, each gate's outcome in words, slice gates' values per slice."""
        from rollbackkit.analysis.card_views import gate_report_card

        return gate_report_card(self)


def _number(value: float) -> str:
    """A measurement for people: three significant digits (``0.912``, ``41.2``), whole numbers
    from 1,000 up (``2000``, not ``2e+03``), exponents only past ten million."""
    if np.isfinite(value) and 1000 <= abs(value) < 1e7:
        return f"{value:.0f}"
    return f"{value:.3g}"


_MEASURES = {"error_rate": "error rate", "latency": ""}


def _measure(g: GateResult) -> str:
    """What a gate measured, in words: the drift/label metric, the quantile or the tail share."""
    violated = g.evidence.get("violated")
    if g.kind == "tail" and violated:
        measure = str(violated)
    elif g.kind == "latency":
        measure = str(g.evidence.get("quantile", ""))
    else:
        measure = str(g.evidence.get("metric", _MEASURES.get(g.kind, "")))
    said = g.name.lower().replace("-", " ").replace("_", " ")
    measure = measure.replace("_", " ")
    return "" if measure in said else measure  # "p99-latency" needs no "p99"


def _compared(g: GateResult, unit: str) -> str:
    """A comparison with live: ``vs live 40.1 ms: ratio 1.53 > 1.2 (ci 1.48-1.58)``."""
    e = g.evidence
    key = str(e.get("compare", ""))
    said = {"max_ratio": "ratio", "max_increase": "increase", "max_decrease": "decrease"}.get(key, key)
    estimate = e.get("ratio", e.get("difference"))
    limit = g.threshold.get(key)
    text = f"vs live {_number(float(e['live']))}{unit}" if e.get("live") is not None else "vs live"
    if estimate is not None and limit is not None:
        beyond = e.get("material", False)
        text += f": {said} {_number(float(estimate))} {'>' if beyond else '<='} {_number(limit)}"
        ci = e.get("ci")
        if ci and ci[0] is not None and ci[1] is not None:
            unsure = ": not yet supported" if beyond and not e.get("supported", False) else ""
            text += f" (ci {_number(float(ci[0]))} to {_number(float(ci[1]))}{unsure})"
    if e.get("violated") == "absolute":
        text += f"; {_bound(g, unit)}"
    return text


def _where(g: GateResult) -> str:
    """The segment a slice gate reports (`` in segment=west, 400 rows``), else nothing."""
    worst = g.evidence.get("worst_slice")
    if not isinstance(worst, dict) or not worst:
        return ""
    said = " in " + ", ".join(f"{k}={v}" for k, v in worst.items())
    rows = next((s.get("n") for s in g.evidence.get("slices", []) if s.get("slice") == worst), None)
    return said + (f", {rows} rows" if rows is not None else "")


def _bound(g: GateResult, unit: str) -> str:
    """The bound a failed gate broke (``> 0.25``, ``< 0.8``), or the one a passing gate met."""
    observed = g.observed if g.observed is not None else 0.0
    violated = g.evidence.get("violated")
    if violated and f"{violated}_max" in g.threshold:
        limit = g.threshold[f"{violated}_max"]
        return f"{'>' if observed > limit else '<='} {_number(limit)}"
    high = g.threshold.get("max_ms", g.threshold.get("max"))
    low = g.threshold.get("min")
    if high is not None and observed > high:
        return f"> {_number(high)}{unit}"
    if low is not None and observed < low:
        return f"< {_number(low)}{unit}"
    if g.status == "fail":  # a tail share or a slice other than the one reported broke its bound
        return "out of " + ", ".join(f"{k} {_number(v)}" for k, v in g.threshold.items())
    parts = ([f">= {_number(low)}"] if low is not None else []) + (
        [f"<= {_number(high)}{unit}"] if high is not None else []
    )
    if not parts and g.threshold:  # a passing tail or slice gate: the bounds it stayed within
        return "within " + ", ".join(f"{k.replace('_', ' ')} {_number(v)}" for k, v in g.threshold.items())
    return " and ".join(parts)


_OLD_SUMMARY = re.compile(r"\(([-+0-9.e]+|nan|inf) vs (\{[^{}]*\})\)(, (?=\S+ \())?")


def plain_words(text: str) -> str:
    """A stored reason or gate summary in plain words, whatever release wrote it.

    Summaries written before :meth:`GateReport.summary` spoke plainly held Python dict reprs
    (``score-drift (0.9123 vs {'max': 0.25}), errors (...)``); those read
    ``score-drift 0.912 > 0.25; errors ...``.
    Any other text is returned unchanged.
    """

    def one(match: re.Match[str]) -> str:
        observed = float(match.group(1))
        try:
            bounds = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            return match.group(0)
        if not isinstance(bounds, dict):
            return match.group(0)
        high = bounds.get("max_ms", bounds.get("max"))
        low = bounds.get("min")
        unit = " ms" if "max_ms" in bounds else ""
        if isinstance(high, (int, float)) and observed > high:
            bound = f"> {_number(high)}{unit}"
        elif isinstance(low, (int, float)) and observed < low:
            bound = f"< {_number(low)}"
        else:
            bound = "out of " + ", ".join(f"{k} {v}" for k, v in bounds.items())
        return f"{_number(observed)}{unit} {bound}" + ("; " if match.group(3) else "")

    return _OLD_SUMMARY.sub(one, text)
