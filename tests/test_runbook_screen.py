"""Runbooks without noise, at 80 columns (issue 17, point 4): no kernel transport warning,
progress with the real cell count, and ``runbook show``/``runbook list`` that print the whole
record, wrapped, not cut: the backfill's rescored count included, failures leading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from rich.cells import cell_len

from rollbackkit.ops.runbook_templates import templates

from .conftest import run_cli
from .terminal import screen

NOISE = ("without encryption", "TCP", "WARNING", "KeyboardInterrupt", "\x1b")
REASON = (
    "the tail segment (tenure under three months, month-to-month contracts, two or more support calls) "
    "scored far above its reference after the boosted model went live; see "
    "https://wiki.example.com/incidents/2026/INC-4711/tail-segment-score-drift-after-the-boosted-model-release "
    "and the on-call channel for the full timeline"
)


def _code_cells(template: str) -> int:
    """The template's code cells, plus the one papermill injects for the parameters."""
    notebook = nbformat.read(str(templates()[template]), as_version=4)
    return sum(cell.cell_type == "code" for cell in notebook.cells) + 1


def _squeezed(text: str) -> str:
    """``text`` without any whitespace: a value wrapped (or folded) over lines reads whole again."""
    return "".join(text.split())


def _no_noise(text: str) -> list[str]:
    return [word for word in NOISE if word in text]


def test_a_runbook_runs_quietly_with_its_cell_count_and_its_whole_record_at_80_columns(logged: Path) -> None:
    assert len(REASON) >= 300
    n = _code_cells("rollback")
    ran = screen(
        "runbook", "run", "rollback", "-p", "name=churn", "-p", "env=prod", "-p", f"reason={REASON}",
        "-p", "incident=INC-4711", cwd=logged,
    )  # fmt: skip
    assert ran.returncode == 0, ran
    assert not _no_noise(ran.raw_stderr) and not _no_noise(ran.stdout), ran  # stderr is a pipe: plain lines
    progress = ran.stderr.splitlines()
    assert progress[0] == f"runbook rollback: {n} cells, starting the kernel", ran
    assert [line.split(":")[0] for line in progress[1:]] == [f"cell {i}/{n}" for i in range(1, n + 1)], ran
    assert "cell 4/9: 1. Context: what serves now, and what served before" in progress or n != 9, ran
    notebook = re.search(r"^notebook: (\S+)$", ran.stdout, re.MULTILINE)
    assert notebook, ran  # the path whole on one line, so it can be copied
    saved = nbformat.read(notebook.group(1), as_version=4)
    outputs = json.dumps([cell.get("outputs", []) for cell in saved.cells])
    assert "without encryption" not in outputs and "KeyboardInterrupt" not in outputs

    record = json.loads(run_cli("runbook", "show", notebook.group(1), "--json", cwd=logged).stdout)
    rescored = record["results"]["side_effects"]["backfill"]["rescored"]
    quarantined = record["results"]["side_effects"]["affected"]["quarantined"]
    assert rescored == quarantined > 0
    shown = screen("runbook", "show", notebook.group(1), cwd=logged)
    assert shown.returncode == 0 and shown.no_ellipsis(), shown
    rows = [row for row in shown.rows if not row.lstrip().startswith("notebook ")]
    assert all(cell_len(row) <= 80 for row in rows), shown  # wrapped at the width, never past it
    assert shown.whole(f"notebook  {notebook.group(1)}"), shown
    assert shown.rows[0] == "rollback: ok, verdict already-rolled-back", shown
    assert re.search(rf"^\s+rescored\s+{rescored}\s*$", shown.stdout, re.MULTILINE), shown
    assert re.search(rf"^\s+quarantined\s+{quarantined}\s*$", shown.stdout, re.MULTILINE), shown
    assert _squeezed(REASON) in _squeezed(shown.stdout), shown
    assert shown.whole("Ada Oncall") and shown.whole("INC-4711"), shown

    listed = screen("runbook", "list", cwd=logged)
    assert listed.returncode == 0 and listed.fits(), listed
    relative = str(Path(notebook.group(1)).relative_to(logged))
    assert _squeezed(relative) in _squeezed(listed.stdout) and listed.whole("already-rolled-back"), listed
    wide = screen("runbook", "list", cwd=logged, columns=150)
    assert wide.fits() and wide.whole(relative) and wide.whole("INC-4711"), wide  # room: one line each
    assert listed.whole(relative), listed  # never wrapped: the path can be copied
    for columns in (40, 60, 72):  # narrower: the path still whole, the verdict too, nothing cut
        narrow = screen("runbook", "list", cwd=logged, columns=columns)
        assert narrow.returncode == 0 and narrow.no_ellipsis() and narrow.whole(relative), narrow
        assert narrow.whole("already-rolled-back"), narrow


