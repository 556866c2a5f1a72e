"""Cards (:mod:`rollbackkit.cards`) for the bundle layer's objects: a version, a bundle, a compatibility report.

A bundle's card shows what a data scientist checks first (model, output contract, features,
gates, preprocessing) and stays compact for wide frames: feature counts by type and a folded
list, never one row per feature. Serving config values are not shown (a card is for reading,
and a config may carry credentials).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rollbackkit.cards import Badge, Card, Section, esc, listing

LISTED_FEATURES = 40
"""Feature names a bundle card lists before "and N more"."""


def version_fields(info: Any) -> list[tuple[str, Any]]:
    """The fields every version card starts with."""
    return [
        ("bundle id", info.bundle_id.split(":")[-1][:12]),
        ("created", info.created),
        ("author", info.author),
        ("message", info.message),
        ("commit", info.commit[:12]),
    ]


def version_card(info: Any) -> Card:
    """A registered version: its tag, id, creation, author, message and commit."""
    return Card(info.tag, fields=version_fields(info), css="rollbackkit-version-card")


def bundle_card(bundle: Any, *, loaded: bool) -> Card:
    """A described or loaded bundle: model, output contract, rows, features, gates and preprocessing."""
    schema = bundle.schema
    est, out = schema.estimator, schema.output
    model = " ".join(p for p in (est.flavor, str(est.type).rsplit(".", 1)[-1]) if p)
    size = ", ".join(f"{v} {k}" for k, v in sorted(est.size.items()) if v)
    classes = out.classes or []
    fields = [
        ("model", model + (f" ({size})" if size else "")),
        ("output", f"{out.kind}, primary {out.primary}"),
        ("classes", listing(classes, 12)[1] if classes else None),
        ("target", schema.target),
        ("training rows", schema.n_rows),
        *version_fields(bundle.info),
        ("preprocessing", _preprocess_said(bundle.preprocess_source)),
    ]
    runtime = getattr(bundle, "runtime", None)
    notes = [f"runtime: {f.detail}" for f in runtime.problems] if runtime is not None else []
    sections = [features_section(bundle), gates_section(bundle.gates)]
    return Card(
        bundle.info.tag,
        status="loaded" if loaded else "described",
        fields=fields,
        sections=sections,
        css="rollbackkit-bundle-card",
        notes=notes,
    )


def features_section(bundle: Any) -> Section:
    """Counts by logical type, then the names (folded past :data:`LISTED_FEATURES`)."""
    features = bundle.schema.features
    kinds = Counter(str(f.dtype) for f in features)
    nullable = sum(1 for f in features if f.nullable)
    counts = ", ".join(f"{n} {k}" for k, n in kinds.most_common()) + (f"; {nullable} nullable" if nullable else "")
    names_html, names_text = listing([f.name for f in features], LISTED_FEATURES)
    return Section(
        "Features",
        html=f"<div style='opacity:0.8'>{esc(counts)}</div>{names_html}",
        text=f"{counts}\n{names_text}",
        count=len(features),
        folded=len(features) > LISTED_FEATURES,
    )


def gates_section(gates: dict[str, Any]) -> Section:
    """One row per declared gate: name, kind, what it watches, severity."""
    declared = [g for g in (gates or {}).get("gates") or [] if isinstance(g, dict)]
    rows = [
        (
            str(g.get("name", f"#{i}")),
            str(g.get("kind", "?")),
            str(g.get("metric") or g.get("quantile") or g.get("column") or ""),
            str(g.get("severity", "rollback")),
        )
        for i, g in enumerate(declared)
    ]
    return Section("Gates", rows=rows, headers=("gate", "kind", "watches", "severity"), count=len(rows))


def findings_section(findings: Sequence[Any], heading: str = "Findings") -> Section:
    """Findings, incompatible first: column, kind, severity, detail."""
    order = {"incompatible": 0, "adapt": 1, "warning": 2}
    ranked = sorted(findings, key=lambda f: order.get(f.severity, 3))
    rows = [(f.column, f.kind, Badge(f.severity), f.detail) for f in ranked]
    return Section(heading, rows=rows, headers=("column", "kind", "severity", "detail"), count=len(rows))


def adaptation_said(adaptation: Any, names: int = 0) -> str:
    """``drops 3 column(s), reorders columns, casts 2 column(s)``, or ``none``; with ``names``, up to
    that many column names each (``drops 2 column(s) (a, b)``, ``casts 1 column(s) (age to float64)``)."""
    casts = [f"{k} to {v}" for k, v in adaptation.casts.items()]
    parts = [f"drops {len(adaptation.drop)} column(s){_named(adaptation.drop, names)}"] if adaptation.drop else []
    parts += ["reorders columns"] if adaptation.reorder else []
    parts += [f"casts {len(casts)} column(s){_named(casts, names)}"] if casts else []
    return ", ".join(parts) or "none"


def _named(items: Sequence[Any], names: int) -> str:
    if names <= 0:
        return ""
    more = ", …" if len(items) > names else ""
    return f" ({', '.join(map(str, items[:names]))}{more})"


def severity_counts(findings: Sequence[Any]) -> str:
    """``5 incompatible, 1 warning`` (or ``none``)."""
    counts = Counter(f.severity for f in findings)
    return ", ".join(f"{n} {k}" for k, n in counts.most_common()) or "none"


def compat_card(report: Any) -> Card:
    """A compatibility check: verdict, findings by severity, the adaptation, each finding."""
    return Card(
        "Compatibility check",
        status=report.verdict,
        fields=[("findings", severity_counts(report.findings)), ("adaptation", adaptation_said(report.adaptation))],
        sections=[findings_section(report.findings)] if report.findings else [],
        css="rollbackkit-compat-card",
    )


def _preprocess_said(source: str | None) -> str:
    if not source:
        return "none"
    return f"preprocess.py ({len(source.splitlines())} lines)"
