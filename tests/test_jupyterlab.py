"""JupyterLab itself in Debian's headless Chromium: a data scientist opens notebooks/explore.ipynb
on the demo project (the session's `rollbackkit demo` run), picks Run > Run All Cells, and reads the
story of last night: every cell ran, no traceback and no error line anywhere, each panel shows what
it should, and the project is exactly as it was (Run All writes nothing into it). Screenshots of
the whole notebook and of each panel go to test-artifacts/jupyterlab-*.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .demo_run import notified_demo
from .jupyterlab import Lab, lab
from .test_browser import ADDED, ARTIFACTS, browser_type_launch_args  # noqa: F401  (fixture: Debian's Chromium)

RUN_SECONDS = 240
"""How long Run All may take on a busy 2-core machine (about 20 s on a quiet one)."""

CONTRACTS = {"month-to-month", "one-year", "two-year"}
"""The demo's contract types: the slice its tail gate watches."""

STDERR = '.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
"""Outputs on stderr: tracebacks and warnings."""

EVERY_CELL_RAN = f"""() => {{
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
  const ran = prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
  return ran || document.querySelector('{STDERR}') !== null;
}}"""
"""True once every code cell shows an execution count (``[n]:``, not ``[*]:`` or ``[ ]:``), or
as soon as a cell wrote to stderr (after an error, Run All leaves the cells below unrun)."""


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project `rollbackkit demo` built: v1.0.0 serving, v1.1.0's canary rolled back automatically."""
    return notified_demo(tmp_path_factory).target


