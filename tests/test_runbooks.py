"""Runbooks: templates under plain papermill, the 47 -> 52 rollback story, injection-proof
parameters, failed runs still saved, and an audit record that catches edits.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nbformat
import pytest

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.errors import InvalidInput
from rollbackkit.ops.runbook_record import gathered_results, show, verify_audit
from rollbackkit.ops.runbook_templates import templates
from rollbackkit.ops.runbooks import run
from rollbackkit.ops.traffic import deploy
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.journal import Journal

from .conftest import BIN, copy_project, run_cli, shared_template

INJECTION = "x'); import os; os.system('touch pwned'); ('"


@pytest.fixture(scope="module")
def degraded_template(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1.1.0 (52 features) deployed over v1.0.0 (47): the state an on-call engineer finds."""

    def build(root: Path) -> Path:
        repo = copy_project(served_template, root)
        deploy(repo, "churn@v1.1.0", "prod", reason="boosted model")
        return repo

    return shared_template(tmp_path_factory, "degraded-template", build)


@pytest.fixture
def degraded(degraded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the degraded project."""
    return copy_project(degraded_template, tmp_path)


def _features(repo: Path, drop: str | None = None) -> Path:
    frame = churn_frame(400, seed=51)[ALL_FEATURES]
    path = repo.parent / f"live-{drop or 'all'}.parquet"
    (frame.drop(columns=[drop]) if drop else frame).to_parquet(path)
    return path


def _serving(repo: Path) -> str:
    serving = Deployments(Registry(repo)).serving("churn", "prod")
    assert serving is not None
    return serving.version


def test_every_template_runs_under_plain_papermill(degraded: Path) -> None:
    import subprocess

    parameters = {
        "deploy": ["-p", "name", "churn", "-p", "version", "v1.1.0", "-p", "dry_run", "True"],
        "rollback": ["-p", "name", "churn", "-p", "reason", "papermill run", "-p", "dry_run", "True"],
        "incident_review": ["-p", "name", "churn"],
    }
    assert set(templates()) == set(parameters)
    for name, path in templates().items():
        out = degraded.parent / f"{name}-out.ipynb"
        result = subprocess.run(
            [
                str(BIN / "papermill"),
                str(path),
                str(out),
                "-k",
                "rollbackkit",
                "--cwd",
                str(degraded),
                *parameters[name],
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        results = gathered_results(nbformat.read(str(out), as_version=4))
        assert results["verdict"] in {"dry-run", "reviewed"}, (name, results)
    assert _serving(degraded) == "v1.1.0"  # dry runs changed nothing


def test_an_incompatible_live_frame_stops_the_rollback_at_preflight(degraded: Path) -> None:
    result = run(
        "rollback",
        {
            "name": "churn",
            "env": "prod",
            "reason": "tail degraded",
            "incident": "INC-9",
            "features": str(_features(degraded, drop="tenure_months")),
        },
        repo=degraded,
    )
    assert (result.status, result.verdict) == ("ok", "refused")
    assert result.results["preflight"] == "incompatible"
    assert [f["column"] for f in result.results["findings"]] == ["tenure_months"]
    assert result.results["shifted"] is False
    assert _serving(degraded) == "v1.1.0"  # traffic untouched
    meta = show(result.notebook)
    assert meta["verdict"] == "refused" and meta["parameters"]["incident"] == "INC-9"
    assert result.notebook.name.endswith("-rollback-INC-9.ipynb")


def test_an_adaptable_live_frame_rolls_back_and_the_record_is_auditable(degraded: Path) -> None:
    result = run(
        "rollback",
        {
            "name": "churn",
            "env": "prod",
            "reason": "tail degraded",
            "incident": "INC-10",
            "features": str(_features(degraded)),
        },
        repo=degraded,
    )
    assert (result.status, result.verdict) == ("ok", "rolled-back"), result.error
    assert result.results["preflight"] == "adaptable"
    assert sorted(result.results["adaptation"]["drop"]) == sorted(
        set(ALL_FEATURES) - set(Registry(degraded).describe("churn@v1.0.0").schema.feature_names)
    )
    assert _serving(degraded) == "v1.0.0"
    last = Deployments(Registry(degraded)).history("churn", "prod")[-1]
    assert (last.action, last.reason, last.incident) == ("rollback", "tail degraded", "INC-10")
    assert not os.stat(result.notebook).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # read-only
    entry = [e for e in Journal(Registry(degraded).paths.journal).entries() if e["event"] == "runbook"][-1]
    assert (entry["sha256"], entry["verdict"]) == (result.sha256, "rolled-back")

    listed = json.loads(run_cli("runbook", "list", "--json", cwd=degraded).stdout)["runbooks"]
    assert [r["verdict"] for r in listed] == ["rolled-back"]
    clean = run_cli("audit", "verify", "--json", cwd=degraded)
    assert clean.returncode == 0 and json.loads(clean.stdout) == {"ok": True, "checked": 1, "problems": []}

    os.chmod(result.notebook, 0o644)  # someone "fixes" the record afterwards
    notebook = nbformat.read(str(result.notebook), as_version=4)
    notebook.metadata["rollbackkit"]["verdict"] = "refused"
    nbformat.write(notebook, str(result.notebook))
    edited = run_cli("audit", "verify", "--json", cwd=degraded)
    assert edited.returncode == 1
    problems = json.loads(edited.stdout)["problems"]
    assert [p["problem"].split(":")[0] for p in problems] == ["edited"]


def test_a_parameter_value_is_data_never_code(degraded: Path, tmp_path: Path) -> None:
    result = run(
        "rollback",
        {"name": "churn", "env": "prod", "reason": INJECTION, "incident": INJECTION, "dry_run": "true"},
        repo=degraded,
    )
    assert result.status == "ok" and result.verdict == "dry-run"
    assert show(result.notebook)["parameters"]["reason"] == INJECTION
    assert not list(degraded.rglob("pwned")) and not list(Path.cwd().glob("pwned"))
    assert "/" not in result.notebook.name.replace(str(result.notebook.parent), "")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"name": "churn", "colour": "red"}, "no parameter 'colour'"),
        ({"name": "churn", "dry_run": "maybe"}, "'dry_run' must be bool"),
        ({"name": "churn", "dry_run": 3}, "'dry_run' must be bool"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(degraded: Path, parameters: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run("rollback", parameters, repo=degraded)
    assert not (degraded / "audit").exists()
    cli = run_cli("runbook", "run", "rollback", *[f"-p{k}={v}" for k, v in parameters.items()], cwd=degraded)
    assert cli.returncode == 1 and cli.stderr.count("\n") == 1 and message.split("'")[1] in cli.stderr


def test_a_failed_runbook_is_still_saved_with_its_error(degraded: Path) -> None:
    result = run("rollback", {"name": "no-such-model", "env": "prod", "reason": "x"}, repo=degraded)
    assert result.status == "failed" and result.verdict == "started"
    assert "VersionNotFound" in result.error or "no-such-model" in result.error
    notebook = nbformat.read(str(result.notebook), as_version=4)
    assert any(o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", []))
    assert notebook.metadata["rollbackkit"]["actor"] == "Ada Oncall"  # git's name, as in the assignments
    assert result.results["actor"] == "Ada Oncall"
    assert verify_audit(degraded).ok
    cli = run_cli("runbook", "run", "rollback", "-p", "name=no-such-model", "-p", "reason=x", cwd=degraded)
    assert cli.returncode == 1 and "failed" in cli.stdout
