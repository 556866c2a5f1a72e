"""Rolling back away from a version this rollbackkit cannot read: the path that always works.

A fleet mid-upgrade: a newer rollbackkit registered v1.1.0 in a newer manifest format and put it
live; it misbehaves, and an operator on a machine with the older rollbackkit rolls back. The
target v1.0.0 is readable, so the rollback goes ahead; the output contract, which reads the
leaving version, is skipped with a finding that says so (never silently). ``serve`` still
refuses the live version it cannot read, in one line that says to upgrade.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rollbackkit import Registry
from rollbackkit.bundle.manifest import Manifest
from rollbackkit.errors import IntegrityError
from rollbackkit.ops.traffic import rollback
from rollbackkit.registry.assignments import Deployments, resolve
from rollbackkit.registry.repository import Repository

from .cli import run_cli
from .conftest import new_repo


def _newer_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``churn@v1.0.0`` as this release writes it; ``churn@v1.1.0`` in ``rollbackkit/bundle@2``,
    put live in prod by the newer rollbackkit that wrote it (its assignment recorded as such)."""
    from sklearn.linear_model import LogisticRegression

    project = new_repo(tmp_path / "project")
    registry = Registry.init(project)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(150, 2)), columns=["a", "b"]).astype({"b": "Float64"})
    frame.loc[::9, "b"] = pd.NA
    frame["target"] = pd.array(np.where(frame["a"] > 0, "yes", "no"), dtype="string")
    model = LogisticRegression().fit(frame[["a"]], frame["target"].astype(str))
    registry.register("churn", model, frame[["a", "target"]], target="target", version="v1.0.0")
    real = Manifest.to_yaml

    def newer(manifest: Manifest) -> str:
        data = yaml.safe_load(real(manifest))
        data["format"] = "rollbackkit/bundle@2"
        return yaml.safe_dump(data, sort_keys=False)

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "to_yaml", newer)
        info = registry.register("churn", model, frame[["a", "target"]], target="target", version="v1.1.0")
    Deployments(Repository(project)).assign(info, "prod", "deploy", reason="a newer rollbackkit deployed it")
    return project


def test_a_rollback_away_from_a_newer_format_goes_ahead_and_says_the_contract_was_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _newer_live(tmp_path, monkeypatch)
    with pytest.raises(IntegrityError, match="upgrade rollbackkit"):  # this rollbackkit cannot read v1.1.0
        Registry(project).load("churn@v1.1.0")

    planned = run_cli("rollback", "churn", "--env", "prod", "--reason", "x", "--to", "v1.0.0", "--dry-run", cwd=project)
    assert planned.returncode == 0 and "the output contract was not checked" in " ".join(planned.stdout.split())

    done = rollback(project, "churn", "prod", reason="v1.1.0 misbehaves", to="v1.0.0")
    assert done.assignment.version == "v1.0.0" and done.previous == "v1.1.0"
    assert done.preflight is not None and done.preflight.verdict == "compatible"
    (said,) = [f.detail for f in done.preflight.findings if f.kind == "output_contract_unchecked"]
    assert said.startswith("v1.1.0's manifest is in a newer format (")
    assert "rollbackkit/bundle@2" in said and said.endswith("the output contract was not checked; upgrade rollbackkit")
    assert resolve(Repository(project), "churn#prod").version == "v1.0.0"

    shown = run_cli("deploy", "churn@v1.1.0", "--env", "prod", cwd=project)  # the newer one: refused, one line
    assert shown.returncode == 1 and "upgrade rollbackkit" in shown.stderr, shown.stderr
    Deployments(Repository(project)).assign(resolve(Repository(project), "churn@v1.1.0"), "prod", "deploy")
    served = run_cli("serve", "churn", "--env", "prod", "--port", "0", cwd=project)  # cannot serve what it cannot read
    assert served.returncode == 1 and "upgrade rollbackkit" in served.stderr, served.stderr
    assert len(served.stderr.strip().splitlines()) == 1, served.stderr

    again = run_cli("deploy", "churn@v1.0.0", "--env", "prod", "--force", "--reason", "back", cwd=project)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stdout.split())  # the contract row, as wrapped on a narrow terminal
    assert "contract v1.1.0's manifest is in a newer format (" in said and "the output contract was not checked" in said
    assert said.count("the output contract was not checked") == 1  # one row, not one per finding


def test_a_damaged_live_version_refuses_a_forward_deploy_without_force_and_a_rollback_away_from_it_goes_ahead(
    tmp_path: Path,
) -> None:
    """A live version that fails integrity checks (its journal record edited) is no newer format: a forward
    deploy against it is refused unless forced (the override recorded); the rollback away from it is not."""
    from sklearn.tree import DecisionTreeClassifier

    project = new_repo(tmp_path / "project")
    registry = Registry.init(project)
    frame = pd.DataFrame({"n": pd.array(range(120), dtype="Int64"), "flag": [True, False, False] * 40})
    frame["target"] = (frame["n"] % 4).astype(int)  # integer labels
    X, y = frame[["n", "flag"]].astype(float), frame["target"]
    for version, depth in (("v1.0.0", 2), ("v1.1.0", 3)):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
        info = registry.register("stock", model, frame.astype({"flag": float}), target="target", version=version)
        Deployments(Repository(project)).assign(info, "prod", "deploy")
    journal = project / ".rollbackkit/local/journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    (at,) = [i for i, line in enumerate(lines) if '"register"' in line and '"v1.1.0"' in line]
    lines[at] = lines[at].replace('"stock"', '"stoke"', 1)  # someone rewrites what was registered
    journal.write_text("".join(lines))

    refused = run_cli("deploy", "stock@v1.0.0", "--env", "prod", cwd=project)
    assert refused.returncode == 1 and "output_contract_unchecked" in refused.stderr, refused.stderr
    assert "pass --force to override (it is recorded)" in refused.stderr
    assert resolve(Repository(project), "stock#prod").version == "v1.1.0"

    done = rollback(project, "stock", "prod", reason="v1.1.0 fails verify", to="v1.0.0")
    assert done.assignment.version == "v1.0.0" and done.preflight is not None
    assert done.preflight.verdict == "compatible"
    (said,) = [f.detail for f in done.preflight.findings if f.kind == "output_contract_unchecked"]
    assert said.startswith("v1.1.0 failed integrity checks (the journal's record of registering stock@v1.1.0 is")
    assert said.endswith("the output contract was not checked; run 'rollbackkit verify --all'")
    recorded = [json.loads(line) for line in journal.read_text().splitlines()][-1]
    assert recorded["event"] == "rollback" and recorded["contract_unchecked"] == said
