"""The timeline: which version served when, at what share, and why; opened from JupyterLab and Voila.

One diabetes-regressor project (not the demo's churn) lives a day an on-call engineer would
recognise, through the real serving environment in-process: a shadow, its manual rollback,
a stepped canary (10%, 50%, promoted at 100%), an automatic rollback on a failed gate and a
rollback runbook run for the incident. Then the same project with 1,000 more assignments.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nbformat
import numpy as np
import pytest

from bench._timeline_history import many_assignments
from rollbackkit.errors import InvalidInput, VersionNotFound
from rollbackkit.ops.serving_now import now_of, serving_now
from rollbackkit.ops.timeline import failed_gate_names, timeline
from rollbackkit.registry.assignments import Deployments, replay
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Assignment
from rollbackkit.registry.store import Registry
from rollbackkit.widgets import TimelinePanel
from rollbackkit.widgets._common import MAX_POINTS, points_in
from rollbackkit.widgets.notebook_links import JupyterHost, jupyter_host, notebook_href
from rollbackkit.widgets.serving_now import marks, now_badge, now_serving
from rollbackkit.widgets.timeline import timeline_figure
from rollbackkit.widgets.timeline_figure import MAX_VERSIONS, OTHERS, SHADOW_BUDGET

from .conftest import copy_project
from .story import Case
from .test_matrix import template
from .timeline_hosts import fake_timeline, free_port, in_lab_kernel, served

CASE = Case("regressor", "diabetes", "float", regressor=True)
BREACH = "rollback: errors error rate 0.12 > 0.05; segment-drift psi 0.91 > 0.5"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """The regressor project after its day (built once for the module)."""
    from rollbackkit.ops.runbooks import run
    from rollbackkit.serving.environment import ServingEnvironment

    built, _ = template(CASE, tmp_path_factory)  # test_matrix's regressor project, built once per run
    root = tmp_path_factory.mktemp("timeline")
    shutil.copy(built.parent / "features.py", root / "features.py")
    repo = copy_project(built, root)
    env = ServingEnvironment(repo, "model", "prod")
    env.start()
    env.deploy("v1.1.0", shadow=25, reason="score a mirror first")
    env.rollback(reason="shadow answers look off", incident="INC-3", actor="watchdog")  # by hand, a shared name
    env.deploy("v1.1.0", steps=[10, 50, 100], reason="stepped rollout")
    env.advance(unless_changed_since=env.router.state.generation, reason="step 1 baked")
    env.advance(unless_changed_since=env.router.state.generation, reason="step 2 baked")
    done = env.rollback(
        reason=f"gate failed: {BREACH}", actor="watchdog", automatic=True, gates=BREACH, failed_gates=("errors",)
    )
    assert done["assignment"]["action"] == "auto-rollback"
    tag = next(a.tag for a in reversed(Deployments(Repository(repo)).history("model")) if a.action == "promote")
    # what the watchdog journals after its rollback: the failing deployment's breach (serving/watchdog.py)
    env.journal.append(
        "gate-breach", name="model", env="prod", version="v1.1.0", deployment=tag, gates=BREACH,
        failed_gates=["errors"], rolled_back=True, target="v1.0.0", breach_to_shift_ms=3.2,
    )  # fmt: skip
    params = {"name": "model", "env": "prod", "reason": "review the breach", "incident": "INC-9", "dry_run": True}
    run("rollback", params, repo=repo)
    return repo


def test_a_day_of_shadow_steps_and_rollbacks_reads_as_shares_over_time(day: Path) -> None:
    t = timeline(day, "model", "prod")
    kinds = [e.kind for e in t.events]
    assert kinds[:7] == ["deploy", "shadow", "rollback", "canary", "step", "promote", "auto-rollback"]
    assert set(kinds[7:]) == {"gate-breach", "runbook"}
    shares = [(s.role, s.share) for s in t.spans["v1.1.0"]]
    assert shares == [("shadow", 25.0), ("canary", 10.0), ("canary", 50.0), ("live", 100.0)]
    assert [s.share for s in t.spans["v1.0.0"] if s.role == "live"][-4:] == [100.0, 90.0, 50.0, 100.0]
    step = next(s for s in t.spans["v1.1.0"] if s.share == 50.0)
    assert t.share_at(step.start) == {"v1.0.0": 50.0, "v1.1.0": 50.0}  # a shadow takes no share
    auto = next(e for e in t.events if e.kind == "auto-rollback")  # failed gates as journalled, never parsed back
    assert (auto.actor, auto.failed_gates, auto.detail) == ("watchdog", ("errors",), "rolled back from v1.1.0")
    breach = next(e for e in t.events if e.kind == "gate-breach")
    assert (breach.version, breach.detail, breach.failed_gates) == ("v1.1.0", "rolled back to v1.0.0", ("errors",))
    book = next(e for e in t.events if e.kind == "runbook")
    assert book.runbook is not None and (book.incident, book.version) == ("INC-9", "v1.0.0")
    assert t.serving_now is not None and t.serving_now.words() == "v1.0.0 (100%)"
    assert timeline(day, "model", "prod", since=t.end + timedelta(hours=1)).events == ()
    assert [e.kind for e in timeline(day, "model", "prod", until=step.start).events][-1] == "step"


def test_a_rollback_by_hand_under_the_watchdogs_name_is_manual_in_the_timeline_and_gates_over_time(
    day: Path,
) -> None:
    from rollbackkit.ops.gate_history import _rollbacks

    kinds = {e.tag: e.kind for e in timeline(day, "model", "prod").events if e.kind.endswith("rollback")}
    marks = _rollbacks(Repository(day), "model", "prod", None, None)  # what the gates panel draws
    assert [(m.reason, m.automatic) for m in marks] == [
        ("shadow answers look off", False),  # actor "watchdog", action "rollback": a person's
        (f"gate failed: {BREACH}", True),
    ]
    assert [kinds[m.tag] for m in marks] == ["rollback", "auto-rollback"]  # one rule, both panels


def test_the_figure_stacks_shares_marks_now_and_keeps_reasons_in_hover(day: Path) -> None:
    t = timeline(day, "model", "prod")
    figure = timeline_figure(t)
    bands = [d for d in figure.data if d.stackgroup == "traffic"]
    assert [d.name for d in bands] == ["v1.0.0 \u25c0 serving now", "v1.1.0"]
    assert np.allclose(np.sum([d.y for d in bands], axis=0), 100.0)  # every moment's traffic adds up
    shadow = [d for d in figure.data if "shadow (mirror" in (d.name or "")]
    assert len(shadow) == 1 and shadow[0].stackgroup is None
    hover = " ".join(" ".join(d.hovertext) for d in figure.data if d.hovertext is not None)
    assert "score a mirror first" in hover and "INC-3" in hover and "failed gates: errors" in hover
    assert "segment-drift" in hover  # the watchdog's whole words
    texts = [a.text for a in figure.layout.annotations]
    assert texts[0] == "now: v1.0.0 100%" and all(len(re.sub("<[^>]+>", "", x)) <= 26 for x in texts)
    assert "errors" in texts[1]  # the breach, short; the whole reason is in its hover
    assert shadow[0].line.color == bands[1].line.color  # a version's shadow in its band's colour
    assert figure.layout.uirevision == "model/prod"  # a refresh keeps the user's zoom
    assert points_in(figure) <= MAX_POINTS


def test_the_panel_marks_what_serves_and_opens_the_runbook_inside_itself(day: Path) -> None:
    panel = TimelinePanel("model", "prod", day)
    assert "rollbackkit-serving-now" in panel.header.value and "v1.0.0 (100%)" in panel.header.value
    assert "INC-9" in panel.runbook_list.value and panel.message.value == ""
    assert len(panel.assignments) == 7 and panel.serving[-1][1] == "v1.0.0"
    assert "color:white" not in panel.header.value.replace(" ", "") and "rgba(" in panel.header.value  # dark theme
    assert f"live since {panel.timeline.serving_now.since:%Y-%m-%d %H:%M}" in panel.header.value  # type: ignore[union-attr]
    panel.open_runbook(0)
    assert "rollbackkit-runbook-view" in panel.viewer.value and "srcdoc=" in panel.viewer.value
    assert "review the breach" in panel.viewer.value  # the executed notebook's own content, rendered
    page = html.unescape(panel.viewer.value.split('srcdoc="')[1])
    assert "sandbox=''" in panel.viewer.value and "<script" not in page and "cdnjs" not in page  # air-gapped, inert
    assert len(panel.viewer.value) < 150_000 and "CanvasText" in page  # small; its own light/dark colours
    first, last = panel.timeline.start, panel.timeline.end  # type: ignore[union-attr]
    panel.figure.update_xaxes(range=[first, first + (last - first) / 2], autorange=False)  # the user zooms in
    panel.refresh()
    assert panel.figure.layout.xaxis.range is not None and panel.figure.layout.uirevision == "model/prod"
    panel.open_runbook("audit/runbooks/not-there.ipynb")
    assert panel.viewer.value.count("rollbackkit-error") == 1 and "Traceback" not in panel.viewer.value
    watching = TimelinePanel("model", "prod", day, live=3600)  # refreshes itself (pausable) off the kernel's thread
    assert watching.live is not None and watching.live.playing and watching.live in watching.children
    watching.close()
    assert not watching.live.playing


def test_no_history_and_unknown_names_are_one_line(day: Path) -> None:
    empty = timeline(day, "model", "staging")
    assert empty.empty and empty.known_envs == ("prod",)
    assert TimelinePanel("model", "staging", day).message.value.count("no history in staging") == 1
    for name, env, what in (("nomodel", "prod", "No bundle named"), ("model", "Bad Env", "Invalid environment")):
        line = TimelinePanel(name, env, day).message.value
        assert line.count("rollbackkit-error") == 1 and what in line and "Traceback" not in line
    with pytest.raises(VersionNotFound):
        timeline(day, "nomodel", "prod")
    with pytest.raises(InvalidInput):
        timeline(day, "model", "prod", since="yesterday")
    assert failed_gate_names("gate failed: rollback: errors error rate 0.12 > 0.05") == ("errors",)


def test_a_thousand_assignments_stay_fast_and_under_the_point_budget(day: Path, tmp_path: Path) -> None:
    import time

    repo = copy_project(day, tmp_path)
    shutil.copy(day.parent / "features.py", tmp_path / "features.py")
    many_assignments(repo, "model", "prod", 1000)
    timeline_figure(timeline(repo, "model", "prod"))  # warm: plotly's first import is not the panel's cost
    started = time.perf_counter()
    t = timeline(repo, "model", "prod")
    figure = timeline_figure(t)
    seconds = time.perf_counter() - started
    assert len(t.events) >= 1000 and points_in(figure) <= MAX_POINTS
    assert seconds < 1.5, seconds  # 300 ms on a quiet machine (bench widgets); generous for shared CI cores


def test_many_versions_fold_into_bands_binned_by_time_under_the_budget() -> None:
    t = fake_timeline(versions=40, changes=6000)
    figure = timeline_figure(t)
    bands = [d for d in figure.data if d.stackgroup == "traffic"]
    assert len(bands) == 12 and bands[-1].name == "29 other versions"
    assert np.allclose(np.sum([d.y for d in bands], axis=0), 100.0, atol=0.05)  # binned means still add up
    assert points_in(figure) <= MAX_POINTS and "events drawn" in figure.layout.title.text


def test_shadows_share_one_point_budget_and_take_their_versions_colours() -> None:
    t = fake_timeline(versions=30, changes=600, shadows=400)  # 12,000 shadow spans
    figure = timeline_figure(t)
    bands = {d.legendgroup: d.line.color for d in figure.data if d.stackgroup == "traffic"}
    shadows = [d for d in figure.data if "shadow (mirror" in (d.name or "")]
    assert points_in(figure) <= MAX_POINTS and sum(len(d.x) for d in shadows) <= SHADOW_BUDGET
    assert len(shadows) <= MAX_VERSIONS and all(d.line.color == bands[d.legendgroup] for d in shadows)
    assert shadows[-1].name.endswith(" other versions shadow (mirror, answers nobody)")
    assert shadows[-1].line.color == OTHERS and shadows[-1].legendgroup == "19 other versions"  # with their band


def test_what_serves_now_is_one_rule_for_the_timeline_and_every_badge(day: Path) -> None:
    t = timeline(day, "model", "prod")
    assert serving_now(Registry(day), ["model"], "prod") == [t.serving_now]
    assert [m.label() for m in now_serving(Registry(day), ["model"])] == ["serving prod"]
    step = next(s for s in t.spans["v1.1.0"] if s.share == 50.0)
    during = timeline(day, "model", "prod", until=step.start - timedelta(seconds=0.5)).serving_now
    assert during is not None and during.words() == "v1.0.0 (90%) + canary v1.1.0 (10%)"
    assert during.since == t.events[0].time  # live since its deploy: not since the canary took its 10%
    old = [
        Assignment("m", "prod", "v1", "m#prod#1", "", "deploy", timestamp=1_790_000_000),
        Assignment("m", "prod", "v2", "m#prod#2", "", "shadow", timestamp=1_790_000_060),  # no percent: all requests
    ]
    now = now_of(old, replay("m", "prod", old))
    assert now is not None and now.shadow_percent == 100.0 and "scores 100% of requests" in now.words()
    assert [(m.label(), m.share) for m in marks(now)] == [("serving prod", 100.0), ("shadow prod", 100.0)]
    badge = now_badge(marks(now)[1])
    assert "color:white" not in badge.replace(" ", "") and "rgba(110,119,129,0.18)" in badge  # light and dark themes


LOOK = """\
import json
from rollbackkit.widgets import TimelinePanel
from rollbackkit.widgets.notebook_links import jupyter_host
panel = TimelinePanel("model", "prod", {repo!r})
panel.open_runbook(0)
host = jupyter_host()
print("SAID", json.dumps({{"kind": host.kind, "root": str(host.root), "table": panel.runbook_list.value,
    "viewer": "rollbackkit-runbook-view" in panel.viewer.value and "review the breach" in panel.viewer.value}}))
