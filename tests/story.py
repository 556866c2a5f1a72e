"""The on-call's whole story against a real server, shared by the model-kind and flavor tests.

Given a project with ``model@v1.0.0`` serving prod and ``model@v1.1.0`` registered with a
segment-drift slice gate (:data:`V2_GATES`), and live inputs with a :data:`SEGMENT`
column: serve with the prediction log, start a canary, degrade one segment, let the
watchdog roll back, list the affected rows the runbook backfilled, check parity, diff the
versions and verify the audit trail. Every step goes through the CLI and the HTTP API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from rollbackkit import Registry
from rollbackkit.ops.runbook_record import executed
from rollbackkit.ops.traffic import deploy
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository

from .conftest import new_repo, run_cli
from .servers import TOKEN, running_server

SEGMENT = "region"
BAD_SEGMENT = "west"
ROWS_PER_REQUEST = 50
V2_GATES = {
    "min_samples": 100,
    "gates": [
        {"name": "errors", "kind": "error_rate", "max": 0.05},
        {"name": "segment-drift", "kind": "slice", "by": SEGMENT, "metric": "psi", "max": 0.5},
    ],
}


@dataclass(frozen=True)
class Case:
    """One kind of model: its dataset, how labels are made, and what an answer looks like."""

    name: str
    dataset: str
    labels: str  # "names", "bool", "int" or "float"
    regressor: bool = False

    def answer_type(self) -> type:
        return {"names": str, "bool": bool, "int": int, "float": float}[self.labels]


def _bundled(case: Case) -> tuple[pd.DataFrame, pd.Series]:
    """Six numeric features of the bundled dataset (names with spaces kept) and the labels."""
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{case.dataset}")(as_frame=True)
    features = loaded.frame[loaded.feature_names[:6]]
    target = loaded.frame["target"]
    if case.labels == "names":
        labels = pd.Series(np.asarray(loaded.target_names)[target.to_numpy()], name="target")
    elif case.labels == "bool":
        labels = target.astype(bool)
    elif case.labels == "int":
        labels = target.astype("int64")
    else:
        labels = target.astype("float64")
    return features, labels.rename("target")


def widened(case: Case, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows resampled from the dataset, with the columns real tables have, and the target."""
    features, labels = _bundled(case)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(features), rows)
    frame = features.iloc[pick].reset_index(drop=True)
    frame = frame * rng.normal(1.0, 0.02, frame.shape)  # resampled, not copied
    first = frame.columns[0]
    frame.loc[rng.random(rows) < 0.05, first] = np.nan
    frame["visits"] = pd.array(rng.poisson(3, rows), dtype="Int64")
    frame.loc[rng.random(rows) < 0.05, "visits"] = pd.NA
    frame["promo"] = pd.array(rng.random(rows) < 0.3, dtype="boolean")
    frame.loc[rng.random(rows) < 0.05, "promo"] = pd.NA
    frame["plan"] = pd.array(rng.choice(["basic", "plus", "pro"], rows), dtype="string")
    frame.loc[rng.random(rows) < 0.05, "plan"] = pd.NA
    frame[SEGMENT] = pd.Categorical(rng.choice(["north", "south", "east", BAD_SEGMENT], rows))
    frame["signup"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    frame["target"] = labels.iloc[pick].to_numpy()
    return frame


PREPROCESS = """\
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"The feature logic shipped in the bundle: a missing plan is a plan of its own.\"\"\"
    return frame.assign(plan=frame["plan"].astype("string").fillna("missing").astype(object))
"""


def build_project(
    root: Path,
    fit: Callable[[pd.DataFrame, pd.Series, int], Any],
    case: Case,
    *,
    preprocess: str = PREPROCESS,
    rounds: tuple[int, int] = (15, 40),
) -> tuple[Path, pd.DataFrame]:
    """A project with ``model@v1.0.0`` serving prod and ``model@v1.1.0`` registered with :data:`V2_GATES`.

    Args:
        root: An empty directory (the project is ``root/project``, the feature logic ``root/features.py``).
        fit: ``fit(X, y, rounds)``: the model trained on the preprocessed features: an object,
            or the path of a model file or directory it saved.
        case: The dataset and the kind of labels (:func:`widened`).
        preprocess: The bundle's feature logic (a ``preprocess(frame)`` module's text).
        rounds: The rounds of v1.0.0 and v1.1.0.

    Returns:
        The project and 4,000 rows of live inputs (no target).
    """
    repo = new_repo(root / "project", case.name)
    registry = Registry.init(repo)
    train, held_out = widened(case, 1500, seed=1), widened(case, 800, seed=2)
    features = root / "features.py"
    features.write_text(preprocess)
    namespace: dict[str, Any] = {}
    exec(preprocess, namespace)
    X, y = namespace["preprocess"](train.drop(columns=["target"])), train["target"]
    for version, n, gates in (("v1.0.0", rounds[0], None), ("v1.1.0", rounds[1], V2_GATES)):
        registry.register(
            "model", fit(X, y, n), train, target="target", version=version, validation_data=held_out,
            preprocess=features, gates=gates,
        )  # fmt: skip
    deploy(repo, "model@v1.0.0", "prod", reason="first release")  # in-process: the story's own steps use the CLI
    return repo, live_inputs(case)


def live_inputs(case: Case) -> pd.DataFrame:
    """The 4,000 rows of live inputs (no target) :func:`build_project` returns for ``case``."""
    return widened(case, 4000, seed=3).drop(columns=["target"])


def degraded(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """The bad segment's numeric inputs drift far out of range (an upstream unit change)."""
    frame = frame.copy()
    bad = frame[SEGMENT] == BAD_SEGMENT
    frame.loc[bad, numeric] = frame.loc[bad, numeric] * 25
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON records as a feature pipeline sends them: nulls as null, datetimes as ISO text."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def send(url: str, frame: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    answers = []
    for i in range(0, len(frame), ROWS_PER_REQUEST):
        body = {"records": records(frame.iloc[i : i + ROWS_PER_REQUEST]), "key": f"{prefix}-{i}"}
        response = httpx.post(f"{url}/predict", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def cli(repo: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", cwd=repo, env={"ROLLBACKKIT_ADMIN_TOKEN": TOKEN})
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return json.loads(result.stdout)


def wait(condition: Any, seconds: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def whole_story(
    repo: Path, live: pd.DataFrame, numeric: list[str], answer_type: type, diff_mentions: list[str]
) -> None:
    """Canary, degrade, watchdog rollback, backfill, parity, diff, audit (see the module docstring).

    Args:
        repo: The project (``model@v1.0.0`` on prod, ``model@v1.1.0`` registered with ``V2_GATES``).
        live: At least 3,500 rows of live inputs (no target) with the ``SEGMENT`` column.
        numeric: The numeric input columns the degradation scales in the bad segment.
        answer_type: The Python type of an answer's ``prediction``.
        diff_mentions: What ``rollbackkit diff v1 v2`` must name (e.g. a changed parameter).
    """
    healthy, during = live.iloc[:1000], degraded(live.iloc[1000:3500], numeric)
    features = repo.parent / "live.parquet"
    healthy.to_parquet(features)  # the typed sample preflight checks: NaN, NA, category, datetime

    with running_server(repo, "model", "prod", watchdog=1.0, runbook=True) as server:
        answers = send(server.url, healthy, "healthy")
        first = answers[0]["predictions"][0]
        assert isinstance(first["prediction"], answer_type), first

        canary = cli(repo, "deploy", "model@v1.1.0", "--env", "prod", "--canary", "50", "--features", str(features))
        assert canary["preflight"]["verdict"] in {"compatible", "adaptable"}, canary["preflight"]
        answers = send(server.url, during, "during")
        assert {a["version"] for a in answers} == {"v1.0.0", "v1.1.0"}

        def rolled_back() -> bool:  # what `history` reads, without a process per poll
            return Deployments(Repository(repo)).history("model", "prod")[-1].action == "auto-rollback"

        wait(rolled_back, 90, "the watchdog's automatic rollback", every=0.2)
        rollback = cli(repo, "history", "model", "--env", "prod")["assignments"][-1]
        assert rollback["action"] == "auto-rollback", rollback
        assert rollback["version"] == "v1.0.0" and "segment-drift" in rollback["reason"], rollback
        assert rollback["actor"] == "watchdog"
        assert server.status()["live"]["version"] == "v1.0.0"

        def runbook_ran() -> bool:  # what `runbook list` reads, without a process per poll
            return any(r["template"] == "rollback" for r in executed(repo))

        wait(runbook_ran, 120, "the rollback runbook the watchdog started", every=0.2)
        runbooks = [r for r in cli(repo, "runbook", "list")["runbooks"] if r["template"] == "rollback"]
        assert runbooks and runbooks[-1]["status"] == "ok", runbooks
        record = cli(repo, "runbook", "show", runbooks[-1]["notebook"])
        canary_rows = sum(len(a["predictions"]) for a in answers if a["version"] == "v1.1.0")
        assert record["results"]["side_effects"]["backfill"]["rescored"] == canary_rows > 0, record["results"]

        affected = cli(repo, "affected", "model", "--env", "prod", "--version", "v1.1.0")
        assert affected["rows"] == affected["backfilled"] == canary_rows, affected
        assert {row["status"] for row in affected["sample"]} == {"backfilled"}
        again = cli(repo, "backfill", "model", "--env", "prod", "--version", "v1.1.0")
        assert again == {"rescored": 0, "already_done": canary_rows, "failed": 0}

    parity = cli(repo, "parity", "model@v1.1.0")
    assert parity["ok"], parity
    diff = run_cli("diff", "model@v1.0.0", "model@v1.1.0", cwd=repo)
    assert diff.returncode == 0, diff.stderr
    for mention in [*diff_mentions, "segment-drift"]:
        assert mention in diff.stdout, (mention, diff.stdout)
    audit = cli(repo, "audit", "verify")
    assert audit["ok"], audit
