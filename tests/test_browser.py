"""The console in a real browser: Voila serves notebooks/console.ipynb on 127.0.0.1 and
Playwright drives Debian's headless Chromium through an on-call engineer's clicks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES
from rollbackkit.widgets.console import TABS

from .servers import stop

CHROMIUM = "/usr/bin/chromium"
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
ADDED = sorted(set(ALL_FEATURES) - set(BASE_FEATURES))


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Debian's Chromium, headless, with nothing that reaches past this machine."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: 'make test' installs it (apt-get install chromium).")
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def voila(logged: Path, tmp_path: Path) -> Iterator[str]:
    """``voila notebooks/console.ipynb`` on a free loopback port, pointed at ``logged``."""
    port = _free_port()
    served = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, served, symlinks=True)  # a copy: Voila never writes next to the source
    log = tmp_path / "voila.log"
    env = {**os.environ, "ROLLBACKKIT_REPO": str(logged), "ROLLBACKKIT_NAME": "churn", "ROLLBACKKIT_ENV": "prod"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(served / "console.ipynb"),
                "--no-browser",
                "--Voila.ip=127.0.0.1",
                f"--Voila.port={port}",
                "--Voila.port_retries=0",
                "--ExecutePreprocessor.timeout=180",
            ],
            cwd=served,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"voila exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/voila/static/voila.js", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"voila did not start:\n{log.read_text()}")
        yield url
    finally:
        stop(process)  # type: ignore[arg-type]


def test_the_console_in_a_real_browser(voila: str, page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
            else route.abort()
        ),
    )
    response = page.goto(voila, timeout=120_000)
    assert response is not None and response.status == 200
    header = page.locator(".rollbackkit-console h3")
    header.wait_for(timeout=120_000)
    assert "churn in prod: serving v1.0.0" in header.inner_text()
    assert "serving prod" in header.inner_text()  # the badge of what serves now
    for title in TABS:  # exact: "Drift" is also in "Drift over time"
        assert page.get_by_role("tab", name=title, exact=True).is_visible()
    page.screenshot(path=str(ARTIFACTS / "console-1-versions.png"), full_page=True)

    # Pick two versions and compare: the schema diff shows the five added features.
    page.locator(".rollbackkit-from select").select_option("churn@v1.0.0")
    page.locator(".rollbackkit-to select").select_option("churn@v1.1.0")
    page.get_by_role("button", name="Compare").click()
    diff = page.locator(".rollbackkit-feature-diff")
    diff.wait_for(state="visible", timeout=30_000)
    text = diff.inner_text()
    assert all(name in text for name in ADDED), text
    page.screenshot(path=str(ARTIFACTS / "console-2-schema-diff.png"), full_page=True)

    # The drift tab shows a plotly figure of v1.1.0's logged predictions vs its reference.
    page.get_by_role("tab", name="Drift", exact=True).click()
    plot = page.locator(".rollbackkit-drift .js-plotly-plot")
    plot.wait_for(state="visible", timeout=30_000)
    assert "proba_1" in (page.locator(".rollbackkit-drift .gtitle").text_content() or "")
    page.screenshot(path=str(ARTIFACTS / "console-3-drift.png"), full_page=True)

    # The gates: observed vs threshold in words, each gate's evidence as a table (not JSON).
    page.get_by_role("tab", name="Gates", exact=True).click()
    page.locator(".rollbackkit-gates .rollbackkit-gate-table").wait_for(state="visible", timeout=30_000)
    assert '{"' not in page.locator(".rollbackkit-gates").inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-3a-gates.png"), full_page=True)

    # The timeline tab builds its panel when first opened: a plotly figure.
    page.get_by_role("tab", name="Timeline", exact=True).click()
    page.locator(".rollbackkit-timeline .js-plotly-plot").wait_for(state="visible", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "console-3b-timeline.png"), full_page=True)

    # The rollback runbook, as a dry run: the verdict and a link to the saved notebook.
    page.get_by_role("tab", name="Runbooks", exact=True).click()
    page.locator(".rollbackkit-param-reason input").fill("browser dry run")
    page.locator(".rollbackkit-param-to_version input").fill("v1.1.0")
    page.locator(".rollbackkit-param-dry_run input").check()
    page.get_by_role("button", name="Run runbook").click()
    verdict = page.locator(".rollbackkit-verdict-value")
    verdict.wait_for(state="visible", timeout=120_000)
    assert verdict.inner_text() == "dry-run"
    link = page.locator(".rollbackkit-runbook a.rollbackkit-notebook")
    assert link.inner_text().endswith("-rollback-no-incident.ipynb")
    page.screenshot(path=str(ARTIFACTS / "console-4-runbook.png"), full_page=True)