display(panel)
"""


def _said(text: str) -> dict[str, Any]:
    found = re.search(r"SAID (\{.*\})", html.unescape(text))  # a kernel's stdout, or Voila's page of it
    assert found is not None, text[-3000:]
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def test_the_runbook_link_is_built_for_the_host_the_kernel_runs_under(tmp_path: Path, monkeypatch: Any) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    server = {"pid": 4242, "root_dir": str(tmp_path), "base_url": "/user/ada/", "port": 8888}
    (runtime / "jpserver-4242.json").write_text(json.dumps(server))
    host = jupyter_host(environ={}, parent=4242)  # the server that started this kernel
    assert host == JupyterHost("lab", tmp_path, "/user/ada/")
    assert jupyter_host(environ={"JPY_PARENT_PID": "4242"}) == host  # started through conda run, uv, pixi, a script
    notebook = tmp_path / "project" / "audit" / "runbooks" / "20261130T2200Z rollback.ipynb"
    assert notebook_href(notebook, host) == "/user/ada/lab/tree/project/audit/runbooks/20261130T2200Z%20rollback.ipynb"
    assert notebook_href(Path("/elsewhere/x.ipynb"), host) is None  # outside the server's root: the panel view only
    voila = jupyter_host(environ={"SERVER_SOFTWARE": "voila/0.5.13"}, parent=4242)
    assert voila.kind == "voila" and notebook_href(notebook, voila) is None  # /voila/render would run it again
    assert jupyter_host(environ={}, parent=1).kind == "none"  # papermill, a script


@pytest.mark.long
def test_runbooks_open_under_jupyterlab_and_voila(day: Path, tmp_path: Path) -> None:
    """JupyterLab: the link opens the executed notebook in a tab; Voila: the panel renders it (no link
    would: /voila/render would run the runbook again). Real servers, real kernels."""
    root = day.parent
    page = root / "look.ipynb"
    cell = nbformat.v4.new_code_cell(LOOK.format(repo=str(day)))
    kernelspec = {"name": "rollbackkit", "display_name": "rollbackkit", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": kernelspec}), str(page))
    token, port = secrets.token_hex(8), free_port()
    lab = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.allow_root=True", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}"]  # fmt: skip
    with served(lab, tmp_path, port, f"/api/status?token={token}") as url:
        said = _said(in_lab_kernel(url, token, tmp_path / "runtime", "look.ipynb", LOOK.format(repo=str(day))))
        assert said["kind"] == "lab" and Path(said["root"]) == root and said["viewer"]
        href = re.search(r"href='([^']+)'", said["table"]).group(1)  # type: ignore[union-attr]
        assert href.startswith("/lab/tree/project/audit/runbooks/") and href.endswith(".ipynb")
        opened = httpx.get(f"{url}{href}", headers={"Authorization": f"token {token}"}, timeout=30)
        assert opened.status_code == 200 and "JupyterLab" in opened.text
        name = href.removeprefix("/lab/tree/")
        assert httpx.get(f"{url}/api/contents/{name}", headers={"Authorization": f"token {token}"}).status_code == 200
    port = free_port()
    voila = [sys.executable, "-m", "voila", str(page), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"]
    with served(voila, tmp_path, port, "/voila/static/ready") as url:
        said = _said(httpx.get(url, timeout=120).text)
        assert said["kind"] == "voila" and said["viewer"] and "href=" not in said["table"]
        assert "review the breach" in _in_browser(url)  # the widget shows the rendered runbook in its iframe


def _in_browser(url: str) -> str:
    """The text of the panel's runbook view as Chromium shows it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url, timeout=120_000)
            page.wait_for_selector("iframe.rollbackkit-runbook-view", timeout=60_000)
            return page.frame_locator("iframe.rollbackkit-runbook-view").locator("body").inner_text(timeout=30_000)
        finally:
            browser.close()
