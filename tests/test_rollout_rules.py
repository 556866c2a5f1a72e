"""One set of rollout rules: the CLI and Python faces and the admin API accept and refuse the same
canary, shadow, steps and bake, in the same words (rollbackkit.analysis.rollout_plan), each face
naming the option as its user spells it (``--bake`` on the command line, ``bake`` over HTTP).

An on-call engineer who tries ``--bake 0s`` on the command line and then ``"bake": 0`` over
HTTP gets the same one line both times but the spelling; an accepted plan reaches the server's
busy check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.rollout_options import FLAGS, promote_body, rollout_request
from rollbackkit.serving.environment import ServingEnvironment

from .servers import running_server

# (the CLI/Python options, the same request as an admin deploy body)
TABLE: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"canary": 10}, {"canary": 10}),
    ({"shadow": 100}, {"shadow": 100}),
    ({"steps": "5,25,50,100", "bake": "10m"}, {"steps": [5, 25, 50, 100], "bake": "10m"}),
    ({"steps": [5, 100], "bake": 90}, {"steps": [5, 100], "bake": 90}),
    ({"steps": "5,100", "bake": "0s"}, {"steps": [5, 100], "bake": "0s"}),
    ({"steps": [5, 100], "bake": 0}, {"steps": [5, 100], "bake": 0}),
    ({"steps": [5, 100], "bake": "10x"}, {"steps": [5, 100], "bake": "10x"}),
    ({"steps": [5, 100], "bake": -1.0}, {"steps": [5, 100], "bake": -1.0}),
    ({"bake": "10m"}, {"bake": "10m"}),
    ({"bake": "10x"}, {"bake": "10x"}),
    ({"canary": 0}, {"canary": 0}),
    ({"canary": 100}, {"canary": 100}),
    ({"shadow": 0}, {"shadow": 0}),
    ({"shadow": 101}, {"shadow": 101}),
    ({"canary": 10, "shadow": 20}, {"canary": 10, "shadow": 20}),
    ({"shadow": 20, "steps": "5,100"}, {"shadow": 20, "steps": [5, 100]}),
    ({"steps": "100"}, {"steps": [100]}),
    ({"steps": "50,25,100"}, {"steps": [50, 25, 100]}),
    ({"steps": "5,25,50"}, {"steps": [5, 25, 50]}),
    ({"steps": "0,100"}, {"steps": [0, 100]}),
]


def _face(options: dict[str, Any]) -> str | None:
    """What the CLI and Python faces say: None (accepted) or the refusal's line."""
    try:
        rollout_request(**options)
    except InvalidInput as exc:
        return f"{exc.message} {exc.hint}"
    return None


def _as_the_api_spells_it(said: str | None) -> str | None:
    """A face's line with its flags (``--from-shadow``) spelled as the API's fields (``from_shadow``)."""
    if said is None:
        return None
    for field, flag in sorted(FLAGS.items(), key=lambda item: -len(item[1])):
        said = said.replace(flag, field)
    return said


def test_the_faces_and_the_admin_api_accept_and_refuse_the_same_rollouts_in_the_same_words(served: Path) -> None:
    told = []
    with running_server(served, "churn", "prod", watchdog=3600) as server:
        busy = server.admin("deploy", {"version": "v1.1.0", "canary": 5})  # then an accepted plan meets a 409
        assert busy.status_code == 200, busy.text
        for options, body in TABLE:
            answer = server.admin("deploy", {"version": "v1.1.0", **body})
            said = f"{answer.json()['error']} {answer.json()['hint']}" if answer.status_code == 400 else None
            told.append((options, _face(options), said, answer.status_code))
    for options, face, said, status in told:
        assert _as_the_api_spells_it(face) == said, (options, status)  # the same words, but the spelling
        assert face is None or "--" not in (said or ""), said  # the API never names a CLI flag
        assert status == (400 if face is not None else 409), (options, face)
        assert face is None or "\n" not in face
    refused = [options for options, face, _, _ in told if face is not None]
    assert len(refused) == len(TABLE) - 4  # the first four make one rollout each
    bake_zero = next(face for options, face, _, _ in told if options.get("bake") == 0)
    assert bake_zero is not None and bake_zero.startswith("--bake: 0s is no time at all")  # as the CLI user typed it
    shadow_zero = next(face for options, face, _, _ in told if options == {"shadow": 0})
    assert shadow_zero == "--shadow: 0 is not a percent from 1 to 100. Give --shadow 1-100."


@pytest.mark.parametrize(("from_shadow", "canary"), [(False, 10), (True, 0), (True, 100)])
def test_promote_refuses_a_canary_the_same_way_in_python_and_in_the_server(
    served: Path, from_shadow: bool, canary: int
) -> None:
    with pytest.raises(InvalidInput) as face:
        promote_body(from_shadow, canary)
    environment = ServingEnvironment(served, "churn", "prod")
    environment.start()
    try:
        with pytest.raises(InvalidInput) as server:
            environment.promote(from_shadow=from_shadow, canary=canary)
    finally:
        environment.stop()
    said = f"{face.value.message} {face.value.hint}"
    assert _as_the_api_spells_it(said) == f"{server.value.message} {server.value.hint}"
    assert "--canary" in said and ("--from-shadow" in said) == (not from_shadow)
