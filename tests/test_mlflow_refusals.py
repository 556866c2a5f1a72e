"""A tracking store MLflow refuses stops ``import mlflow`` with one line saying what to do.

MLflow 3 keeps a directory store (``./mlruns``) in maintenance mode: a directory passed as
``--tracking-uri`` used to end in "Unexpected error: MlflowException ... This is a bug".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize(
    ("store", "mentions"),
    [
        ("DIR", ["MLflow refused the tracking store DIR", "maintenance mode", "MLFLOW_ALLOW_FILE_STORE=true"]),
        ("file://DIR", ["maintenance mode", "sqlite:///PATH/mlflow.db"]),
        ("nosuch://host/x", ["unsupported URI 'nosuch://host/x'", "Check --tracking-uri"]),
    ],
)
def test_a_store_mlflow_refuses_is_one_line_and_imports_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, mentions: list[str]
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    runs = tmp_path / "mlruns"  # a team's old file store
    runs.mkdir()
    before = state(project)
    out = rollbackkit("import", "mlflow", "iris", "--tracking-uri", store.replace("DIR", str(runs)), cwd=project)
    assert_one_clean_line(out, *[m.replace("DIR", str(runs)) for m in mentions])
    assert state(project) == before and list(runs.iterdir()) == []
