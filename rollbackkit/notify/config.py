"""``notify:`` in ``.rollbackkit/config.yaml``: the webhook targets, validated before anything sends.

Each target: ``name``, ``url`` (http/https), ``secret_env`` (the variable holding the secret)
or ``secret`` (literal, discouraged: the config is committed), ``events`` (default all, ``"*"``
all), ``format`` (``json`` or ``slack``), ``timeout`` (seconds per attempt), ``attempts``,
``backoff`` and ``max_delay`` (retries: ``backoff * 2**n`` seconds, jittered, at most
``max_delay``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rollbackkit.errors import InvalidInput, NotifyConfigError
from rollbackkit.notify.events import EVENTS
from rollbackkit.project import ProjectPaths

FORMATS = ("json", "slack")
KEYS = {"name", "url", "secret_env", "secret", "events", "format", "timeout", "attempts", "backoff", "max_delay"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HINT = 'Fix notify: in .rollbackkit/config.yaml (README "Notifications").'


@dataclass(frozen=True)
class Target:
    """One webhook target (its secret never shows in ``repr``)."""

    name: str
    url: str
    secret: bytes = field(repr=False)
    events: frozenset[str]
    format: str = "json"
    timeout: float = 5.0
    attempts: int = 8
    backoff: float = 1.0
    max_delay: float = 300.0

    def wants(self, event: str) -> bool:
        """Whether this target asked for ``event`` (``test`` goes to every target)."""
        return event == "test" or event in self.events


def _bad(where: str, message: str, hint: str = HINT) -> NotifyConfigError:
    return NotifyConfigError(f"notify{' ' + where if where else ''}: {message}", hint)


def _number(raw: dict[str, Any], key: str, default: float, where: str, *, whole: bool = False) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value != value:
        raise _bad(where, f"{key} must be a positive number, not {value!r}.")
    if whole and value != int(value):
        raise _bad(where, f"{key} must be a whole number, not {value!r}.")
    return float(value)


def _secret(raw: dict[str, Any], where: str) -> bytes:
    if "secret" in raw and "secret_env" in raw:
        raise _bad(where, "give secret_env or secret, not both.")
    if "secret_env" in raw:
        variable = raw["secret_env"]
        if not isinstance(variable, str) or not variable:
            raise _bad(where, "secret_env must name an environment variable.")
        value = os.environ.get(variable, "")
        if not value:
            raise _bad(where, f"secret_env {variable} is not set.", f"Export {variable} (the webhook's secret).")
        return value.encode()
    if "secret" in raw:
        if not isinstance(raw["secret"], str) or not raw["secret"]:
            raise _bad(where, "secret must be a non-empty string.")
        return str(raw["secret"]).encode()
    raise _bad(where, "no secret.", "Add secret_env: VARIABLE (the variable holding the webhook's secret).")


def _events(raw: dict[str, Any], where: str) -> frozenset[str]:
    events = raw.get("events", "*")
    if events == "*" or events == ["*"]:
        return frozenset(EVENTS)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise _bad(where, 'events must be a list of event names, or "*".')
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise _bad(where, f"events: unknown {', '.join(unknown)}.", f"Known: {', '.join(EVENTS)}.")
    return frozenset(events)


def parse_target(raw: Any, index: int) -> Target:
    """One ``notify:`` item as a :class:`Target` (raises :class:`NotifyConfigError`)."""
    if not isinstance(raw, dict):
        raise _bad(f"item {index + 1}", "each target must be a mapping with name, url and secret_env.")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"item {index + 1}", f"name {name!r} must be lower-case letters, digits, - or _.")
    where = f"target {name}"
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise _bad(where, f"unknown key {', '.join(unknown)}.", f"Known keys: {', '.join(sorted(KEYS))}.")
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(where, f"url {url!r} is not an http(s) URL.")
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise _bad(where, f"format {fmt!r} is not one of {', '.join(FORMATS)}.")
    return Target(
        name, str(url), _secret(raw, where), _events(raw, where), str(fmt),
        timeout=_number(raw, "timeout", 5.0, where), attempts=int(_number(raw, "attempts", 8, where, whole=True)),
        backoff=_number(raw, "backoff", 1.0, where), max_delay=_number(raw, "max_delay", 300.0, where),
    )  # fmt: skip


def parse_targets(raw: Any) -> list[Target]:
    """The ``notify:`` value as targets (None: none)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("", "must be a list of targets (- name: ..., url: ..., secret_env: ...).")
    targets = [parse_target(item, i) for i, item in enumerate(raw)]
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _bad(f"target {twice[0]}", "the name is used twice.", "Give each target its own name.")
    return targets


def load_targets(paths: ProjectPaths) -> list[Target]:
    """The project's notify targets, validated (secrets read from the environment now).

    Raises:
        NotifyConfigError: The config file or its ``notify:`` is malformed, a secret is missing.
    """
    try:
        config = paths.read_config()
    except InvalidInput as exc:
        raise NotifyConfigError(f"notify: {exc.message}", exc.hint or HINT) from None
    return parse_targets(config.get("notify"))
