"""Diffs between versions, and feature parity against the code now in the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.analysis.diff import diff_features
from rollbackkit.analysis.diffreport import Change
from rollbackkit.bundle.schema import infer_features
from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, NEW_FEATURES, TARGET, churn_frame, churn_pipeline
from rollbackkit.ops.compare import diff

from .conftest import git, run_cli

KINDS = st.sampled_from(["float", "int", "str", "bool"])


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Small frames with random names, kinds, nulls and values."""
    names = draw(st.lists(st.sampled_from(list("abcdefgh")), min_size=1, max_size=6, unique=True))
    rows = draw(st.integers(1, 12))
    data = {}
    for name in names:
        kind = draw(KINDS)
        if kind == "float":
            values = draw(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=rows, max_size=rows))
            data[name] = pd.Series(values, dtype="float64")
        elif kind == "int":
            data[name] = pd.Series(draw(st.lists(st.integers(-1000, 1000), min_size=rows, max_size=rows)))
        elif kind == "str":
            data[name] = pd.Series(draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=rows, max_size=rows)))
        else:
            data[name] = pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    return pd.DataFrame(data)


@settings(max_examples=150, deadline=None)
@given(frames())
def test_a_schema_diffed_with_itself_is_empty(frame: pd.DataFrame) -> None:
    features = infer_features(frame)
    assert diff_features(features, features).empty


@settings(max_examples=150, deadline=None)
@given(frames(), frames())
def test_diff_b_to_a_mirrors_diff_a_to_b(a: pd.DataFrame, b: pd.DataFrame) -> None:
    fa, fb = infer_features(a), infer_features(b)
    forward, backward = diff_features(fa, fb), diff_features(fb, fa)
    assert forward.added == backward.removed and forward.removed == backward.added
    assert forward.reordered == backward.reordered
    assert sorted(forward.changed, key=repr) == sorted((c.flipped() for c in backward.changed), key=repr)
    assert all(isinstance(c, Change) and c.before != c.after for c in forward.changed)


@pytest.fixture
def churn_repo(project: Path) -> Path:
    churn = churn_frame(2000, seed=3)
    registry = Registry(project)
    registry.register(
        "churn",
        churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], churn[TARGET]),
        churn[[*BASE_FEATURES, TARGET]],
        target=TARGET,
        version="v1.0.0",
    )
    registry.register(
        "churn",
        churn_pipeline(ALL_FEATURES).fit(churn[ALL_FEATURES], churn[TARGET]),
        churn[[*ALL_FEATURES, TARGET]],
        target=TARGET,
        version="v1.1.0",
        serving={"predict": "auto", "batch_size": 256, "timeout_ms": 1000, "warmup": "golden"},
    )
    return project


def test_diff_between_47_and_52_feature_versions(churn_repo: Path) -> None:
    result = diff("churn@v1.0.0", "churn@v1.1.0", repo=churn_repo)
    assert result.features.added == NEW_FEATURES
    assert result.features.removed == [] and not result.features.reordered
    assert [(c.name, c.before, c.after) for c in result.serving] == [("batch_size", 1024, 256)]
    assert not result.preprocess_changed and result.gates == []
    assert "+ 5 feature(s) added: app_sessions_30d" in result.to_text()
    assert "#1a7f37" in result.to_html()  # added features in green
    assert diff("churn@v1.0.0", "churn@v1.0.0", repo=churn_repo).empty

    backward = json.loads(run_cli("diff", "churn@v1.1.0", "churn@v1.0.0", "--json", cwd=churn_repo).stdout)
    assert backward["features"]["removed"] == NEW_FEATURES
    assert backward["serving"] == [{"name": "batch_size", "field": "value", "from": 256, "to": 1024}]
    assert set(backward) >= {"from", "to", "features", "output", "serving", "preprocess_changed", "gates"}


FEATURES_PY = """import numpy as np
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["charge_per_month"] = frame["total_charges"] / frame["tenure_months"]
    out["log_usage"] = np.log1p(frame["usage_week_01"])
    return out
"""

REFORMATTED_PY = '''"""Feature engineering (reformatted, same values)."""
import numpy as np
import pandas as pd

def preprocess(frame:pd.DataFrame)->pd.DataFrame:
    # same features, written differently
    result = frame.copy()
    result["charge_per_month"] = (frame["total_charges"]
                                  / frame["tenure_months"])
    result["log_usage"] = np.log1p(frame["usage_week_01"])
    return result
'''


def test_parity_flags_a_changed_feature_by_name_and_ignores_reformatting(project: Path) -> None:
    churn = churn_frame(2000, seed=4)
    code = project / "src" / "features.py"
    code.parent.mkdir()
    code.write_text(FEATURES_PY)
    git(project, "add", "src/features.py")
    git(project, "commit", "-qm", "feature code")
    namespace: dict = {}
    exec(FEATURES_PY, namespace)
    model = churn_pipeline([*BASE_FEATURES, "charge_per_month", "log_usage"])
    model.fit(namespace["preprocess"](churn[BASE_FEATURES]), churn[TARGET])
    registry = Registry(project)
    registry.register("churn", model, churn[[*BASE_FEATURES, TARGET]], target=TARGET, preprocess=code, version="v1.0.0")
    assert registry.manifest("churn@v1.0.0").registration.preprocess_origin == "src/features.py"
    assert registry.parity("churn@v1.0.0").ok

    code.write_text(REFORMATTED_PY)
    report = registry.parity("churn@v1.0.0")
    assert report.ok and report.code == "src/features.py"
    assert diff("churn@v1.0.0", "churn@v1.0.0", repo=project).empty

    code.write_text(FEATURES_PY.replace("np.log1p(", "np.log2(1 + "))
    report = registry.parity("churn@v1.0.0")
    assert not report.ok
    assert report.mismatched == ["log_usage"]
    cli = run_cli("parity", "churn@v1.0.0", "--json", cwd=project)
    assert cli.returncode == 1
    body = json.loads(cli.stdout)
    assert [c["column"] for c in body["features"] if not c["ok"]] == ["log_usage"]
    preflight = registry.preflight("churn@v1.0.0")
    assert [(f.column, f.kind, f.severity) for f in preflight.findings] == [("log_usage", "feature_parity", "warning")]
