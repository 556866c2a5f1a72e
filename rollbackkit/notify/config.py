"""``notify:`` in ``.rollbackkit/config.yaml``: the webhook targets, validated before anything sends.

Each target: ``name``, ``url`` (http/https) or ``url_env`` (the variable holding it: a Slack
URL is itself a credential), ``secret_env`` (the variable holding the secret) or ``secret``
(literal, discouraged: the config is committed; optional for ``format: slack``, which Slack
never checks), ``events`` (default all, ``"*"`` all), ``format`` (``json`` or ``slack``),
``timeout`` (seconds per attempt, the whole attempt), ``attempts``, ``backoff`` and
``max_delay`` (retries: ``backoff * 2**n`` seconds, jittered down to half, at most
``max_delay``; the defaults keep retrying for 9-18 minutes, a receiver's restart),
``pause_grace`` (seconds a rollout stays paused before ``paused`` is sent). The defaults
are :class:`Target`'s.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from rollbackkit.errors import InvalidInput, NotifyConfigError
from rollbackkit.notify.events import EVENTS
from rollbackkit.project import ProjectPaths

FORMATS = ("json", "slack")
KEYS = {"name", "url", "url_env", "secret_env", "secret", "events", "format", "timeout", "attempts", "backoff"}
KEYS |= {"max_delay", "pause_grace"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HINT = 'Fix notify: in .rollbackkit/config.yaml (README "Notifications").'
NO_TARGET_HINT = 'Add notify: to .rollbackkit/config.yaml (README "Notifications").'


class _ConfigFailures:
    """How many notices this process could not send because ``notify:`` was broken when they happened."""

    count = 0
    _lock = threading.Lock()  # several threads count

    def __call__(self) -> None:
        with self._lock:
            self.count += 1


note_config_failure = _ConfigFailures()
"""Call it for each notice a broken ``notify:`` stopped (``/status``'s ``config_errors``)."""


@dataclass(frozen=True)
class Target:
    """One webhook target (its URL and secret never show in ``repr``)."""

    name: str
    url: str = field(repr=False)  # a Slack URL is itself a credential
    secret: bytes = field(repr=False)
    events: frozenset[str]
    format: str = "json"
    timeout: float = 5.0  # seconds per attempt, the whole attempt
    attempts: int = 12
    backoff: float = 1.0
    max_delay: float = 300.0
    pause_grace: float = 600.0  # seconds a rollout stays paused before paused is sent

    def wants(self, event: str) -> bool:
        """Whether this target asked for ``event`` (``test`` goes to every target; one that asked
        for ``paused`` gets the ``resumed`` that ends it)."""
        return event == "test" or event in self.events or (event == "resumed" and "paused" in self.events)


def _bad(where: str, message: str, hint: str = HINT) -> NotifyConfigError:
    return NotifyConfigError(f"notify{' ' + where if where else ''}: {message}", hint)


def _number(raw: dict[str, Any], key: str, where: str, *, whole: bool = False) -> float:
    value = raw.get(key, Target.__dataclass_fields__[key].default)  # the default's one home: Target
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value != value:
        raise _bad(where, f"{key} must be a positive number, not {value!r}.")
    if whole and value != int(value):
        raise _bad(where, f"{key} must be a whole number, not {value!r}.")
    return float(value)


def _secret(raw: dict[str, Any], where: str, fmt: str) -> bytes:
    if "secret" in raw and "secret_env" in raw:
        raise _bad(where, "give secret_env or secret, not both.")
    if "secret_env" in raw:
        return _from_env(raw, "secret_env", where, "the webhook's secret").encode()
    if "secret" in raw:
        if not isinstance(raw["secret"], str) or not raw["secret"]:
            raise _bad(where, "secret must be a non-empty string.")
        return str(raw["secret"]).encode()
    if fmt == "slack":
        return b""  # Slack checks no signature: its URL is the credential (url_env)
    raise _bad(where, "no secret.", "Add secret_env: VARIABLE (the variable holding the webhook's secret).")


def _from_env(raw: dict[str, Any], key: str, where: str, what: str) -> str:
    """The value of the environment variable ``raw[key]`` names (``what``: what it holds, for the hint)."""
    variable = raw[key]
    if not isinstance(variable, str) or not variable:
        raise _bad(where, f"{key} must name an environment variable.")
    value = os.environ.get(variable, "")
    if not value:
        raise _bad(where, f"{key} {variable} is not set.", f"Export {variable} ({what}).")
    return value


def _url(raw: dict[str, Any], where: str) -> str:
    """The target's URL (from ``url`` or the variable ``url_env`` names), checked as httpx will parse it."""
    import httpx

    if "url" in raw and "url_env" in raw:
        raise _bad(where, "give url or url_env, not both.")
    if "url_env" in raw:
        url: Any = _from_env(raw, "url_env", where, "the webhook's URL")
        shown = f"from {raw['url_env']}"  # the URL itself may be the credential: never said
    else:
        url = raw.get("url")
        shown = repr(url)
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
        port = parsed.port if parsed is not None else None
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        parsed = port = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host or not (port is None or port > 0):
        raise _bad(where, f"url {shown} is not an http(s) URL.", "Give https://host[:port]/path.")
    return str(url)


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
    url = _url(raw, where)
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise _bad(where, f"format {fmt!r} is not one of {', '.join(FORMATS)}.")
    return Target(
        name, url, _secret(raw, where, str(fmt)), _events(raw, where), str(fmt),
        timeout=_number(raw, "timeout", where), attempts=int(_number(raw, "attempts", where, whole=True)),
        backoff=_number(raw, "backoff", where), max_delay=_number(raw, "max_delay", where),
        pause_grace=_number(raw, "pause_grace", where),
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


def load_target(paths: ProjectPaths, name: str) -> Target:
    """The project's target ``name`` alone, validated (another target's unset variable is not its error).

    Raises:
        NotifyConfigError: The config or ``notify:`` is malformed, no target is named ``name``,
            or that target's own settings are wrong.
    """
    try:
        raw = paths.read_config().get("notify")
    except InvalidInput as exc:
        raise NotifyConfigError(f"notify: {exc.message}", exc.hint or HINT) from None
    if raw is not None and not isinstance(raw, list):
        parse_targets(raw)  # raises, saying what notify: must be
    items = list(raw or [])
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == name:
            return parse_target(item, index)
    named = [str(i.get("name")) for i in items if isinstance(i, dict)]
    if not named:
        raise NotifyConfigError("notify: no target is configured.", NO_TARGET_HINT)
    raise NotifyConfigError(f"notify: no target named {name}.", f"Configured: {', '.join(named)}.")
