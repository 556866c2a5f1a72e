"""Rich objects: what a data scientist holds at the end of a cell renders as a readable card, in
JupyterLab (text/html) and in a terminal (text/plain), safely, compactly, without secrets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.analysis.gateresult import GateReport, GateResult
from rollbackkit.analysis.gates import evaluate
from rollbackkit.analysis.preflight import combine
from rollbackkit.bundle.compat import check
from rollbackkit.bundle.schema import EstimatorView, OutputContract, Schema, infer_features
from rollbackkit.cards import HIDDEN, Badge, Card, Section
from rollbackkit.ops.runbook_record import RunbookRecord, executed
from rollbackkit.ops.runbooks import RunbookResult
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.repository import Repository

from .rich_project import MARKUP, MOVED, WINE, rich_project
from .story import BAD_SEGMENT, SEGMENT, widened

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rich_project(tmp_path_factory)


def shown(obj: Any) -> tuple[str, str]:
    """What IPython would display: (text/html, text/plain)."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)
    return data["text/html"], data["text/plain"]


def safe(html: str) -> None:
    """No live markup from values, and no colour that vanishes on a light or a dark theme."""
    assert "<script" not in html.lower() and "onerror=" not in html
    assert "color:white" not in html.replace(" ", "") and "background:#fff" not in html.lower()
    cells = html.count("<td")
    assert html.count("<td style='") == cells and html.count("text-align:left") >= cells, (
        "JupyterLab right-aligns cells"
    )


def test_a_loaded_bundle_with_string_classes_and_a_regressor_read_as_cards(repo: Path) -> None:
    registry = Registry(repo)
    wine = registry.load("wine@v1.1.0")
    html, text = shown(wine)
    assert text.splitlines()[0] == "wine@v1.1.0 [loaded]"
    for said in ("classification, primary prediction", "class_0, class_1, class_2", "Features (12)", "Gates (2)"):
        assert said in text and said in html, said
    assert "segment-drift" in html and "preprocess.py (8 lines)" in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and MARKUP in text  # a feature named like markup
    safe(html)
    assert repr(wine).startswith("LoadedBundle(")  # repr() stays the dataclass's own

    dose_html, dose_text = shown(registry.describe("dose@v1.0.0"))
    assert "dose@v1.0.0 [described]" in dose_text and "regression, primary prediction" in dose_text
    assert "classes" not in dose_text and "rollbackkit-bundle-card" in dose_html
    info_html, info_text = shown(wine.info)
    assert info_text.startswith("wine@v1.1.0") and "author" in info_text and wine.info.commit[:12] in info_html


def test_a_wide_frame_shows_counts_and_a_folded_list_not_500_rows(repo: Path) -> None:
    description = Registry(repo).describe("wine@v1.0.0")
    wide = pd.DataFrame(np.zeros((3, 500)), columns=[f"sensor_{i}" for i in range(500)]).assign(
        site=pd.Categorical(["a", "b", "c"])
    )
    schema = description.schema.model_copy(update={"features": infer_features(wide)})
    html, text = shown(dataclasses.replace(description, schema=schema))
    assert "Features (501)" in html and "500 float, 1 category" in text
    assert "and 461 more</summary>" in html and "... and 461 more" in text
    assert html.count("<tr") < 25 and len(text.splitlines()) < 30 and len(html) < 12_000


def test_a_gate_report_with_a_failing_slice_says_where(repo: Path) -> None:
    registry = Registry(repo)
    bundle = registry.load("wine@v1.1.0")
    inputs = widened(WINE, 3000, seed=9).drop(columns=["target"])
    inputs = inputs.assign(**{MOVED: inputs[MOVED] * 1.3, MARKUP: inputs["visits"].astype("float64") * 2})
    bad = inputs[SEGMENT] == BAD_SEGMENT  # one segment's upstream halves three measurements
    inputs.loc[bad, ["malic_acid", "ash", "magnesium"]] *= 0.5
    answers = bundle.score_features(bundle.preprocess(inputs.copy()))
    window = pd.concat([inputs, answers], axis=1).assign(latency_ms=4.0, error=None)
    report = evaluate(bundle, window)
    html, text = shown(report)
    assert report.decision == "rollback" and text.splitlines()[0] == "Gates for wine@v1.1.0 [rollback]"
    assert f"in {SEGMENT}={BAD_SEGMENT}" in text and "segment-drift: slices (4)" in text
    assert f"{SEGMENT}={BAD_SEGMENT} (worst)" in html and "rollbackkit-fail" in html
    safe(html)


def test_cards_escape_every_value_they_show() -> None:
    result = GateResult(SCRIPT, "slice", "rollback", "fail", 0.9, {"max": 0.5}, {"worst_slice": {"seg": SCRIPT}})
    html, text = shown(GateReport(f"m@{SCRIPT}", 10, "rollback", [result]))
    safe(html)
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3 and SCRIPT in text
    html = Card(SCRIPT, status=SCRIPT, fields=[(SCRIPT, SCRIPT)], sections=[]).html()
    safe(html)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1))
def test_no_value_adds_markup_to_a_card(value: str) -> None:
    def tags(v: str) -> int:
        card = Card(v, status="pass", fields=[("k", v)], sections=[Section(v, rows=[(v, Badge("fail"))], count=1)])
        return card.html().count("<")

    assert tags(value) == tags("x")


