"""A tracking store MLflow refuses stops ``import mlflow`` and ``register --model models:/...`` with one line.

MLflow 3 keeps a directory store (``./mlruns``) in maintenance mode: a directory passed as
``--tracking-uri`` used to end in "Unexpected error: MlflowException ... This is a bug".
"""

from __future__ import annotations

import socket
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
@pytest.mark.parametrize(
    "command",
    [["import", "mlflow", "iris"], ["register", "iris", "--model", "models:/iris/1"]],
    ids=["import", "register"],
)
def test_a_store_mlflow_refuses_is_one_line_and_imports_nothing(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    mentions: list[str],
    command: list[str],
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    runs = tmp_path / "mlruns"  # a team's old file store
    runs.mkdir()
    before = state(project)
    out = rollbackkit(*command, "--tracking-uri", store.replace("DIR", str(runs)), cwd=project)
    assert_one_clean_line(out, *[m.replace("DIR", str(runs)) for m in mentions])
    assert state(project) == before and list(runs.iterdir()) == []


def test_register_from_a_server_that_does_not_answer_is_one_line(project: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    before = state(project)
    out = rollbackkit("register", "iris", "--model", "models:/iris@champion", "--tracking-uri", closed, cwd=project)
    assert_one_clean_line(out, f"Cannot reach the MLflow tracking server at {closed}", "curl")
    assert state(project) == before
