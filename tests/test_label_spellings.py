"""Labels spelled as pandas would guess missing values, with stray spaces, or given twice.

A severity model whose classes are "None", "NA" and "Severe" gets its truth from a CSV: every
class arrives (only an empty cell is no label), an id spelled "NA" joins its row, a hand-written
" Severe" is the class, and a file with two 'label' columns is refused before anything is stored.
A label sent as the non-JSON literal NaN is the client's 400, not a missing label.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from rollbackkit import Registry, ingest_labels
from rollbackkit.analysis.labels import coerce_labels
from rollbackkit.bundle.schema import OutputContract
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.traffic import deploy
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.predlog.log import PredictionLog

from .conftest import live_records, new_repo
from .servers import TOKEN, running_server

CLASSES = ["NA", "None", "Severe", "null", "N/A", "nan"]


def _log(repo: Path) -> PredictionLog:
    return PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")


@pytest.fixture(scope="module")
def severity(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """A text classifier whose classes are spelled like pandas' missing values, live in prod with
    requests "NA" (10 rows) and "req-1" (10 rows) logged."""
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(19)
    X = pd.DataFrame({"pain": rng.uniform(0, 10, 300), "age": rng.integers(18, 90, 300).astype("float64")})
    y = np.asarray(CLASSES)[np.minimum((X["pain"] // (10 / len(CLASSES))).astype(int), len(CLASSES) - 1)]
    repo = new_repo(tmp_path_factory.mktemp("spellings") / "project")
    registry = Registry.init(repo)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    registry.register("sev", model, X.assign(target=y), target="target", version="v1.0.0")
    deploy(repo, "sev@v1.0.0", "prod", reason="first")
    log = _log(repo)
    try:
        environment = ServingEnvironment(repo, "sev", "prod", log=log)
        environment.start()
        for i, request in enumerate(("NA", "req-1")):
            environment.predict(X.iloc[i * 10 : (i + 1) * 10], request_id=request)
    finally:
        log.close()
    return repo


def _labels(repo: Path) -> dict[tuple[str, int], object]:
    log = _log(repo)
    try:
        window = log.window("sev", "prod")
    finally:
        log.close()
    return {(r, n): v for r, n, v in zip(window["request_id"], window["row"], window["label"], strict=True)}


def test_classes_spelled_like_missing_values_all_arrive_from_a_csv(severity: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    labels = [CLASSES[i % len(CLASSES)] for i in range(10)]
    csv.write_text("request_id,row,label\n" + "".join(f"NA,{i},{v}\n" for i, v in enumerate(labels)) + "req-1,0,\n")

    done = ingest_labels(severity, "sev", "prod", csv)

    assert (done.received, done.stored, done.missing, done.unknown) == (11, 10, 1, 0)  # only the empty cell
    stored = _labels(severity)
    assert [stored[("NA", i)] for i in range(10)] == labels  # an id spelled "NA" joins its rows too
    assert stored[("req-1", 0)] is None


def test_a_hand_written_space_around_a_text_class_is_ignored(severity: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text('request_id,row,label\nreq-1,1," Severe"\nreq-1,2,"None  "\n')
    assert ingest_labels(severity, "sev", "prod", csv).stored == 2
    stored = _labels(severity)
    assert (stored[("req-1", 1)], stored[("req-1", 2)]) == ("Severe", "None")


def test_a_file_with_two_label_columns_is_refused_and_stores_nothing(severity: Path, tmp_path: Path) -> None:
    csv = tmp_path / "twice.csv"
    csv.write_text("request_id,label,label\nreq-1,Severe,NA\n")
    before = _labels(severity)
    with pytest.raises(InvalidInput, match="has 2 'label' columns") as caught:
        ingest_labels(severity, "sev", "prod", csv)
    assert "\n" not in caught.value.message and "twice.csv" in caught.value.message
    assert _labels(severity) == before


_OUTPUTS = {
    "text": OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "object"},
                           classes=[" padded", "no", "yes"], primary="prediction"),
    "bool": OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "bool"},
                           classes=["False", "True"], primary="prediction"),
    "int": OutputContract(kind="classification", columns=["prediction"], dtypes={"prediction": "int64"},
                          classes=["1", "2", "3"], primary="prediction"),
    "regressor": OutputContract(kind="regression", columns=["prediction"], dtypes={"prediction": "float64"},
                                primary="prediction"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "given", "wanted"),
    [
        ("text", [" yes", "no ", "\tyes\t", " padded"], ["yes", "no", "yes", " padded"]),
        ("bool", [" true", "FALSE ", " 1"], [True, False, True]),
        ("int", [" 2", "3 ", " 1.0 "], [2, 3, 1]),
        ("regressor", [" 151.5", "75 "], [151.5, 75.0]),
    ],
)
def test_surrounding_whitespace_is_ignored_for_every_kind_of_label(kind: str, given: list, wanted: list) -> None:
    got = coerce_labels(pd.Series(given, dtype=object), _OUTPUTS[kind], "labels.csv line").tolist()
    assert [(type(v), v) for v in got] == [(type(v), v) for v in wanted]


def test_post_labels_refuses_the_non_json_literal_nan(served: Path) -> None:
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        request_id = server.predict(live_records(2, seed=3)).json()["request_id"]
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        for literal in ("NaN", "Infinity"):
            body = f'{{"on": "request_id", "labels": [{{"request_id": "{request_id}", "label": {literal}}}]}}'
            answer = httpx.post(f"{server.url}/labels", content=body, headers=headers, timeout=30)
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == f"labels.0.label: {literal} is not JSON; send null for no label."
        null = f'{{"on": "request_id", "labels": [{{"request_id": "{request_id}", "label": null}}]}}'
        answer = httpx.post(f"{server.url}/labels", content=null, headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["missing"] == 1, answer.text
