"""Gates an on-call engineer can trust: never a pass on silence, never a breach hidden by thin
live traffic, no false failures on small heavy-tailed samples, and one broken gate cannot
blind the others.

Latency here is lognormal (heavy-tailed, as real latency is), not the light-tailed gamma of
the other comparison tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from rollbackkit.analysis import comparison, gates
from rollbackkit.analysis.gateresult import GateReport, GateResult, decide
from rollbackkit.analysis.gates import evaluate, tolerate
from rollbackkit.analysis.gatespec import parse_gates
from rollbackkit.errors import InvalidInput

from .test_gate_compare import NOW, traffic
from .test_gate_compare import bundle as bundle  # the registered breast-cancer version


def only(bundle: Any, *specs: dict[str, Any], min_samples: int = 200) -> Any:
    """The version with just these gates."""
    return replace(bundle, gates={"min_samples": min_samples, "gates": list(specs)})


def test_a_version_with_no_gates_is_never_promoted_on_anything(bundle: Any) -> None:
    bare = only(bundle)
    assert decide([]) == "inconclusive"
    assert evaluate(bare, traffic(500, seed=1), now=NOW).decision == "inconclusive"
    empty = evaluate(bare, traffic(500, seed=1).head(0), live=traffic(500, seed=2), now=NOW)
    assert (empty.decision, empty.summary()) == ("inconclusive", "inconclusive: no traffic")


def test_a_compare_only_version_without_live_is_inconclusive_not_a_pass(bundle: Any) -> None:
    compare_only = only(bundle, {"name": "p99", "kind": "latency", "compare": "live", "max_ratio": 1.2})
    report = evaluate(compare_only, traffic(2_000, seed=1), now=NOW)
    assert [g.status for g in report.gates] == ["skipped"] and report.decision == "inconclusive"


BROKEN = {  # each candidate breaks the gate's own bound badly; live is there but too thin to compare
    "latency": ({"kind": "latency", "quantile": "p99", "max_ms": 50, "max_ratio": 1.2}, {"slow": 3.0}),
    "error_rate": ({"kind": "error_rate", "max": 0.05, "max_increase": 0.01}, {"errors": 0.3}),
    "label_metric": (
        {"kind": "label_metric", "metric": "accuracy", "min": 0.8, "max_decrease": 0.02},
        {"accuracy": 0.5},
    ),
    "slice": (
        {
            "kind": "slice",
            "by": "site",
            "metric": "accuracy",
            "min": 0.8,
            "max_decrease": 0.05,
            "min_slice_samples": 50,
        },
        {"west": 0.3},
    ),
}


@pytest.mark.parametrize("live_rows", [50, 0])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_thin_live_side_never_hides_a_broken_bound(bundle: Any, kind: str, live_rows: int) -> None:
    spec, harm = BROKEN[kind]
    version = only(bundle, {"name": "gate", "compare": "live", **spec})
    report = evaluate(
        version, traffic(2_000, seed=3, **harm), live=traffic(50, seed=4, errors=0.0).head(live_rows), now=NOW
    )
    gate = report.gates[0]
    assert (gate.status, report.decision) == ("fail", "rollback"), gate
    assert gate.evidence["compare_skipped"].startswith(f"{live_rows} "), gate.evidence
    assert gate.evidence["compare_skipped"].endswith(" needed"), gate.evidence
    healthy = evaluate(version, traffic(2_000, seed=5), live=traffic(50, seed=4, errors=0.0).head(live_rows), now=NOW)
    assert healthy.gates[0].status == "pass" and "compare_skipped" in healthy.gates[0].evidence


def test_a_comparison_alone_on_thin_live_is_insufficient_and_says_why(bundle: Any) -> None:
    version = only(bundle, {"name": "p99", "kind": "latency", "compare": "live", "max_ratio": 1.2})
    gate = evaluate(version, traffic(2_000, seed=3, slow=3.0), live=traffic(50, seed=4), now=NOW).gates[0]
    assert gate.status == "insufficient" and gate.evidence["reason"] == "50 live rows, 200 needed"


DROP_0 = "    max_decrease: 0\n"
LEVEL = 1 - (1 - 0.95) / 4  # each side's one-sided bound, so each end of the ratio holds at 0.975


@pytest.mark.parametrize("n", [50, 100, 200, 1_000])
def test_quantile_bounds_cover_on_heavy_tailed_latency_at_small_n(n: int) -> None:
    rng = np.random.default_rng(n)
    for q in (0.5, 0.95, 0.99):
        true = float(np.exp(norm.ppf(q)))  # lognormal(0, 1)'s quantile
        bounds = [comparison._quantile_with_bounds(rng.lognormal(0, 1, n), q, LEVEL) for _ in range(1_000)]
        below = np.mean([low <= true for _, low, _ in bounds])
        above = np.mean([high >= true for _, _, high in bounds])
        assert below >= LEVEL - 0.02 and above >= LEVEL - 0.02, (q, below, above)


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_identical_heavy_tailed_samples_of_fifty_never_fail(q: float) -> None:
    rng = np.random.default_rng(50)
    verdicts = [
        comparison.quantiles(rng.lognormal(0, 1, 50), rng.lognormal(0, 1, 50), q, "max_ratio", 1.2, 0.95).verdict
        for _ in range(1_000)
    ]
    assert "fail" not in verdicts


def test_the_lower_bound_holds_at_its_stated_one_sided_level() -> None:
    """The deciding bound is one-sided at (1 + c) / 2; the evidence says so and coverage agrees."""
    rng = np.random.default_rng(13)
    ratio = [comparison.quantiles(rng.lognormal(0, 1, 500), rng.lognormal(0, 1, 500), 0.95, "max_ratio", 1.2, 0.9)]
    ratio += [comparison.quantiles(rng.lognormal(0, 1, 500), rng.lognormal(0, 1, 500), 0.95, "max_ratio", 1.2, 0.9)
              for _ in range(999)]  # fmt: skip
    stated = ratio[0].evidence()["one_sided"]
    assert stated == pytest.approx(0.95)
    assert np.mean([c.ci[0] <= 1.0 for c in ratio]) >= stated - 0.02
    rates = [
        comparison.proportions(int(k), 800, int(m), 800, "max_increase", 0.01, 0.9)
        for k, m in zip(rng.binomial(800, 0.1, 2_000), rng.binomial(800, 0.1, 2_000), strict=True)
    ]
    assert np.mean([c.ci[0] <= 0.0 for c in rates]) >= stated - 0.02


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("max_ratio: 1.0", "max_ratio 1 would fail a candidate equal to live; use a ratio above 1 such as 1.2"),
        ("max_ratio: 0.9", "max_ratio 0.9 would fail a candidate equal to live; use a ratio above 1 such as 1.2"),
        ("max_increase: 0", "max_increase 0 would fail a candidate equal to live on noise; use a positive margin"),
    ],
)
def test_a_threshold_an_equal_candidate_would_break_is_refused_in_one_line(body: str, said: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_gates(f"gates:\n  - name: p99\n    kind: latency\n    compare: live\n    {body}\n")
    assert raised.value.message.startswith(f"gates.yaml line 5: gate 'p99': {said}"), raised.value.message
    assert "\n" not in str(raised.value)
    with pytest.raises(InvalidInput, match="max_decrease 0 would fail"):
        parse_gates("gates:\n  - name: a\n    kind: label_metric\n    metric: accuracy\n    compare: live\n" + DROP_0)


def test_slices_compared_with_live_share_the_error_budget(bundle: Any) -> None:
    version = only(
        bundle,
        {"name": "by-site", "kind": "slice", "by": "site", "metric": "accuracy", "compare": "live",
         "max_decrease": 0.05, "min_slice_samples": 100},
    )  # fmt: skip
    gate = evaluate(version, traffic(20_000, seed=6, west=0.6), live=traffic(20_000, seed=5), now=NOW).gates[0]
    assert gate.status == "fail" and gate.evidence["compared_slices"] == 2
    assert gate.evidence["slice_confidence"] == pytest.approx(0.975)
    assert [s["confidence"] for s in gate.evidence["slices"]] == pytest.approx([0.975, 0.975])


def test_only_a_pass_resets_a_failure_streak() -> None:
    failing = GateResult("errors", "error_rate", "rollback", "fail", 0.2, {"max": 0.05}, {"n": 500}, failure_limit=3)
    waiting = replace(failing, status="insufficient", observed=None, evidence={"reason": "80 samples, 200 needed"})
    streaks: dict[str, int] = {}
    seen = []
    for gate in (failing, waiting, failing, failing):
        tolerated, streaks = tolerate(GateReport("v", 500, decide([gate]), [gate]), streaks)
        seen.append(tolerated.decision)
    assert seen == ["inconclusive", "inconclusive", "inconclusive", "rollback"]
    passing = replace(failing, status="pass", observed=0.01)
    assert tolerate(GateReport("v", 500, "pass", [passing]), streaks)[1] == {}


def test_an_agreement_says_how_many_failed_requests_it_left_out(bundle: Any) -> None:
    live = traffic(2_000, seed=1, errors=0.0)
    shadow = live.assign(error=np.where(np.arange(2_000) < 30, "TimeoutError", None))
    version = only(bundle, {"name": "agrees", "kind": "agreement", "min": 0.95})
    gate = evaluate(version, shadow, live=live, now=NOW).gates[0]
    assert gate.evidence["excluded_failed"] == 30 and gate.evidence["n_paired"] == 1_970


def test_a_time_that_does_not_parse_is_counted_as_no_time_not_too_recent(bundle: Any) -> None:
    version = only(
        bundle, {"name": "acc", "kind": "label_metric", "metric": "accuracy", "min": 0.5, "label_delay": "1h"},
        min_samples=100,
    )  # fmt: skip
    old, young = (NOW - timedelta(hours=2)).isoformat(), (NOW - timedelta(minutes=5)).isoformat()
    times = [old] * 400 + [young] * 50 + ["last tuesday"] * 50
    gate = evaluate(version, traffic(500, seed=2, errors=0.0).assign(time=times), now=NOW).gates[0]
    assert gate.status == "pass", gate
    assert (gate.evidence["eligible"], gate.evidence["too_recent"], gate.evidence["no_time"]) == (400, 50, 50)


def test_one_gate_raising_cannot_blind_the_others(bundle: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> GateResult:
        raise ValueError("cannot read\nthe column")

    monkeypatch.setitem(gates._EVALUATORS, "latency", broken)
    version = only(
        bundle, {"name": "p99", "kind": "latency", "max_ms": 1000}, {"name": "errors", "kind": "error_rate", "max": 0.5}
    )
    report = evaluate(version, traffic(500, seed=1), now=NOW)
    p99, errors = report.gates
    assert p99.status == "insufficient" and p99.evidence == {
        "reason": "error: ValueError: cannot read the column",
        "error": True,
    }
    assert errors.status == "pass" and report.decision == "inconclusive"
    assert "p99: insufficient (error: ValueError: cannot read the column)" in report.summary()


def test_a_p99_on_three_hundred_rows_has_no_finite_upper_bound() -> None:
    """Too few rows above the 99th percentile for a bound: the interval is open, so nothing is supported."""
    values = np.asarray(pd.array(np.random.default_rng(1).lognormal(0, 1, 300), dtype="Float64"), dtype="float64")
    outcome = comparison.quantiles(values, values * 3, 0.99, "max_ratio", 1.2, 0.95)
    assert outcome.ci == (0.0, np.inf) and outcome.verdict == "pass"
