"""Labels through a real server (``POST /labels``, ``rollbackkit labels ingest``) and without one.

A client scores requests, keeps the request ids (or its own keys) and sends the truth later;
the server stores it beside the rows it logged. With the server stopped, the CLI writes the
log file itself. Bad input is one line, exit 1, and nothing is stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd

from rollbackkit.serving.predlog.log import PredictionLog

from .conftest import live_records, run_cli
from .servers import TOKEN, running_server


def _labels_count(repo: Path) -> int:
    log = PredictionLog(repo / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        return int(log.query("SELECT count(*) AS n FROM labels")["n"][0])
    finally:
        log.close()


def _cli(repo: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli(*args, cwd=repo, env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN})
    return done.returncode, done.stdout, done.stderr


def test_labels_reach_a_running_server_by_request_id_and_by_key_and_the_log_without_one(
    served: Path, tmp_path: Path
) -> None:
    records = live_records(60, seed=5)
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        answers = [server.predict(records[i : i + 20], key=f"customer-{i // 20}").json() for i in range(0, 60, 20)]
        ids = [a["request_id"] for a in answers]
        url = f"{server.url}/labels"
        body = {"on": "request_id", "labels": [{"request_id": ids[0], "row": r, "label": r % 2} for r in range(20)]}

        assert httpx.post(url, json=body, timeout=30).status_code == 401
        wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 403 and wrong.json()["error"] == "The admin token is wrong."
        bad = {"on": "request_id", "labels": [{"request_id": ids[0], "label": "churned"}]}
        refused = httpx.post(url, json=bad, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert refused.status_code == 400, refused.text
        assert "label 'churned' is not one of the classes of churn@v1.0.0 (integers: 0, 1)" in refused.json()["error"]
        strict = {"on": "request_id", "labels": [{"key": "customer-0", "label": 1}]}
        mixed = httpx.post(url, json=strict, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert mixed.status_code == 400 and "labels[0] must have 'request_id'" in mixed.json()["error"]
        assert server.status()["refused"]["unauthorised"] == 2

        stored = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert stored.status_code == 200, stored.text
        assert {k: stored.json()[k] for k in ("received", "stored", "replaced", "unknown")} == {
            "received": 20, "stored": 20, "replaced": 0, "unknown": 0,
        }  # fmt: skip

        csv = tmp_path / "late.csv"
        pd.DataFrame({"key": ["customer-1", "customer-9"], "label": ["1", "0"]}).to_csv(csv, index=False)
        code, out, err = _cli(served, "labels", "ingest", str(csv), "churn", "--env", "prod", "--on", "key", "--json")
        assert code == 0, err
        through = json.loads(out)
        assert (through["stored"], through["unknown"], through["unknown_sample"]) == (20, 1, ["customer-9"])
        assert through["via"] == server.url

        window = server.admin("window", {"version": "v1.0.0"})
        assert window.status_code == 200, window.text

    again = tmp_path / "again.parquet"
    pd.DataFrame({"request_id": [ids[0], ids[2]], "row": [0, 19], "label": [1, 0]}).to_parquet(again)
    code, out, err = _cli(served, "labels", "ingest", str(again), "--env", "prod")  # NAME: the only bundle
    assert code == 0, err
    assert "received 2, stored 2, replaced 1, unknown 0" in out and "via the log file" in out
    log = PredictionLog(served / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        window = log.window("churn", "prod")
    finally:
        log.close()
    labels = dict(zip(zip(window["request_id"], window["row"], strict=True), window["label"], strict=True))
    assert labels[(ids[0], 0)] == 1 and labels[(ids[0], 1)] == 1 and labels[(ids[2], 19)] == 0
    assert labels[(ids[1], 5)] == 1 and labels[(ids[2], 0)] is None
    assert all(type(v) is int for v in window["label"] if v is not None)


def test_bad_label_files_are_one_line_and_store_nothing(logged: Path, tmp_path: Path) -> None:
    served = logged  # a log a real environment wrote (no server needed to refuse a file)
    log = PredictionLog(served / ".rollbackkit" / "local" / "predictions.duckdb")
    try:
        request_id = log.query("SELECT request_id FROM predictions WHERE key = 'before-0' LIMIT 1")["request_id"][0]
    finally:
        log.close()
    before = _labels_count(served)
    no_label = tmp_path / "no_label.csv"
    pd.DataFrame({"request_id": [request_id], "truth": [1]}).to_csv(no_label, index=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("request_id,label\n")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    good = tmp_path / "good.csv"
    pd.DataFrame({"request_id": [request_id], "label": [1]}).to_csv(good, index=False)
    cases = [
        ((str(no_label),), "The labels have no 'label' column (columns: request_id, truth)."),
        ((str(empty),), f"The labels file {empty} is empty."),
        ((str(header_only),), "There are no labels to store."),
        ((str(broken),), f"Cannot read labels from {broken}: "),
        ((str(tmp_path / "absent.csv"),), "There is no labels file"),
        ((str(good), "--on", "customer"), "Labels join on request_id or key, not 'customer'."),
        ((str(good), "--on", "key"), "The labels have no 'key' column"),
    ]
    for args, message in cases:
        code, out, err = _cli(served, "labels", "ingest", *args, "churn", "--env", "prod")
        assert code == 1, (args, out, err)
        assert err.count("\n") == 1 and message in err, (args, err)
    assert _labels_count(served) == before


def test_a_file_over_the_servers_row_limit_goes_in_chunks_and_a_bad_label_anywhere_sends_none(
    served: Path, tmp_path: Path
) -> None:
    records = live_records(2500, seed=8)
    with running_server(served, "churn", "prod", watchdog=3600, args=("--max-rows", "1000")) as server:
        ids = [server.predict(records[i : i + 1000]).json()["request_id"] for i in range(0, 2500, 1000)]
        rows = [(rid, r) for rid, n in zip(ids, (1000, 1000, 500), strict=True) for r in range(n)]
        truth = pd.DataFrame({"request_id": [r for r, _ in rows], "row": [n for _, n in rows]})
        bad = tmp_path / "bad.csv"
        truth.assign(label=["1"] * 2499 + ["churned"]).to_csv(bad, index=False)  # the last line: line 2,501
        code, out, err = _cli(served, "labels", "ingest", str(bad), "churn", "--env", "prod")
        assert code == 1 and err.count("\n") == 1, (out, err)
        assert "bad.csv line 2501: label 'churned' is not one of the classes of churn@v1.0.0" in err

        good = tmp_path / "good.csv"
        truth.assign(label=[str(r % 2) for _, r in rows]).to_csv(good, index=False)
        code, out, err = _cli(served, "labels", "ingest", str(good), "churn", "--env", "prod", "--json")
        assert code == 0, err
        done = json.loads(out)  # the server's limit, read from its refusal of 2,500 at once
        assert (done["received"], done["stored"], done["chunks"], done["rows_labelled"]) == (2500, 2500, 3, 2500)
        assert done["replaced"] == 0  # the bad file stored nothing: it was checked before the first chunk was sent

        args = ("labels", "ingest", str(good), "churn", "--env", "prod", "--chunk-rows", "600")
        code, out, err = _cli(served, *args)
        assert code == 0 and "stored 2,500, replaced 2,500" in out and "in 5 chunks" in out, (out, err)
    assert _labels_count(served) == 5000  # two ingests of 2,500, none of the bad file
