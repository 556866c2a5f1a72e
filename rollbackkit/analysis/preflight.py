"""Preflight: the gate a deploy or rollback passes before it shifts traffic.

It combines the compatibility check of live features (with its adaptation), feature parity
(is the code now computing the same features?), and the output contract (do consumers of
the current version get the same columns, classes and dtypes?) into one verdict.

Severity policy: missing columns, unsafe dtypes, domain drift past the thresholds and
breaking output-contract changes are ``incompatible``. Feature-parity mismatches are
``warning``: a bundle ships its own preprocessing, so serving it recomputes features the
old way; the warning tells you upstream code has moved on. A library whose major version
differs from the one the model was registered with is a ``warning`` naming both versions
(:mod:`rollbackkit.bundle.runtime`; a minor or patch difference is listed in ``runtime``
only); one known not to load the model is ``incompatible``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollbackkit.analysis.parity import ParityReport
from rollbackkit.bundle.compat import Adaptation, CompatReport, Finding, Verdict
from rollbackkit.bundle.runtime import RuntimeReport
from rollbackkit.bundle.schema import OutputContract
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import PreflightFailed


@dataclass(frozen=True)
class PreflightReport(HasCard):
    """One verdict with every finding, the adaptation, and the parts it came from."""

    target: str
    consumer: str | None
    verdict: Verdict
    findings: list[Finding]
    adaptation: Adaptation
    compat: CompatReport | None = None
    parity: ParityReport | None = None
    contract: list[Finding] = field(default_factory=list)
    runtime: RuntimeReport = field(default_factory=RuntimeReport)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit preflight --json``)."""
        return {
            "target": self.target,
            "consumer": self.consumer,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "adaptation": self.adaptation.to_dict(),
            "parity": self.parity.to_dict() if self.parity else None,
            "runtime": self.runtime.to_dict(),
        }

    def card(self) -> Card:
        """Its card: the verdict, findings by severity, the adaptation, feature parity."""
        from rollbackkit.analysis.card_views import preflight_card

        return preflight_card(self)


def contract_findings(target: OutputContract, consumer: OutputContract) -> list[Finding]:
    """What consumers of ``consumer``'s contract would see change if ``target`` served."""
    found: list[Finding] = []
    if target.kind != consumer.kind:
        found.append(Finding("*", "output_kind", f"{consumer.kind} -> {target.kind}", "incompatible"))
    for col in consumer.columns:
        if col not in target.columns:
            found.append(Finding(col, "output_column_removed", "consumers receive it today", "incompatible"))
    for col in target.columns:
        if col not in consumer.columns:
            found.append(Finding(col, "output_column_added", "consumers do not receive it today", "warning"))
    if (target.classes or []) != (consumer.classes or []):
        found.append(Finding("*", "output_classes", f"{consumer.classes} -> {target.classes}", "incompatible"))
    for col, dtype in consumer.dtypes.items():
        new = target.dtypes.get(col)
        if new is not None and new != dtype:
            found.append(Finding(col, "output_dtype", f"{dtype} -> {new}", "incompatible"))
    return found


def combine(
    target: str,
    consumer: str | None,
    compat: CompatReport | None,
    parity: ParityReport | None,
    contract: list[Finding],
    runtime: RuntimeReport | None = None,
) -> PreflightReport:
    """Merge the checks (and the runtime's major-version and known-incompatible findings) into one verdict."""
    findings = list(compat.findings) if compat else []
    if parity is not None:
        if parity.error:
            findings.append(Finding("*", "feature_parity", parity.error, "warning"))
        for col in parity.features:
            if not col.ok:
                findings.append(
                    Finding(
                        col.column,
                        "feature_parity",
                        f"{col.mismatches} of {parity.rows} golden rows differ "
                        f"(max |diff| {col.max_abs_diff}) with {parity.code}",
                        "warning",
                        col.mismatches,
                    )
                )
    findings += contract
    runtime = runtime or RuntimeReport()
    findings += [
        Finding(f.library, "runtime", f.detail, "incompatible" if f.severity == "incompatible" else "warning")
        for f in runtime.problems
    ]
    verdict: Verdict = compat.verdict if compat else "compatible"
    if any(f.severity == "incompatible" for f in findings):
        verdict = "incompatible"
    adaptation = compat.adaptation if compat else Adaptation()
    return PreflightReport(target, consumer, verdict, findings, adaptation, compat, parity, contract, runtime)


def refuse_incompatible(tag: str, report: dict[str, Any], force: bool, untouched: str) -> None:
    """Raise :class:`PreflightFailed` when ``report`` is incompatible and not forced.

    Args:
        tag: The target version's tag, for the message.
        report: A preflight report's ``to_dict()``.
        force: The operator overrode preflight (it is recorded).
        untouched: What the message says was left as it was ("Nothing was shifted.").
    """
    if report["verdict"] != "incompatible" or force:
        return
    bad = [f for f in report["findings"] if f["severity"] == "incompatible"]
    raise PreflightFailed(
        f"{tag} failed preflight: " + "; ".join(f"{f['column']}: {f['kind']}" for f in bad[:5]) + f". {untouched}",
        "Fix the inputs, or pass --force to override (it is recorded).",
        report,
    )
