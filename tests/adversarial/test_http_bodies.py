"""Hostile bodies and headers against one real server: each gets one 4xx line, the server serves on.

One server per module (a private copy of the ``served`` project: v1.0.0 serving prod, v1.1.0
registered). Every case sends one hostile request, then asserts a 4xx with one
``{"error", "hint"}`` line (never a 500, never a traceback), that nothing an admin call could
change has changed (tags, HEAD, journal, what serves) and that a good ``/predict`` still
answers 200.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import copy_project, git, live_records
from ..servers import TOKEN, Server, running_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = live_records(2, seed=5)
ROW = GOOD[0]
NUMBER = "tenure_months"  # a numeric feature of both versions


@pytest.fixture(scope="module")
def repo(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(served_template, tmp_path_factory.mktemp("http-bodies"))


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    with running_server(repo, "churn", "prod", watchdog=3600) as running:
        yield running


def _nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def _frame(*columns: Any, rows: Any = 1) -> dict[str, Any]:
    return {"frame": {"format": "rollbackkit.frame/1", "rows": rows, "columns": list(columns)}}


def _raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _records(**changes: Any) -> bytes:
    return _raw({"records": [{**ROW, **changes}]})


# (route, raw body, what the one line must mention)
PREDICT: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"tenure=12", "not valid JSON"),
    "empty body": (b"", "not valid JSON"),
    "invalid UTF-8": (b'\xff\xfe{"records": []}', "not valid JSON"),
    "JSON array": (b"[1, 2]", "object"),
    "JSON string": (b'"records"', "object"),
    "JSON null": (b"null", "object"),
    "nested 100,000 deep": (b'{"records": ' + _nested(100_000).encode() + b"}", "not valid JSON"),
    "nested 150 deep in a value": (_records(**{NUMBER: "@"}).replace(b'"@"', _nested(150).encode()), ""),
    "lone surrogate in a value": (_records(contract="@").replace(b'"@"', b'"\\ud800"'), "surrogate"),
    "lone surrogate in a name": (b'{"records": [{"\\udfff": 1}]}', "surrogate"),
    "integer of 5,000 digits": (_records(**{NUMBER: "@"}).replace(b'"@"', b"9" * 5000), "not valid JSON"),
    "1e400 (infinite)": (_records(**{NUMBER: "@"}).replace(b'"@"', b"1e400"), NUMBER),
    "integer above 2**64": (_records(**{NUMBER: 2**70}), NUMBER),
    "a string for a number": (_records(**{NUMBER: "twelve"}), NUMBER),
    "an object for a number": (_records(**{NUMBER: {"months": 12}}), NUMBER),
    "a list for a number": (_records(**{NUMBER: [12]}), NUMBER),
    "an empty column name": (_records(**{"": 1}), ""),
    "records an object": (_raw({"records": ROW}), "records"),
    "records of numbers": (_raw({"records": [1, 2]}), "records"),
    "records empty": (_raw({"records": []}), "no rows"),
    "records null": (_raw({"records": None}), "no rows"),
    "no rows at all": (_raw({"key": "u-1"}), "no rows"),
    "columns and data of other lengths": (_raw({"columns": ["a", "b"], "data": [[1]]}), "columns"),
    "a row longer than the columns": (_raw({"columns": ["a"], "data": [[1, 2]]}), "columns"),
    "ragged data": (_raw({"columns": ["a", "b"], "data": [[1, 2], [1]]}), "columns"),
    "data not rows": (_raw({"columns": ["a"], "data": [1, 2]}), "data"),
    "columns not names": (_raw({"columns": [1, 2], "data": [[1, 2]]}), "columns"),
    "duplicate columns": (_raw({"columns": [NUMBER, NUMBER], "data": [[1, 2]]}), ""),
    "frame not a wire frame": (_raw({"frame": {"a": [1]}}), "frame"),
    "frame with a numeric dtype name": (_raw(_frame({"name": NUMBER, "dtype": 5, "values": [1]})), "frame"),
    "frame with an unknown dtype": (_raw(_frame({"name": NUMBER, "dtype": "quaternion", "values": [1]})), "frame"),
    "frame with a timezone from Mars": (
        _raw(_frame({"name": NUMBER, "dtype": "datetime64[ns, Mars/Olympus]", "values": ["2026-01-01"]})),
        "frame",
    ),
    "frame with rows not a number": (_raw(_frame({"name": NUMBER, "dtype": "int64", "values": [1]}, rows="x")), ""),
    "frame that miscounts its rows": (_raw(_frame({"name": NUMBER, "dtype": "int64", "values": [1]}, rows=5)), ""),
    "frame with columns not a list": (_raw({"frame": {"format": "rollbackkit.frame/1", "columns": "abc"}}), "frame"),
    "frame with a category missing": (
        _raw(_frame({"name": "contract", "dtype": "category", "values": ["x"], "categories": {"dtype": "str"}})),
        "frame",
    ),
    "key a list": (_raw({"records": GOOD, "key": ["u-1"]}), "key"),
    "an unknown field": (_raw({"records": GOOD, "model": "v1.1.0"}), "model"),
}

ADMIN: dict[str, tuple[str, bytes, str]] = {
    "deploy: not JSON": ("deploy", b"version=v1.1.0", "not valid JSON"),
    "deploy: a JSON array": ("deploy", b'["v1.1.0"]', "object"),
    "deploy: nested 100,000 deep": ("deploy", b'{"features": ' + _nested(100_000).encode() + b"}", "not valid JSON"),
    "deploy: no version": ("deploy", _raw({"reason": "x"}), "version"),
    "deploy: version a number": ("deploy", _raw({"version": 110}), "version"),
    "deploy: version a path": ("deploy", _raw({"version": "../../etc/passwd"}), ""),
    "deploy: version with a newline": ("deploy", _raw({"version": "v1.1.0\n"}), ""),
    "deploy: canary a string": ("deploy", _raw({"version": "v1.1.0", "canary": "20"}), "canary"),
    "deploy: canary 20.5": ("deploy", _raw({"version": "v1.1.0", "canary": 20.5}), "canary"),
    "deploy: canary 1e400": ("deploy", b'{"version": "v1.1.0", "canary": 1e400}', "canary"),
    "deploy: canary of 5,000 digits": ("deploy", b'{"version": "v1.1.0", "canary": ' + b"9" * 5000 + b"}", "JSON"),
    "deploy: canary 0 (a deploy that moves nothing)": ("deploy", _raw({"version": "v1.1.0", "canary": 0}), "canary"),
    "deploy: canary 100": ("deploy", _raw({"version": "v1.1.0", "canary": 100}), "canary"),
    "deploy: canary -5": ("deploy", _raw({"version": "v1.1.0", "canary": -5}), "canary"),
    "deploy: canary true": ("deploy", _raw({"version": "v1.1.0", "canary": True}), "canary"),
    "deploy: force a string": ("deploy", _raw({"version": "v1.1.0", "force": "yes"}), "force"),
    "deploy: force 1": ("deploy", _raw({"version": "v1.1.0", "force": 1}), "force"),
    "deploy: reason an object": ("deploy", _raw({"version": "v1.1.0", "reason": {"why": "x"}}), "reason"),
    "deploy: actor a list": ("deploy", _raw({"version": "v1.1.0", "actor": ["eve"]}), "actor"),
    "deploy: features garbage": ("deploy", _raw({"version": "v1.1.0", "features": {"format": "x"}}), "features"),
    "deploy: features of an unknown dtype": (
        "deploy",
        _raw({"version": "v1.1.0", **{"features": _frame({"name": "a", "dtype": "x", "values": [1]})["frame"]}}),
        "features",
    ),
    "deploy: features records of numbers": ("deploy", _raw({"version": "v1.1.0", "features": [1, 2]}), "features"),
    "deploy: an unknown field": ("deploy", _raw({"version": "v1.1.0", "slot": "green"}), "slot"),
    "deploy: lone surrogate": ("deploy", b'{"version": "v1.1.0", "reason": "\\udc00"}', "surrogate"),
    "promote: reason null": ("promote", _raw({"reason": None}), "reason"),
    "promote: an unknown field": ("promote", _raw({"percent": 100}), "percent"),
    "promote: nothing to promote": ("promote", _raw({"reason": "x"}), "canary"),
    "rollback: no reason": ("rollback", _raw({}), "reason"),
    "rollback: incident a number": ("rollback", _raw({"reason": "x", "incident": 7}), "incident"),
    "rollback: to a list": ("rollback", _raw({"reason": "x", "to": ["v1.1.0"]}), "to"),
    "rollback: to not a version": ("rollback", _raw({"reason": "x", "to": "v1.x"}), "v1.x"),
    "rollback: to an unknown version": ("rollback", _raw({"reason": "x", "to": "v9.9.9"}), "v9.9.9"),
    "rollback: force a string": ("rollback", _raw({"reason": "x", "force": "true"}), "force"),
    "rollback: a JSON string": ("rollback", b'"now"', "object"),
    "affected: since not a date": ("affected", _raw({"version": "v1.1.0", "since": "yesterday"}), "since"),
    "affected: since a number": ("affected", _raw({"version": "v1.1.0", "since": 1_700_000_000}), "since"),
    "affected: since a month 13": ("affected", _raw({"version": "v1.1.0", "since": "2026-13-01"}), "since"),
    "affected: no version": ("affected", _raw({"since": "2026-01-01"}), "version"),
    "affected: version not semver": ("affected", _raw({"version": "vx"}), "vx"),
    "backfill: version a number": ("backfill", _raw({"version": 1}), "version"),
    "window: version a list": ("window", _raw({"version": ["v1.1.0"]}), "version"),
    "gates: an unknown version": ("gates", _raw({"version": "v9.9.9"}), "v9.9.9"),
    "drift: version an object": ("drift", _raw({"version": {"v": 1}}), "version"),
    "drift: an unknown field": ("drift", _raw({"version": "v1.0.0", "stage": "dev"}), "stage"),
    "gate_history: version not a version": ("gate_history", _raw({"version": "v1.x"}), "v1.x"),
    "binned: column of 201 characters": (
        "binned",
        _raw({"column": "c" * 201, "edges": [0, 1]}),
        "column: String should have at most 200",
    ),
    "binned: by of 201 characters": (
        "binned",
        _raw({"column": NUMBER, "edges": [0, 1], "by": "b" * 201}),
        "at most 200",
    ),
    "binned: 101 versions": (
        "binned",
        _raw({"column": NUMBER, "edges": [0, 1], "versions": ["v1.0.0"] * 101}),
        "at most 100",
    ),
    "binned: a version not a version": (
        "binned",
        _raw({"column": NUMBER, "edges": [0, 1], "versions": ["v1.0.0", "latest"]}),
        "latest",
    ),
    "binned: edges not increasing": (
        "binned",
        _raw({"column": NUMBER, "edges": [0, 24, 12, 48]}),
        "strictly increasing",
    ),
    "binned: an edge repeated": ("binned", _raw({"column": NUMBER, "edges": [0, 12, 12, 48]}), "strictly increasing"),
}

HEADERS: dict[str, tuple[dict[str, Any], int]] = {
    "no Authorization": ({}, 401),
    "lower-case bearer": ({"Authorization": f"bearer {TOKEN}"}, 401),
    "Basic": ({"Authorization": f"Basic {TOKEN}"}, 401),
    "Bearer and a no-break space": ({"Authorization": b"Bearer \xa0"}, 403),
    "a no-break space before the token": ({"Authorization": b"Bearer \xa0" + TOKEN.encode()}, 403),
    "a no-break space after the token": ({"Authorization": b"Bearer " + TOKEN.encode() + b"\xa0"}, 403),
    "two spaces": ({"Authorization": f"Bearer  {TOKEN}"}, 403),
    "the token less its last byte": ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 403),
    "the token in upper case": ({"Authorization": f"Bearer {TOKEN.upper()}"}, 403),
}


def _assert_one_line(response: httpx.Response, *mentions: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:1000])
    body = response.json()
    assert isinstance(body, dict) and {"error", "hint"} <= set(body), body
    assert isinstance(body["error"], str) and body["error"], body
    assert "\n" not in body["error"] and "\n" not in body["hint"], body
    assert "Traceback" not in response.text
    for mention in mentions:
        assert mention in body["error"], (mention, body["error"])


def _unchanged(repo: Path) -> tuple[str, str, str]:
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    return (
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags"),
        git(repo, "rev-parse", "HEAD"),
        hashlib.sha256(journal.read_bytes()).hexdigest() if journal.exists() else "",
    )


def _still_serving(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"ok": True, "version": "v1.0.0"}
    good = server.predict(GOOD)
    assert good.status_code == 200, good.text
    assert good.json()["version"] == "v1.0.0"


def _post(server: Server, path: str, body: bytes, headers: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}{path}", content=body, headers={"Content-Type": "application/json", **headers}, timeout=60
    )


@pytest.mark.parametrize("case", list(PREDICT))
def test_a_hostile_predict_body_is_one_4xx_line(server: Server, case: str) -> None:
    body, mention = PREDICT[case]
    before = server.status()["refused"]["bad_predict_bodies"]
    answer = _post(server, "/predict", body, {})
    _assert_one_line(answer, *([mention] if mention else []))
    counted = server.status()["refused"]["bad_predict_bodies"] - before
    assert counted == (answer.status_code == 400), (answer.status_code, counted)  # 400s are counted, apart
    _still_serving(server)


@pytest.mark.parametrize("case", list(ADMIN))
def test_a_hostile_admin_body_is_one_4xx_line_and_changes_nothing(server: Server, repo: Path, case: str) -> None:
    operation, body, mention = ADMIN[case]
    before = _unchanged(repo)
    _assert_one_line(_post(server, f"/admin/{operation}", body, AUTH), *([mention] if mention else []))
    assert _unchanged(repo) == before
    _still_serving(server)


@pytest.mark.parametrize("case", list(HEADERS))
def test_a_wrong_authorization_header_is_refused_exactly(server: Server, repo: Path, case: str) -> None:
    headers, status = HEADERS[case]
    before = _unchanged(repo)
    strangers = server.status()["refused"]["unauthorised"]
    answer = _post(server, "/admin/rollback", _raw({"reason": "by a stranger"}), headers)
    assert answer.status_code == status, answer.text
    assert server.status()["refused"]["unauthorised"] == strangers + 1
    _assert_one_line(answer)
    assert _unchanged(repo) == before
    _still_serving(server)


def test_shift_is_gone_every_change_of_what_serves_is_an_assignment(server: Server, repo: Path) -> None:
    """``/admin/shift`` moved traffic without an assignment tag; it no longer exists."""
    before = _unchanged(repo)
    answer = _post(server, "/admin/shift", _raw({"slot": "green", "percent": 100}), AUTH)
    assert answer.status_code in (404, 405), answer.text
    assert "/admin/shift" not in httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    assert _unchanged(repo) == before
    _still_serving(server)


def test_the_exact_token_is_accepted(server: Server) -> None:
    """The control case: the same request with the right header is answered."""
    answer = _post(server, "/admin/gates", _raw({"version": "v1.0.0"}), AUTH)
    assert answer.status_code == 200, answer.text
    _still_serving(server)
