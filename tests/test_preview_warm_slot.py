"""A rollback preview next to a running server: the warm slot holding the target scores the rows and
the notebook never loads the target's bundle (before, the preflight loaded it a second time).

A regressor (diabetes, a decision threshold on its prediction): v1.0.0 served, then v1.1.0 took all
traffic through the server, so v1.0.0 is the warm standby the rollback would go back to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rollbackkit.bundle.runtime import RuntimeFinding, RuntimeReport
from rollbackkit.ops.preview import preview_rollback
from rollbackkit.ops.slot_scoring import _scores
from rollbackkit.serving.openapi import openapi_document
from rollbackkit.serving.wire import encode_frame
from rollbackkit.widgets.preview import summary_html

from .servers import TOKEN, Server, running_server
from .story import Case, build_project, records

CASE = Case("diabetes-regressor", "diabetes", "float", regressor=True)
THRESHOLD = 150.0  # above the constant (the median, about 140), inside the tree's leaves


def _fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> Any:
    """15: the median; 40: a depth-2 tree on the second input."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeRegressor

    if rounds == 15:
        return DummyRegressor(strategy="median").fit(X, y)
    pick = ColumnTransformer([("one", "passthrough", [X.columns[1]])])
    return make_pipeline(pick, DecisionTreeRegressor(max_depth=2, random_state=0)).fit(X, y)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Iterator[tuple[Path, Server]]:
    """v1.1.0 live after 300 answered rows, v1.0.0 warm in standby."""
    repo, live = build_project(tmp_path_factory.mktemp("preview-slot"), _fit, CASE)
    with running_server(repo, "model", "prod", watchdog=3600) as server:
        deployed = server.admin("deploy", {"version": "v1.1.0", "reason": "the tree"})
        assert deployed.status_code == 200, deployed.text
        for i in range(0, 300, 50):
            assert server.predict(records(live.iloc[i : i + 50])).status_code == 200
        yield repo, server


def test_the_warm_standby_scores_the_preview_without_loading_the_bundle(
    served: tuple[Path, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = served
    monkeypatch.setenv("ROLLBACKKIT_ADMIN_TOKEN", TOKEN)

    def refuse(*_: Any) -> Any:
        raise AssertionError("the preview loaded the target's bundle although a warm slot holds it")

    with monkeypatch.context() as patched:
        patched.setattr("rollbackkit.ops.preview_parts.Target.bundle", refuse)
        warm = preview_rollback(repo, "model", "prod", threshold=THRESHOLD)
    monkeypatch.setattr("rollbackkit.serving.bodies.MAX_SCORE_ROWS", 100)  # the 300-row sample: loaded here
    loaded = preview_rollback(repo, "model", "prod", threshold=THRESHOLD)
    assert loaded.loaded and loaded.where.startswith("loaded bundle")
    assert not warm.loaded and warm.where.startswith("warm standby slot")
    assert (warm.from_version, warm.to_version, warm.n) == ("v1.1.0", "v1.0.0", 300)
    assert warm.flip_share == loaded.flip_share and warm.slices == loaded.slices and warm.flip_share
    # the same preflight verdict and adaptation, the slot's warm-up standing in for the golden-sample parity
    assert warm.preflight is not None and loaded.preflight is not None
    assert (warm.verdict, warm.adaptation) == (loaded.verdict, loaded.adaptation) and warm.preflight.parity is None
    assert warm.to_dict()["loaded"] is False and "Scored with the warm standby slot" in summary_html(warm)
    assert "Not checked" in str(warm.note) and "Not checked" not in str(loaded.note)  # parity: said
    # the runtime's findings are the slot's own (its server runs this venv: the same as loaded here)
    assert warm.preflight.runtime.findings and warm.preflight.runtime == loaded.preflight.runtime
    assert "the runtime's findings are the slot's" in str(warm.note)


@pytest.mark.parametrize(
    "finding",
    [
        {"library": "numpy", "registered": "1.26.4", "here": "2.1.0", "severity": "warning"},  # no detail
        {"library": "numpy", "registered": "1.26.4", "here": "2.1.0", "severity": "fatal", "detail": "?"},
    ],
    ids=["missing-detail", "unknown-severity"],
)
def test_a_runtime_finding_a_newer_server_words_otherwise_leaves_the_scores_and_unchecks_the_runtime(
    finding: dict[str, Any],
) -> None:
    fine = {"library": "python", "registered": "3.11.9", "here": "3.11.9", "severity": "info", "detail": "same"}
    answer = {
        "version": "v1.0.0", "bundle_id": "sha256:x", "slot": "standby", "role": "standby", "deployment": "d",
        "outputs": encode_frame(pd.DataFrame({"prediction": [151.5, 98.0]})),
        "adaptation": {"drop": [], "reorder": False, "casts": {}}, "batches": 1, "score_ms": 3.0,
    }  # fmt: skip
    scored = _scores(answer | {"runtime": [fine, finding]}, "http://127.0.0.1:1")
    assert scored.outputs["prediction"].tolist() == [151.5, 98.0] and scored.runtime is None  # SLOT_UNCHECKED
    assert _scores(answer | {"runtime": [fine]}, "http://127.0.0.1:1").runtime == RuntimeReport(
        (RuntimeFinding("python", "3.11.9", "3.11.9", "info", "same"),)
    )


def test_the_api_document_says_the_score_answer_carries_the_slots_runtime() -> None:
    answer = openapi_document("model", "prod")["paths"]["/admin/score"]["post"]["responses"]["200"]
    assert "runtime (the slot's runtime findings" in answer["description"]