@pytest.fixture(scope="module")
def jupyterlab(demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab on 127.0.0.1 serving a copy of notebooks/, ROLLBACKKIT_REPO = the demo project."""
    with lab(demo_project, tmp_path_factory.mktemp("jupyterlab")) as running:
        yield running


def _files(project: Path) -> dict[str, tuple[int, int]]:
    """Every file of the project (git's own included) with its size and modification time."""
    return {
        str(path.relative_to(project)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in project.rglob("*")
        if path.is_file()
    }


def _changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files added, removed or rewritten, but the prediction log: DuckDB rewrites its file
    whenever a reader without a server opens it (its rows stay the same)."""
    log = ".rollbackkit/local/predictions.duckdb"
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p) and p != log)


def _only_loopback(page: Any) -> list[str]:
    """Refuse every request past 127.0.0.1; return the list of what was refused."""
    refused: list[str] = []

    def route(request: Any) -> None:
        if request.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            request.continue_()
        else:
            refused.append(request.request.url)
            request.abort()

    page.route("**/*", route)
    return refused


def _run_all(page: Any) -> None:
    """Wait for the rollbackkit kernel, then Run > Run All Cells; return once every cell ran and it is idle."""
    page.get_by_text("Python (rollbackkit) | Idle").wait_for(timeout=90_000)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(EVERY_CELL_RAN, timeout=RUN_SECONDS * 1000, polling=500)
    stderr = page.locator(STDERR)
    assert stderr.count() == 0, stderr.all_inner_texts()  # no traceback, no warning
    page.get_by_text("Python (rollbackkit) | Idle").wait_for(timeout=60_000)


def _cell(page: Any, css: str) -> Any:
    """The notebook cell whose output holds the panel with CSS class ``css``."""
    return page.locator(".jp-NotebookPanel .jp-CodeCell", has=page.locator(f".{css}"))


def _versions(cell: Any) -> None:
    """Both versions listed, v1.0.0 (the rollback target) marked as serving prod, and v1.1.0 (rolled back)."""
    text = cell.locator(".rollbackkit-versions").inner_text()
    assert "churn@v1.0.0" in text and "churn@v1.1.0" in text, text
    now = cell.locator(".rollbackkit-versions tr:has(.rollbackkit-serving-now)")
    assert now.count() == 1 and "churn@v1.0.0" in now.inner_text() and "serving prod" in now.inner_text()


def _traces(cell: Any, css: str) -> list[dict[str, Any]]:
    """The traces plotly.js drew in the panel's plots: name, type, y values (what the browser got)."""
    plots = cell.locator(f".{css} .js-plotly-plot")
    assert plots.count() >= 1, f"no plot in .{css}"
    return list(
        plots.evaluate_all(
            "els => els.flatMap(el => el.data.map(t => "
            "({name: t.name || '', type: t.type || 'scatter', y: Array.from(t.y || [])})))"
        )
    )


def _timeline(cell: Any) -> None:
    """Traffic share per version, v1.0.0 marked as serving now, the automatic rollback marked."""
    names = [t["name"] for t in _traces(cell, "rollbackkit-timeline")]
    assert "v1.0.0 \u25c0 serving now" in names and "v1.1.0" in names and "auto-rollback" in names, names
    assert "v1.0.0" in cell.locator(".rollbackkit-serving-now").first.inner_text()


def _drift_time(cell: Any) -> None:
    """PSI per window against v1.0.0's reference, per contract type, and the contract x time heatmap."""
    traces = _traces(cell, "rollbackkit-drift-time")
    heatmaps = [t for t in traces if t["type"] == "heatmap"]
    assert len(heatmaps) == 1 and set(heatmaps[0]["y"]) == CONTRACTS, traces
    assert {t["name"] for t in traces} >= CONTRACTS, traces
    titles = cell.locator(".rollbackkit-drift-time .gtitle").all_text_contents()
    assert "proba_1: psi per window vs v1.0.0's reference" in titles, titles


def _gates_time(cell: Any) -> None:
    """One plot per gate: the failed prediction-drift gate's values against its bound (psi 0.25)."""
    titles = cell.locator(
        ".rollbackkit-gates-time .gtitle, .rollbackkit-gates-time .annotation-text"
    ).all_text_contents()
    assert any(t.startswith("score-drift (prediction_drift") for t in titles), titles
    traces = _traces(cell, "rollbackkit-gates-time")
    bounds = {y for t in traces if t["name"] == "bound" for y in t["y"]}
    assert 0.25 in bounds and any(t["name"] == "failed" and t["y"] for t in traces), traces


def _preview(demo: Path) -> Any:
    """The preview shows the flip share computed on the same logged rows, and its per-slice bars."""
    from rollbackkit import preview_rollback

    expected = preview_rollback(demo, "churn", "prod")

    def check(cell: Any) -> None:
        text = cell.locator(".rollbackkit-preview").inner_text()
        assert "from v1.1.0 to v1.0.0" in text, text
        assert expected.flip_share is not None
        assert cell.locator(".rollbackkit-flip-share").inner_text() == f"{expected.flip_share:.1%}", text
        assert "flip share (%)" in [t["name"] for t in _traces(cell, "rollbackkit-preview")]

    return check


def _card(cell: Any) -> None:
    """The loaded bundle as a card, titled with its reference."""
    assert cell.locator(".rollbackkit-card").first.inner_text().startswith("churn@v1.0.0")


def _drift(cell: Any) -> None:
    """The rolled-back version's predictions against its reference: the primary output's histogram."""
    title = cell.locator(".rollbackkit-drift .gtitle").first.text_content() or ""
    assert "proba_1" in title, title


def _gates(cell: Any) -> None:
    """The failing gates, the contract slice named."""
    text = cell.locator(".rollbackkit-gates").inner_text()
    assert "score-drift" in text and "fail" in text and "contract=month-to-month" in text, text


def _schema_diff(cell: Any) -> None:
    """The five features v1.1.0 added."""
    text = cell.locator(".rollbackkit-schema-diff").inner_text()
    assert all(feature in text for feature in ADDED), text


def _runbook(cell: Any) -> None:
    """Prepared as a dry run onto v1.0.0, and not run."""
    assert cell.locator(".rollbackkit-param-to_version input").input_value() == "v1.0.0"
    assert cell.locator(".rollbackkit-param-dry_run input").is_checked()
    assert cell.locator(".rollbackkit-verdict").count() == 0


def _panels(demo: Path) -> dict[str, Callable[[Any], None]]:
    """Each panel's CSS class in the notebook, and what its output must show."""
    return {
        "rollbackkit-versions": _versions,
        "rollbackkit-timeline": _timeline,
        "rollbackkit-drift-time": _drift_time,
        "rollbackkit-gates-time": _gates_time,
        "rollbackkit-drift": _drift,
        "rollbackkit-gates": _gates,
        "rollbackkit-schema-diff": _schema_diff,
        "rollbackkit-preview": _preview(demo),
        "rollbackkit-card": _card,
        "rollbackkit-runbook": _runbook,
    }


def _show_whole_notebook(page: Any) -> None:
    """Grow the window to the notebook's height: every panel in view at once, for the screenshots."""
    page.keyboard.press("Control+b")  # fold the file browser away: the notebook gets the width
    scroller = ".jp-NotebookPanel .jp-WindowedPanel-outer"
    height = page.evaluate(f"() => document.querySelector('{scroller}').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(height) + 160})
    page.evaluate(f"() => document.querySelector('{scroller}').scrollTo(0, 0)")
    page.wait_for_timeout(1000)  # plotly relayouts to the new width


def test_a_data_scientist_runs_the_explore_notebook_in_jupyterlab(
    jupyterlab: Lab, demo_project: Path, page: Any
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    before = _files(demo_project)
    refused = _only_loopback(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    response = page.goto(jupyterlab.open("lab/tree/explore.ipynb?reset"), timeout=90_000)
    assert response is not None and response.status == 200
    _run_all(page)

    text = "\n".join(page.locator(".jp-NotebookPanel .jp-OutputArea-output").all_inner_texts())
    assert "Traceback" not in text and "Error displaying widget" not in text, text
    errors = page.locator(".jp-NotebookPanel .rollbackkit-error")
    assert errors.count() == 0, errors.all_inner_texts()  # no panel shows an error line
    assert "Rollback target: churn@v1.0.0 (from v1.1.0)" in text

    _show_whole_notebook(page)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-explore.png"))
    for panel, check in _panels(demo_project).items():
        cell = _cell(page, panel)
        assert cell.count() == 1, f"no cell shows .{panel}"
        cell.screenshot(path=str(ARTIFACTS / f"jupyterlab-{panel.removeprefix('rollbackkit-')}.png"))
        check(cell)

    assert not refused, refused  # nothing left this machine
    assert _changed(before, _files(demo_project)) == []  # Run All wrote nothing into the project