def schema_of(frame: pd.DataFrame) -> Schema:
    return Schema(
        features=infer_features(frame),
        estimator=EstimatorView(type="sklearn.linear_model.LogisticRegression"),
        output=OutputContract(
            kind="classification", columns=["prediction"], dtypes={}, classes=["no", "yes"], primary="prediction"
        ),
        n_rows=len(frame),
    )


def test_an_incompatible_preflight_lists_what_is_missing() -> None:
    trained = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 52)), columns=[f"x{i}" for i in range(52)])
    live = trained.iloc[:, :47]
    compat = check(schema_of(trained), live)
    report = combine("model@v2.0.0", "model@v1.0.0", compat, None, [])
    html, text = shown(report)
    assert text.splitlines()[0] == "Preflight model@v2.0.0 (consumers of model@v1.0.0) [incompatible]"
    assert "5 incompatible" in text and "Findings (5)" in text
    assert all(f"x{i}" in html for i in range(47, 52)) and "rollbackkit-incompatible" in html
    compat_html, compat_text = shown(compat)
    assert "Compatibility check [incompatible]" in compat_text and "Findings (5)" in compat_html
    safe(html)


def test_a_diff_with_other_gates_and_code_reads_as_a_card(repo: Path) -> None:
    from rollbackkit.ops.compare import diff

    html, text = shown(diff("wine@v1.0.0", "wine@v1.1.0", repo))
    assert text.splitlines()[0].startswith("wine@v1.0.0 → wine@v1.1.0 [")
    assert "Gates (6)" in text and "+ segment-drift: slice psi <= 0.5 by region, rollback" in text
    assert "Preprocessing code (4)" in html and "rollbackkit-code-diff" in html
    safe(html)


def test_runbook_records_are_typed_and_still_read_like_dicts(repo: Path, tmp_path: Path) -> None:
    journal = Journal(Repository(repo).paths.journal)
    entry = {"notebook": f"audit/runbooks/{SCRIPT}.ipynb", "template": "rollback", "status": "succeeded"}
    journal.append("runbook", **entry, verdict="rolled back", incident="INC-7", sha256="ab" * 32, seconds=12.5)
    record = executed(repo)[-1]
    assert isinstance(record, RunbookRecord) and record.template == "rollback" and record["incident"] == "INC-7"
    assert record["time"] == record.time and record.get("missing") is None and dict(record)["seconds"] == 12.5
    assert json.loads(json.dumps(record.to_dict()))["verdict"] == "rolled back"
    html, text = shown(record)
    assert text.splitlines()[0] == "Runbook rollback [succeeded]" and "INC-7" in text and "12.5 s" in text
    safe(html)

    run = RunbookResult(
        tmp_path / "rollback.ipynb",
        "cd" * 32,
        "failed",
        "unknown",
        {"webhook_token": "s3cr3t", "store": "postgresql://ops:hunter2@db/log", "flipped": 0.12},
        error="KeyError: 'x'",
    )
    html, text = shown(run)
    assert "s3cr3t" not in html + text and "hunter2" not in html + text and HIDDEN in text
    assert "Runbook rollback [failed]" in text and "KeyError" in html and "result flipped" in text


def test_a_real_kernel_displays_both_mimetypes(repo: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="rollbackkit")
    results: list[dict[str, Any]] = []
    try:
        for code in (
            f"from rollbackkit import Registry\nregistry = Registry({str(repo)!r})\nregistry.load('wine@v1.0.0')",
            "from rollbackkit.ops.compare import diff\ndiff('wine@v1.0.0', 'wine@v1.1.0', registry.root)",
            "import pandas as pd\nfrom rollbackkit.analysis.gates import evaluate\n"
            "evaluate(registry.load('wine@v1.1.0'), pd.DataFrame())",
        ):
            reply = kc.execute_interactive(
                code,
                timeout=60,
                output_hook=lambda m: (
                    results.append(m["content"]["data"]) if m["msg_type"] == "execute_result" else None
                ),
            )
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    bundle, changes, report = results
    assert bundle["text/plain"].startswith("wine@v1.0.0 [loaded]") and "Features (11)" in bundle["text/plain"]
    assert "rollbackkit-bundle-card" in bundle["text/html"] and "class_0, class_1, class_2" in bundle["text/html"]
    assert (
        changes["text/plain"].startswith("wine@v1.0.0 → wine@v1.1.0")
        and "rollbackkit-diff-card" in changes["text/html"]
    )
    assert (
        report["text/plain"].startswith("Gates for wine@v1.1.0 [inconclusive]") and "no traffic" in report["text/plain"]
    )
    assert "rollbackkit-gate-card" in report["text/html"] and "rollbackkit-inconclusive" in report["text/html"]


def test_panels_use_the_cards_palette_and_words() -> None:
    """One palette (translucent tints, the theme's text colour) and one way to say a bound."""
    from rollbackkit.analysis.diffsections import gate_summary
    from rollbackkit.widgets._common import badge
    from rollbackkit.widgets.gate_evidence import WORST_SLICE_ROW, bound
    from rollbackkit.widgets.versions import SERVING_ROW

    for html in (SERVING_ROW, WORST_SLICE_ROW, badge("fail"), badge("pass"), badge("skipped")):
        safe(html)
        assert "rgba(" in html and "background:#" not in html.replace(" ", ""), html
    spec = {"kind": "latency", "quantile": 0.99, "max_ms": 250.0, "severity": "rollback"}
    assert gate_summary(spec) == "latency 0.99 <= 250 ms, rollback" and bound({"max_ms": 250.0}) == "<= 250 ms"
