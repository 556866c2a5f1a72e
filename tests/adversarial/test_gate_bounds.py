"""Gate values that can never be met, and metrics the version cannot have, are refused at register.

``accuracy min: 1.5`` would roll back every deploy once labels arrive; ``rmse`` on a boolean
classifier or ``accuracy`` on a regressor could never be computed. Each is one line naming
the gate's line and (for a metric of the wrong kind) what the version is; nothing is tagged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollbackkit.analysis.gatespec import parse_gates
from rollbackkit.errors import InvalidInput

from ..conftest import new_repo
from .conftest import assert_one_clean_line, rollbackkit, state


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("{kind: label_metric, metric: accuracy, min: 1.5}", "accuracy lies in [0, 1]; min 1.5 could never be met"),
        ("{kind: label_metric, metric: f1, max: 1.2}", "f1 lies in [0, 1]; max 1.2 always holds"),
        ("{kind: slice, by: site, metric: roc_auc, max: -0.1}", "roc_auc lies in [0, 1]; max -0.1 could never be met"),
        ("{kind: slice, by: site, metric: balanced_accuracy, min: -0.2}", "min -0.2 always holds"),
        ("{kind: slice, by: site, metric: auc, min: 2}", "auc lies in [0, 1]; min 2 could never be met"),
    ],
)
def test_a_bound_outside_zero_to_one_on_a_bounded_metric_is_refused(gate: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_gates(f"gates:\n  - name: ok\n    kind: error_rate\n    max: 0.05\n  - {{name: bad, {gate[1:]}\n")
    assert message in caught.value.message and "line 5" in caught.value.message
    assert "\n" not in caught.value.message


def test_bounds_at_the_ends_and_unbounded_metrics_are_accepted() -> None:
    text = """gates:
  - {name: a, kind: label_metric, metric: accuracy, min: 0}
  - {name: b, kind: label_metric, metric: roc_auc, min: 1}
  - {name: c, kind: label_metric, metric: log_loss, max: 3}
  - {name: d, kind: slice, by: site, metric: mae, max: 250}
"""
    assert [g.name for g in parse_gates(text).gates] == ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """A project, a boolean classifier and a regressor (skops files) with their training CSVs."""
    import skops.io
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LinearRegression, LogisticRegression

    base = tmp_path_factory.mktemp("gate-bounds")
    new_repo(base / "project", "bounds")
    assert rollbackkit("init", cwd=base / "project").code == 0
    cancer = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, -1]]
    cancer = cancer.assign(target=cancer["target"].astype(bool))
    diabetes = load_diabetes(as_frame=True).frame[["age", "bmi", "bp", "target"]]
    for stem, frame, model in (
        ("bool", cancer, LogisticRegression(max_iter=2000)),
        ("reg", diabetes, LinearRegression()),
    ):
        skops.io.dump(model.fit(frame.drop(columns="target"), frame["target"]), base / f"{stem}.skops")
        frame.to_csv(base / f"{stem}.csv", index=False)
    return base


def _register(files: Path, stem: str, gates: str, version: str) -> tuple[Path, list[str]]:
    path = files / f"gates-{version}.yaml"
    path.write_text(gates)
    args = ["register", f"{stem}-model", "--model", str(files / f"{stem}.skops"), "--train-data",
            str(files / f"{stem}.csv"), "--target", "target", "--gates", str(path), "--version", version]  # fmt: skip
    return files / "project", args


@pytest.mark.parametrize(
    ("stem", "gate", "mentions"),
    [
        ("bool", "{name: a, kind: label_metric, metric: accuracy, min: 1.5}", ("accuracy lies in [0, 1]",)),
        ("bool", "{name: a, kind: label_metric, metric: rmse, compare: live, max_ratio: 1.1}",
         ("metric 'rmse' needs a regressor; this version is a classifier",)),
        ("bool", "{name: a, kind: label_metric, metric: mae, max: 3}", ("'mae' needs a regressor", "classifier")),
        ("bool", "{name: a, kind: slice, by: mean radius, metric: mape, max: 0.2}", ("'mape' needs a regressor",)),
        ("reg", "{name: a, kind: label_metric, metric: accuracy, min: 0.9}",
         ("metric 'accuracy' needs a classifier; this version is a regressor",)),
        ("reg", "{name: a, kind: slice, by: age, metric: f1, min: 0.5}", ("'f1' needs a classifier",)),
    ],
)  # fmt: skip
def test_register_refuses_a_gate_the_version_could_never_meet(
    files: Path, stem: str, gate: str, mentions: tuple[str, ...]
) -> None:
    repo, args = _register(files, stem, f"gates:\n  - {gate}\n", "v9.9.9")
    before = state(repo)
    assert_one_clean_line(rollbackkit(*args, cwd=repo), "line 2", *mentions)
    assert state(repo) == before


def test_register_accepts_each_kinds_own_metrics(files: Path) -> None:
    for stem, gate, version in (
        ("bool", "{name: a, kind: label_metric, metric: accuracy, min: 0.8}", "v1.0.0"),
        ("reg", "{name: a, kind: label_metric, metric: rmse, max: 80}", "v1.0.0"),
    ):
        repo, args = _register(files, stem, f"gates:\n  - {gate}\n", version)
        done = rollbackkit(*args, cwd=repo)
        assert done.code == 0, done.stderr
