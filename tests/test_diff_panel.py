"""The readable diff: a data scientist compares two versions of a wine model (string classes, nullable
columns) whose gates, preprocessing code, features and training data all changed."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollbackkit.analysis.diff_distributions import side_by_side
from rollbackkit.bundle.schema import infer_features
from rollbackkit.ops.compare import MAX_DISTRIBUTIONS, describe, readable_diff
from rollbackkit.widgets._common import MAX_POINTS, points_in
from rollbackkit.widgets.schema_diff import SchemaDiffPanel, distributions_figure

from .rich_project import MARKUP, MOVED, rich_project
from .story import V2_GATES


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rich_project(tmp_path_factory)


def test_the_diff_reads_section_by_section_with_counts(repo: Path) -> None:
    readable = readable_diff("wine@v1.0.0", "wine@v1.1.0", repo)
    sections = {s.key: s for s in readable.sections}
    assert list(sections)[:6] == ["model", "features", "output", "gates", "serving", "preprocess"]
    assert sections["output"].count == 0 and sections["serving"].count == 0  # string classes kept

    gates = sections["gates"]
    new = {g["name"] for g in V2_GATES["gates"]}
    assert {p.title for p in gates.parts} >= new | {"file settings", "error-rate"}
    assert all(p.count >= 1 for p in gates.parts)
    assert gates.count == sum(p.count for p in gates.parts)
    added = [line for p in gates.parts if p.title in new for line in p.lines]
    assert {line.change for line in added} == {"added"}

    code = sections["preprocess"]
    assert code.count == 4 and 'fillna("none")' in code.code  # 1 line removed, 3 added
    assert [line.item for line in sections["features"].lines if line.change == "added"] == [MARKUP]

    # the moved feature first, binned on shared edges, v1.1.0's values to the right
    first = readable.distributions[0]
    assert first.name == MOVED and first.kind == "numeric" and len(first.labels) == 20
    mean = [np.dot(first.centres, shares) / sum(shares) for shares in (first.a, first.b)]
    assert mean[1] > mean[0] * 1.2
    assert abs(sum(first.a) - 1) < 1e-9 and abs(sum(first.b) - 1) < 1e-9


def test_the_panel_groups_collapses_and_shows_distributions_side_by_side(repo: Path) -> None:
    panel = SchemaDiffPanel("wine@v1.0.0", "wine@v1.1.0", repo)
    body = panel.title.value + panel.model.value + panel.features.value + panel.details.value
    for heading in ("Model (3)", "Features (", "Output contract (0)", "Gates (", "Serving config (0)"):
        assert heading in body, heading
    assert "Preprocessing code (4)</summary>" in body
    assert body.count("<details") >= 6 + len(panel.readable.sections[3].parts)  # type: ignore[union-attr]
    assert "rollbackkit-code-diff" in panel.details.value and "fillna(&quot;none&quot;)" in panel.details.value
    # a feature named like markup is text, and nothing is white on white (translucent tints only)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in panel.features.value
    assert "<script>" not in body and "#ffffff" not in body.lower() and "background:#" not in body
    assert "rollbackkit-feature-diff" in panel.features.value

    assert panel.figure_box.layout.display == "flex"
    names = {trace.name for trace in panel.figure.data}
    assert names == {"wine@v1.0.0", "wine@v1.1.0"}
    assert MOVED in panel.figure.layout.annotations[0].text
    assert points_in(panel.figure) <= MAX_POINTS

    panel.update("wine@v1.0.0", "wine@v1.0.0")
    assert "no differences" in panel.title.value and panel.figure_box.layout.display == "none"
    panel.update("wine@v1.0.0", "wine@v7.0.0")
    assert "rollbackkit-error" in panel.title.value and "v7.0.0" in panel.title.value
    assert "Traceback" not in panel.title.value


def test_a_wide_diff_bins_a_few_features_and_stays_under_the_points_cap(repo: Path) -> None:
    """500 features that all moved, 2,000 reference rows each: 12 small histograms, not 500."""
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(np.tile(rng.normal(size=(2000, 1)), 500), columns=[f"f{i}" for i in range(500)])
    base = describe("wine@v1.0.0", repo)

    def version(frame: pd.DataFrame, tag: str) -> object:
        reference = frame.add_prefix("input:")
        data = io.BytesIO()
        reference.to_parquet(data)
        schema = base.schema.model_copy(update={"features": infer_features(frame)})
        info = dataclasses.replace(base.info, tag=tag)
        return dataclasses.replace(base, info=info, schema=schema, _read=lambda role: data.getvalue())

    moved = wide * 3 + np.linspace(1, 5, 500)  # f499 moved most, f0 least
    a, b = version(wide, "wide@v1"), version(moved, "wide@v2")
    readable = readable_diff(a, b)  # type: ignore[arg-type]
    assert [d.name for d in readable.distributions] == [f"f{i}" for i in range(499, 487, -1)]  # most moved first
    assert readable.note == f"Showing the {MAX_DISTRIBUTIONS} most moved of 500 changed features."
    figure = distributions_figure(readable.distributions, "wide@v1", "wide@v2")
    assert 0 < points_in(figure) <= MAX_POINTS
    changes = len(readable.sections[1].lines)
    card = readable.diff.card()
    assert changes >= 1000 and f"Features ({changes})" in card.text() and f"... and {changes - 40} more" in card.text()
    assert len(card.text().splitlines()) < 120 and f"<summary>{changes - 40} more</summary>" in card.html()

    # a million reference rows become 20 numbers a side; categories: the top 15 and "(other)"
    big = side_by_side("x", pd.Series(rng.normal(size=1_000_000)), pd.Series(rng.normal(1, 1, 1_000_000)))
    assert big is not None and len(big.a) == len(big.b) == 20
    words = pd.Series(pd.array(rng.choice([f"c{i}" for i in range(40)] + [None], 5000), dtype="string"))
    cats = side_by_side("plan", words, words.iloc[:100])
    assert cats is not None and cats.kind == "categorical" and len(cats.labels) == 16 and cats.labels[-1] == "(other)"
    assert 0 < cats.missing[0] < 0.1 and abs(sum(cats.a) - 1) < 1e-9


def test_a_changed_column_list_says_what_was_added(repo: Path) -> None:
    """wine v1.1.0's column transformer takes one more column: the card says which, not two cut-off lists."""
    readable = readable_diff("wine@v1.0.0", "wine@v1.1.0", repo)
    text, body = readable.diff.card().text(), SchemaDiffPanel("wine@v1.0.0", "wine@v1.1.0", repo).model.value
    line = next(x for x in text.splitlines() if "columns[numeric]" in x)
    assert line.endswith(f"8 items -> 9 items, +{[MARKUP]!r}"), line
    assert "9 items, +[&quot;&lt;script&gt;" in body and "<script>" not in body


def test_moved_medians_alone_are_differences(repo: Path) -> None:
    """A retrain on new data with the same schema: the status counts the training-data section it shows."""
    d = readable_diff("wine@v1.0.0", "wine@v1.1.0", repo).diff
    only_data = dataclasses.replace(
        d, model=type(d.model)(), features=type(d.features)(), gates=[], preprocess_diff="", runtime=[], rows=(9, 9)
    )
    card = only_data.card()
    assert "Training data (2)" in card.text() and card.status == "2 changes"


def test_infinities_are_counted_apart_and_a_constant_keeps_its_value() -> None:
    d = side_by_side("x", pd.Series([1.5, 2.5, np.nan, np.inf]), pd.Series([-np.inf, 1.0, 2.0, 3.0]))
    assert d is not None and d.missing == (0.25, 0.0) and d.infinite == (0.25, 0.25)
    assert abs(sum(d.a) - 1) < 1e-9 and abs(sum(d.b) - 1) < 1e-9  # the bins: shares of finite values
    flat = side_by_side("visits", pd.Series([5.0] * 4), pd.Series([5.0, 5.0, None], dtype="Float64"))
    assert flat is not None and flat.labels == ["5"] and flat.a == flat.b == [1.0] and flat.missing[1] > 0
