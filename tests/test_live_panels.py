"""Live panels: fetch off the kernel's thread, show on its event loop, pause, errors, close."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd
import pytest

import rollbackkit
from rollbackkit import Registry
from rollbackkit.registry.assignments import Deployments
from rollbackkit.widgets.console import LAZY, RollbackConsole
from rollbackkit.widgets.gate_evidence import WORST_SLICE_ROW
from rollbackkit.widgets.gates import GatesPanel
from rollbackkit.widgets.live import LiveControl
from rollbackkit.widgets.serving_now import now_serving
from rollbackkit.widgets.versions import SERVING_ROW, VersionExplorer

from .asyncs import run_async
from .story import Case, build_project, wait
from .test_matrix import pipeline


@pytest.fixture(autouse=True)
def no_loop_in_the_test_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's own thread has no kernel loop: a loop "running" there is pytest-playwright's (left by a
    browser test earlier in this worker), which never turns while a test waits. Threads that run an
    asyncio scenario (:func:`.asyncs.run_async`) still find theirs."""
    from rollbackkit.widgets import live

    found = live._current_loop
    monkeypatch.setattr(
        live, "_current_loop", lambda: None if threading.current_thread() is threading.main_thread() else found()
    )


def html_in(widget: Any) -> str:
    """Every HTML a widget tree shows (HTML widgets' values), joined."""
    own = str(widget.value) if isinstance(widget, widgets.HTML) else ""
    return own + "".join(html_in(child) for child in getattr(widget, "children", ()))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until ``condition()`` holds (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def on_a_loop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` on a fresh asyncio loop, as ipykernel runs a cell on its loop."""
    run_async(asyncio.wait_for(scenario(), 20))


class Slow:
    """A fetch that takes a while, records its thread, and counts fetches running at once."""

    def __init__(self, seconds: float, fail_first: int = 0) -> None:
        self.seconds, self.fail_first = seconds, fail_first
        self.calls, self.running, self.most_at_once = 0, 0, 0
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            call = self.calls
        self.threads.add(threading.get_ident())
        try:
            time.sleep(self.seconds)
            if call <= self.fail_first:
                raise ValueError("the log is not reachable")
            return call
        finally:
            with self.lock:
                self.running -= 1


def test_fetch_runs_off_the_loop_and_show_on_it() -> None:
    async def scenario() -> None:
        loop_thread = threading.get_ident()
        fetch, shown = Slow(0.4), []
        t0 = time.monotonic()
        live = LiveControl(fetch, lambda v: shown.append((v, threading.get_ident())), interval=0.5, start=True)
        assert time.monotonic() - t0 < 0.2  # the cell returns at once
        lags = []
        while fetch.calls < 1 or fetch.running:  # the loop keeps ticking while the fetch sleeps
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t)
        assert max(lags) < 0.2 and len(lags) > 10
        await until(lambda: bool(shown))
        assert shown[0] == (1, loop_thread) and loop_thread not in fetch.threads
        assert "updated" in live.status.value
        live.close()

    on_a_loop(scenario)


def test_never_two_fetches_at_once_and_pause_stops_it() -> None:
    async def scenario() -> None:
        fetch, shown = Slow(0.1), []
        live = LiveControl(fetch, shown.append, interval=0.5, start=True)
        live.every.value = 0.5
        for _ in range(5):  # impatient clicks: refresh, pause, play
            live.refresh()
            live.pause()
            live.play()
            await asyncio.sleep(0.02)
        await until(lambda: fetch.calls >= 3)
        assert fetch.most_at_once == 1
        live.pause()
        assert live.toggle.icon == "play"
        await until(lambda: not fetch.running)
        await asyncio.sleep(0.05)
        calls = fetch.calls
        await asyncio.sleep(1.2)  # more than two intervals
        assert fetch.calls == calls and not live.playing
        live.refresh()  # one refresh on demand while paused
        await until(lambda: fetch.calls == calls + 1 and len(shown) == calls + 1)
        live.close()

    on_a_loop(scenario)


def test_a_failing_fetch_shows_one_line_and_keeps_going() -> None:
    async def scenario() -> None:
        fetch, shown = Slow(0.0, fail_first=1), []
        live = LiveControl(fetch, shown.append, interval=0.5, start=True)
        await until(lambda: "rollbackkit-error" in live.status.value)
        line = live.status.value
        assert "ValueError: the log is not reachable" in line and "Traceback" not in line
        assert line.count("<div") == 1 and live.errors == 1
        await until(lambda: shown == [2])  # the next refresh still came
        assert "updated" in live.status.value and "rollbackkit-error" not in live.status.value
        live.close()

    on_a_loop(scenario)


def test_closing_the_control_or_its_panel_stops_it() -> None:
    class Panel(widgets.VBox):
        def __init__(self) -> None:
            self.fetched = Slow(0.0)
            self.live = LiveControl(self._fetch, lambda v: None, interval=0.5, start=True)
            super().__init__([self.live])

        def _fetch(self) -> int:
            return self.fetched()

    async def scenario() -> None:
        fetch = Slow(0.0)
        live = LiveControl(fetch, lambda v: None, interval=0.5, start=True)
        panel = Panel()
        await until(lambda: fetch.calls >= 1 and panel.fetched.calls >= 1)
        live.close()
        panel.close()  # the panel's own close; the control notices its owner is gone
        assert live._thread is not None and panel.live._thread is not None
        await until(lambda: not live._thread.is_alive() and not panel.live._thread.is_alive())  # type: ignore[union-attr]
        calls = (fetch.calls, panel.fetched.calls)
        await asyncio.sleep(0.7)
        assert (fetch.calls, panel.fetched.calls) == calls

    on_a_loop(scenario)


def test_in_a_real_jupyter_kernel_the_next_cell_runs_at_once() -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="rollbackkit")
    outputs: list[str] = []

    def run(code: str) -> float:
        t = time.monotonic()
        reply = kc.execute_interactive(
            code,
            timeout=30,
            output_hook=lambda m: outputs.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.monotonic() - t

    try:
        run(
            "import threading, time\n"
            "from rollbackkit.widgets.live import LiveControl\n"
            "kernel_thread, shown = threading.get_ident(), []\n"
            "def fetch():\n"
            "    time.sleep(1.5)\n"
            "    return threading.get_ident()\n"
            "def show(fetched_in):\n"
            "    shown.append((fetched_in != kernel_thread, threading.get_ident() == kernel_thread))\n"
            "live = LiveControl(fetch, show, interval=30, start=True)\n"
        )
        assert run("print('next cell', shown)") < 0.5  # while the fetch sleeps
        assert outputs[-1].strip() == "next cell []"
        deadline = time.monotonic() + 10
        while "[(True, True)]" not in outputs[-1]:
            assert time.monotonic() < deadline, outputs
            time.sleep(0.2)
            run("print(shown, 'updated' in live.status.value)")
        assert outputs[-1].strip() == "[(True, True)] True"  # fetched off the kernel's thread, shown on it
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ----------------------------------------------------------------------------- an iris project (string classes)
CASE = Case("live-panels-iris", "iris", "names")


def fit(X: pd.DataFrame, y: pd.Series, rounds: int) -> object:
    return pipeline(CASE, list(X.columns[:4]), rounds).fit(X, y)


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> tuple[Path, Any]:
    """v1.0.0 serving 80% of prod, v1.1.0 a 20% canary; v1.1.0's gates over a window whose west drifted."""
    repo, live = build_project(tmp_path_factory.mktemp("live-panels"), fit, CASE, rounds=(5, 8))
    registry = Registry(repo)  # the tag a server writes when it starts a canary (no server needed here)
    Deployments(registry).assign(
        registry.resolve("model@v1.1.0"), "prod", "canary", canary_percent=20, reason="retrained"
    )
    inputs = live.iloc[:1200].reset_index(drop=True)
    outputs = registry.load("model@v1.1.0").predict(inputs).reset_index(drop=True)
    west = (inputs["region"] == "west").to_numpy()
    outputs.loc[west, :] = outputs.iloc[[int(outputs.iloc[:, -1].to_numpy().argmax())] * int(west.sum())].to_numpy()
    window = pd.concat([inputs, outputs], axis=1)
    window = window.assign(latency_ms=5.0, error=False)
    path = repo.parent / "window.parquet"
    window.to_parquet(path)
    return repo, rollbackkit.check_gates(repo, "model@v1.1.0", window=path)


def test_versions_mark_what_serves_now_and_compare_opens_the_diff_below(iris: tuple[Path, Any]) -> None:
    repo, _ = iris
    explorer = VersionExplorer(repo)
    now = {r["ref"]: [n.label() for n in r["now"]] for r in explorer.rows}
    assert now == {"model@v1.0.0": ["serving 80% prod"], "model@v1.1.0": ["canary 20% prod"]}
    assert explorer.table.value.count("rollbackkit-serving-now") == 2 and explorer.table.value.count(SERVING_ROW) == 1

    explorer.compare.click()  # on its own (no console): the diff opens below the pickers
    assert explorer.diff is not None and list(explorer.diff_box.children) == [explorer.diff]
    assert explorer.diff.result is not None and "rollbackkit-error" not in explorer.diff.title.value
    explorer.a.value, explorer.b.value = "model@v1.1.0", "model@v1.0.0"
    explorer.compare.click()  # the same panel, re-used
    assert list(explorer.diff_box.children) == [explorer.diff] and "v1.1.0" in explorer.diff.title.value


def test_gate_evidence_is_a_readable_table_with_the_serving_badge(iris: tuple[Path, Any]) -> None:
    repo, status = iris
    panel = GatesPanel(status, serving=now_serving(Registry(repo), ["model"]))
    assert "canary 20% prod" in panel.header.value and "rollbackkit-rollback" in panel.header.value
    body = panel.body.value
    assert "&lt;= 0.5" in body and "&lt;= 0.05" in body and ">1200<" in body  # bounds in words, rows judged
    assert '{"' not in body and "[{" not in body  # no raw JSON
    drift = next(g for g in status.gates if g.name == "segment-drift")
    for item in drift.evidence["slices"]:  # every slice, nothing cut off
        assert f"region={item['slice']['region']}" in body and f">{item['n']}<" in body
    assert body.count(WORST_SLICE_ROW) == 1 and "rollbackkit-failing-slice'>region=west<" in body
    assert body.count("<details class='rollbackkit-gate-evidence' open") == 1  # the failing gate opens


def test_the_console_marks_what_serves_builds_tabs_when_opened_and_goes_live(iris: tuple[Path, Any]) -> None:
    repo, _ = iris

    async def scenario() -> None:
        console = RollbackConsole(repo, "model", "prod")
        header = console.header.value
        assert "serving 80% prod" in header and "canary 20% prod" in header and "rollbackkit-error" not in header
        assert not set(LAZY) & set(console.panels)  # nothing lazy built yet
        for title, (_, cls) in LAZY.items():  # each tab builds its own panel when opened
            panel = console.select(title)
            assert console.panels[title] is panel and type(panel).__name__ == cls
            shown_html = html_in(panel)  # what the tab shows: content, or one readable line (no log here)
            assert shown_html and "Traceback" not in shown_html, title
            assert "rollbackkit-error" not in shown_html or "no prediction log" in shown_html, (title, shown_html)
        shown: list[Any] = []
        timeline = console.select("Timeline")
        timeline._show = shown.append  # type: ignore[attr-defined]  # the open tab refreshes with the console
        console.live.play()
        await until(lambda: "updated" in console.live.status.value and bool(shown), 30)
        assert type(shown[0]).__name__ == "Timeline"
        assert "rollbackkit-error" not in console.header.value
        console.close()
        await until(lambda: not console.live._thread.is_alive())  # type: ignore[union-attr]

    on_a_loop(scenario)


def test_one_failing_tab_says_why_in_that_tab_and_the_header_and_gates_still_update(iris: tuple[Path, Any]) -> None:
    repo, _ = iris
    console = RollbackConsole(repo, "model", "prod")
    panel = console.select("Drift over time")

    def no_reference() -> Any:
        raise ValueError("model@v1.1.0 has no reference profile")

    panel._fetch = no_reference  # type: ignore[attr-defined]  # the open tab fails during the incident
    console.header.value = console.gates.header.value = ""
    console._show(console._fetch())  # what each Live tick does
    assert "serving 80% prod" in console.header.value and "rollbackkit-error" not in console.header.value
    assert "Decision:" in console.gates.header.value  # the gates still updated
    slot = console.tabs.children[console.tab_titles.index("Drift over time")]
    assert "no reference profile" in html_in(slot) and "rollbackkit-error" in html_in(slot)
    panel._fetch = lambda: None  # type: ignore[attr-defined]  # it recovers: the line goes
    console._show(console._fetch())
    assert "no reference profile" not in html_in(slot) and list(slot.children) == [panel]
    console.close()


def test_a_gate_status_reads_as_a_card(iris: tuple[Path, Any]) -> None:
    from IPython.core.formatters import DisplayFormatter

    _, status = iris
    data, _ = DisplayFormatter().format(status)
    assert "Gates for model@v1.1.0 [rollback]" in data["text/plain"] and "segment-drift" in data["text/plain"]
    assert "rollbackkit-gate-card" in data["text/html"] and "region=west (worst)" in data["text/html"]


def test_no_show_after_close_without_a_loop() -> None:
    shown: list[int] = []
    started = threading.Event()

    def fetch() -> int:
        started.set()
        time.sleep(0.3)
        return 1

    control = LiveControl(fetch, shown.append, interval=60, loop=None)
    control.refresh()
    assert started.wait(5)
    control.close()  # while the fetch runs
    control._thread.join(5)  # type: ignore[union-attr]
    assert shown == []


def test_a_shorter_interval_counts_at_once() -> None:
    fetched: list[float] = []
    control = LiveControl(lambda: fetched.append(time.monotonic()), lambda _: None, 60, start=True, loop=None)
    wait(lambda: fetched, 5, "the first fetch", every=0.01)
    control.every.value = 0.5  # 60 s lowered: the wait ends now, not in a minute
    try:
        wait(lambda: len(fetched) >= 3, 20, "two more fetches at 0.5 s (not after 60 s)", every=0.05)
    finally:
        control.close()


def test_rerunning_a_cell_closes_the_controls_its_last_run_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from rollbackkit.widgets import live

    where = ["cell-a", "run-1"]
    monkeypatch.setattr(live, "cell_run", lambda: tuple(where))
    first, also = LiveControl(int, print, loop=None), LiveControl(int, print, loop=None)  # a console and its tab
    where[:] = ["cell-b", "run-2"]
    elsewhere = LiveControl(int, print, loop=None)  # another cell's panel keeps running
    where[:] = ["cell-a", "run-3"]  # cell-a re-run: its output (and old controls) replaced
    again = LiveControl(int, print, loop=None)
    assert first._closed and also._closed and not elsewhere._closed and not again._closed
    monkeypatch.setattr(live, "cell_run", lambda: None)  # outside a notebook: nothing closed for you
    LiveControl(int, print, loop=None)
    assert not again._closed
    for control in (elsewhere, again):
        control.close()


def test_a_panels_own_refresh_never_overlaps_its_live_fetch() -> None:
    class Panel(widgets.VBox):
        def __init__(self) -> None:
            super().__init__()
            self.slow = Slow(0.05)

        def _fetch(self) -> int:
            return self.slow()

        def refresh(self) -> None:
            self._fetch()

    panel = Panel()
    control = LiveControl(panel._fetch, lambda _: None, interval=0.5, start=True, loop=None)
    control.every.value = 0.5
    for _ in range(20):  # the Refresh button on the kernel's thread while the worker fetches
        panel.refresh()
        time.sleep(0.02)
    control.close()
    assert panel.slow.most_at_once == 1 and panel.slow.calls >= 21