def test_a_failed_runbook_stops_its_progress_at_the_failing_cell_and_show_leads_with_it(logged: Path) -> None:
    n = _code_cells("rollback")
    name = "no-such-model-" + "x" * 60  # a long name: the error line must wrap, whole
    ran = screen("runbook", "run", "rollback", "-p", f"name={name}", "-p", "reason=x", cwd=logged, stderr_tty=True)
    assert ran.returncode == 1, ran
    assert not _no_noise(ran.stderr) and not _no_noise(ran.stdout), ran
    assert f"cell 4/{n}: 1. Context" in ran.stderr and f"cell 5/{n}" not in ran.stderr, ran
    assert "/?" not in ran.stderr, ran  # the count is known from the start
    assert ran.rows[0] == "FAILED in cell [4] context = rk.situation(repo, name, env)", ran
    notebook = re.search(r"^notebook: (\S+)$", ran.stdout, re.MULTILINE)
    assert notebook, ran

    shown = screen("runbook", "show", notebook.group(1), cwd=logged)
    assert shown.returncode == 0, shown
    assert shown.rows[0] == "rollback: FAILED in cell [4] context = rk.situation(repo, name, env)", shown
    assert shown.rows[1].startswith("  error: "), shown
    saved = json.loads(run_cli("runbook", "show", notebook.group(1), "--json", cwd=logged).stdout)
    error = saved["failed_cell"]["error"]
    assert name in error and _squeezed(error) in _squeezed(shown.stdout), shown
    assert "verdict: failed (the run stopped; its last recorded step was 'started')" in shown.stdout, shown
    rows = [row for row in shown.rows if not row.lstrip().startswith("notebook ")]
    assert all(cell_len(row) <= 80 for row in rows), shown


def test_a_runbook_started_from_a_notebook_leaves_no_warning_in_it(logged: Path, tmp_path: Path) -> None:
    """The widget's case: a runbook run from inside a kernel, whose stderr the notebook shows
    (a red box in Jupyter). The outer notebook's outputs hold no transport warning."""
    template = tmp_path / "nested.ipynb"
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "rollbackkit", "language": "python", "display_name": "rollbackkit"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell('name: str = "churn"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from rollbackkit.ops.runbooks import record, run\n\n"
            'inner = run("incident_review", {"name": name}, repo=".")\n'
            'record(verdict="nested-" + inner.verdict)'
        ),
    ]
    nbformat.write(notebook, str(template))
    ran = run_cli("runbook", "run", str(template), "--json", cwd=logged)
    assert ran.returncode == 0, ran.stderr
    assert not _no_noise(ran.stderr), ran.stderr
    outer = json.loads(ran.stdout)
    assert outer["verdict"] == "nested-reviewed", outer
    saved = nbformat.read(outer["notebook"], as_version=4)
    outputs = json.dumps([cell.get("outputs", []) for cell in saved.cells])
    assert [word for word in NOISE[:4] if word in outputs] == [], outputs


def test_a_dry_run_prints_its_plan_and_records_it(logged: Path) -> None:
    again = run_cli("deploy", "churn@v1.1.0", "--env", "prod", "--reason", "the fix is in", cwd=logged)
    assert again.returncode == 0, again.stderr  # v1.1.0 serves again: a rollback would leave it
    before = run_cli("history", "churn", "--env", "prod", "--json", cwd=logged).stdout
    ran = screen(
        "runbook", "run", "rollback", "-p", "name=churn", "-p", "env=prod", "-p", "dry_run=true",
        "-p", "reason=what would a rollback do?", cwd=logged,
    )  # fmt: skip
    assert ran.returncode == 0, ran
    assert "verdict dry-run" in ran.stdout, ran
    shift = re.search(r"would shift churn in prod: (v\S+) -> (v\S+), via (\S+)", ran.stdout)
    assert shift and shift.group(1) != shift.group(2), ran
    rows = re.search(rf"{shift.group(1)}: (\d+) rows logged, (\d+) would be quarantined, (\d+) backfilled", ran.stdout)
    assert rows and int(rows.group(1)) > 0, ran  # the rows v1.1.0 logged before
    assert run_cli("history", "churn", "--env", "prod", "--json", cwd=logged).stdout == before  # nothing moved
    notebook = re.search(r"^notebook: (\S+)$", ran.stdout, re.MULTILINE)
    assert notebook, ran
    shown = screen("runbook", "show", notebook.group(1), cwd=logged)
    assert "plan" in shown.stdout and "quarantine" in shown.stdout, shown
