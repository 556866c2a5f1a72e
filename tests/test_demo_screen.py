"""The demo's summary fits 80 columns in plain words (issue 17: it cut cells and showed dict reprs)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from rollbackkit.analysis.gates import GateResult
from rollbackkit.demo.result import DemoResult, DemoVersion, SchemaStory
from rollbackkit.ops.log_results import AffectedRows
from rollbackkit.registry.assignments import Assignment
from rollbackkit.serving.status import GateStatus

OLD_REASON = "gate failed: rollback: score-drift (0.9123 vs {'max': 0.25}), tail-segment (0.31 vs {'max': 0.1})"


def _result() -> DemoResult:
    def assign(n: int, version: str, action: str, reason: str, **more: object) -> Assignment:
        return Assignment(
            "churn", "prod", version, f"churn#prod#{n}", f"2026-11-30T03:0{n}:07+00:00", action, reason, **more
        )

    return DemoResult(
        directory=Path("/home/oncall/projects/churn-demo-project"),
        steps=[("create", "ok", 2.0), ("traffic", "ok", 40.0)],
        versions=[
            DemoVersion("v1.0.0", "sha256:0123456789abcdef0123", "random forest on the 47 base features", 47),
            DemoVersion(
                "v1.1.0",
                "sha256:fedcba9876543210fedc",
                "gradient boosting on all 52 features, with the new support-calls and contract-tenure "
                "features that the tail segment depends on",
                52,
            ),
        ],
        shift_ms=0.42,
        breach_to_shift_ms=1830.5,
        gates=GateStatus(
            decision="rollback",
            version="v1.1.0",
            n=1200,
            gates=[
                GateResult(
                    "score-drift", "prediction_drift", "rollback", "fail", 0.9123, {"max": 0.25}, {"metric": "psi"}
                ),
                GateResult("errors", "error_rate", "rollback", "pass", 0.0, {"max": 0.05}),
                GateResult("p99-latency", "latency", "warn", "pass", 41.25, {"max_ms": 250.0}, {"quantile": "p99"}),
            ],
        ),
        preflight=SchemaStory("adaptable", ["a", "b", "c", "d", "e"], "incompatible", ["tenure_months"]),
        affected=AffectedRows("churn", "prod", "v1.1.0", 357, 0, 357, None, None, []),
        runbook={"verdict": "already-rolled-back", "notebook": "audit/runbooks/2026-11-30T030512Z-rollback.ipynb"},
        history=[
            assign(1, "v1.0.0", "deploy", "first release"),
            assign(2, "v1.1.0", "canary", "try the boosted model on a third of the traffic", canary_percent=30),
            assign(3, "v1.0.0", "auto-rollback", OLD_REASON, incident="INC-2026-1130-0307"),
        ],
    )


def test_the_demo_summary_fits_80_columns_in_plain_words() -> None:
    from rollbackkit.cli.demo import _demo_summary

    out = io.StringIO()
    _demo_summary(Console(file=out, width=80, color_system=None), _result())
    text = out.getvalue()
    rows = text.splitlines()
    assert max(len(row) for row in rows) <= 80, text
    assert "…" not in text and "{'" not in text and '{"' not in text, text  # nothing cut, no dict reprs
    for whole in (
        "auto-rollback",
        "canary 30%",
        "score-drift psi 0.912 > 0.25",
        "tail-segment 0.31 > 0.1",
        "incident INC-2026-1130-0307",
        "v1.1.0",
        "sha256:fedcba987654",
        "Runbook: already-rolled-back",
        "backfilled with v1.0.0",
    ):
        assert any(whole in row for row in rows), (whole, text)
    # Every word of a long message is there, wrapped rather than cut.
    assert "depends on" in " ".join(text.split()), text
