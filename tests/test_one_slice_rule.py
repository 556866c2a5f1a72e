"""One slice rule and one label spelling in every panel.

The rollback preview, the drift log's ``by`` slices and the diff's category bars name the
missing and the rest slices the same way, keep the most frequent values by one top-N rule
(ties by text, so a replica answers the same), and spell a label as the labels do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rollbackkit.analysis.diff_distributions import side_by_side
from rollbackkit.analysis.drift_series import categorical_binning, category_text
from rollbackkit.analysis.preview import flipped, slice_labels, transitions
from rollbackkit.analysis.series import as_labels, label_text
from rollbackkit.analysis.slices import MISSING, OTHER, top_values
from rollbackkit.serving.predlog.binned_answer import answer
from rollbackkit.serving.predlog.binning import BinRequest, label_sql, output_sql


def test_the_preview_the_drift_log_and_the_diff_keep_the_same_top_slices_and_name_the_rest_alike() -> None:
    plans = pd.Series(["b", "a", None, "a", "b", None, "d", "c"], dtype="string")  # a, b, missing tie at 2 rows
    assert top_values(plans.value_counts(), 2) == ["a", "b"]  # ties by text, whatever order they came in
    assert slice_labels(plans, limit=3).tolist() == ["b", "a", MISSING, "a", "b", MISSING, OTHER, OTHER]

    req = BinRequest.of("m", "prod", "x", [0.0, 1.0], None, None, 1, "plan", None, False)
    values = pd.Series([f"p{i:02d}" for i in range(14)] * 2 + [None] * 3, dtype="string")
    groups = pd.DataFrame({"s": values.tolist(), "w": 0, "b": 0.0, "n": 1, "total": 0.5})
    log_slices = answer(req, groups, 0, 1)["slices"]  # the drift log keeps 12 slices, the preview 30: one rule
    kept = top_values(values.fillna(MISSING).value_counts(), 12)
    assert log_slices == [*sorted(kept), OTHER] and MISSING in kept
    assert set(slice_labels(values, limit=12)) == {*kept, OTHER}

    many = pd.Series([f"v{i:02d}" for i in range(20)] * 2)
    bars = side_by_side("plan", many, many)
    assert bars is not None and bars.labels[-1] == OTHER and bars.labels[:2] == ["v00", "v01"]


def test_a_boolean_label_reads_the_same_in_the_drift_log_the_reference_and_the_preview() -> None:
    import duckdb

    before = pd.Series([True, False, pd.NA, True], dtype="boolean")
    after = np.array([False, False, True, True], dtype=object)
    assert [t.before for t in transitions(before, after)] == ["True"] == [label_text(True)]
    assert as_labels(before).tolist()[:2] == ["True", "False"] == [category_text(True), category_text(np.False_)]
    assert categorical_binning(before).categories == ("True", "False")  # the drift panel's bins and legend

    con = duckdb.connect()  # the drift log's SQL spells a typed boolean and a JSON boolean output alike
    con.execute("""CREATE TABLE r AS SELECT * FROM (VALUES (true, 'true', '{"churn": true}'),
                   (false, 'false', '{"churn": "false"}')) v(member, text, outputs)""")
    texts = [label_sql("member", "duckdb"), label_sql("text", "duckdb"), output_sql("churn", "duckdb", label=True)]
    row = f"SELECT {', '.join(texts)}"
    assert con.execute(f"{row} FROM r").fetchall() == [("True", "true", "True"), ("False", "false", "false")]
    assert flipped([1.0, 2.0], [1, "2"]).tolist() == [False, False]  # 1.0 from a log with gaps is class 1
