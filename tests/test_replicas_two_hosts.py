"""What the CLI says on one host about an operation a server on another host made (probe 20b #1, #3).

Host B's clone has not fetched: the tags host A's server makes reach origin, not B. B drives
A's server (its admin API answered in process, as JSON) and reads ``status`` from it: the
text names the version the change took traffic from and the canary's share, from the one
record, fetched from origin; never "takes all traffic" for a canary nor "an automatic
rollback" for a person's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from rollbackkit.ops import overview as overview_mod
from rollbackkit.ops import traffic
from rollbackkit.registry.assignments import Deployments
from rollbackkit.registry.repository import Repository
from rollbackkit.screens import messages
from rollbackkit.screens import status as status_screen
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.status import ServerStatus

from . import test_shared_tags as shared
from .test_shared_tags import git

hosts, iris_template, serve = shared.hosts, shared.iris_template, shared.serve  # the two clones' fixtures

URL = "http://host-a.invalid:8000"


def _drive(monkeypatch: pytest.MonkeyPatch, on_a: ServingEnvironment) -> None:
    """Admin calls to URL go to host A's environment; status reads return its /status (JSON round trip)."""

    def call(paths: Any, url: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        assert url == URL
        if operation == "deploy":
            answer = on_a.deploy(body["version"], canary=body.get("canary"), reason=body["reason"], force=True)
        else:
            answer = on_a.rollback(reason=body["reason"], actor=body["actor"])
        return json.loads(json.dumps(answer, default=str))

    monkeypatch.setattr(traffic, "admin_call", call)
    monkeypatch.setattr(
        overview_mod,
        "read_status",
        lambda url: ServerStatus.from_dict(json.loads(json.dumps(on_a.status(), default=str))),
    )


def _said(result: traffic.AssignmentResult, verb: str) -> str:
    console = Console(width=200, record=True, color_system=None)
    messages.assignment(console, result, verb)
    return console.export_text()


def test_host_b_tells_a_canary_and_its_rollback_made_by_host_a(hosts, serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, a, b = hosts
    _drive(monkeypatch, serve(a, "host-a"))

    canary = traffic.deploy(b, "iris@v1.1.0", "prod", canary=25, reason="softer", server=URL)
    said = _said(canary, "Deployed")
    assert "v1.0.0 -> v1.1.0 (canary)" in said and "v1.1.0 takes 25% of traffic, v1.0.0 the rest" in said

    view = overview_mod.overview(b, "iris", "prod", server=URL)
    assert view.canary is not None and (view.canary.version, view.canary_percent) == ("v1.1.0", 25)
    assert view.unfetched is None and view.live == "v1.0.0"

    rolled = traffic.rollback(b, "iris", "prod", reason="v1.1.0 misfiles setosa", server=URL)
    said = _said(rolled, "Rolled back")
    assert "Cancelled the canary v1.1.0; v1.0.0 takes all traffic again" in said
    assert "automatic rollback" not in said and "already serves live traffic" in said
    last = Deployments(Repository(b)).history("iris", "prod")[-1]
    assert (last.action, last.reason) == ("rollback", "v1.1.0 misfiles setosa")  # B's history is current


def test_without_origin_the_text_comes_from_the_answer(hosts, serve, monkeypatch, store_url) -> None:  # type: ignore[no-untyped-def]
    origin, a, b = hosts
    _drive(monkeypatch, serve(a, "host-a"))
    git(b, "remote", "set-url", "origin", str(origin.parent / "gone.git"))  # B cannot fetch A's tags

    canary = traffic.deploy(b, "iris@v1.1.0", "prod", canary=30, reason="softer", server=URL)
    assert "v1.1.0 takes 30% of traffic, v1.0.0 the rest" in _said(canary, "Deployed")

    view = overview_mod.overview(b, "iris", "prod", server=URL)
    assert view.canary is not None and (view.canary.version, view.canary_percent) == ("v1.1.0", 30)
    assert view.unfetched is not None and "not fetched from origin" in view.unfetched
    assert "\n" not in view.unfetched
    console = Console(width=100, record=True)
    console.print(status_screen.render(view))
    assert view.unfetched in " ".join(console.export_text().split()), "the screen never says history may be behind"
    assert view.live == "v1.0.0" and view.canary.tag not in git(b, "tag", "-l", "iris#*").split()

    monkeypatch.setenv("ROLLBACKKIT_STORE", store_url)  # no server answers: the store's routing row tells
    monkeypatch.setattr(overview_mod, "find_server", lambda paths, name, env: None)
    view = overview_mod.overview(b, "iris", "prod")
    assert view.server is None and view.live == "v1.0.0"
    assert view.canary is not None and (view.canary.version, view.canary_percent) == ("v1.1.0", 30)
