"""The ``audit verify`` screen: the local check of the runbooks, then the published trail's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollbackkit.ops.audit_check import AuditVerdict


def lines(verdict: AuditVerdict) -> list[str]:
    """The lines ``audit verify`` prints: what was checked, each problem indented, how the signer is pinned."""
    report, published = verdict.local, verdict.published
    if verdict.local_skipped:
        out = ["no journal here (a clone): the published trail is what is checked"]
    else:
        out = [f"checked {report.checked} runbooks: {'ok' if report.ok else 'PROBLEMS'}"]
    out += [f"  {problem['notebook']}: {problem['problem']}" for problem in report.problems]
    if published is not None:
        state = "ok" if published.ok else "PROBLEMS"
        signer = f", key {published.key[:16]}" if published.key else ""
        out.append(f"published trail: {published.manifests} manifests, {published.files} files{signer}: {state}")
        out += [f"  {item.path}: {item.problem}" for item in published.problems]
        if published.pinned is None:
            out.append("signer not pinned (pass --key FINGERPRINT): the trail is only self-consistent")
    return out


def text(verdict: AuditVerdict) -> str:
    """:func:`lines`, each ended by a newline."""
    return "".join(line + "\n" for line in lines(verdict))
