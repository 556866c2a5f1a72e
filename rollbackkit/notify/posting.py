"""One signed POST of a notice to a target: bounded in time (the whole attempt) and in what it reads.

A receiver can neither hang a target's worker (``timeout`` is a deadline for the whole attempt,
not per read) nor fill the process's memory (at most :data:`READ_LIMIT` bytes of its answer are
read); whatever goes wrong becomes an :class:`Attempt`, never an exception.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rollbackkit.notify.config import Target
from rollbackkit.notify.message import Notice, body
from rollbackkit.notify.signing import HEADER, sign

RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx: a timeout, too early, too many requests
READ_LIMIT = 4096  # bytes of a receiver's answer read at most (the rest is never read)


@dataclass(frozen=True)
class Attempt:
    """How one POST went: ``ok``, whether to ``retry``, the HTTP ``status`` or the ``error``."""

    ok: bool
    retry: bool
    status: int | None = None
    error: str = ""


def _user_agent() -> str:
    try:
        return f"rollbackkit/{version('rollbackkit')}"
    except PackageNotFoundError:
        return "rollbackkit"


def headers(target: Target, notice: Notice, payload: bytes) -> dict[str, str]:
    """The POST's headers, signed now (the event and delivery headers are hints: the signed body says both)."""
    return {
        "Content-Type": "application/json",
        HEADER: sign(target.secret, payload, int(time.time())),
        "X-Rollbackkit-Event": notice.event,
        "X-Rollbackkit-Delivery": notice.id,
        "Idempotency-Key": notice.id,
        "User-Agent": _user_agent(),
    }


class _Late(Exception):
    """The attempt's deadline passed while the answer was read."""


class _Deadline:
    """Shuts the attempt's sockets down when ``seconds`` pass, whatever read is blocked (headers trickled
    one byte at a time included: httpx's timeouts are per read); ``passed`` says it fired."""

    def __init__(self, seconds: float) -> None:
        self.sockets: list[socket.socket] = []
        self.passed = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.name = "rollbackkit-notify-deadline"  # serve's shutdown waits for rollbackkit-* threads
        self._timer.daemon = True

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` extension: keep each socket the attempt connects."""
        if name == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                self.sockets.append(sock)

    def _fire(self) -> None:
        self.passed = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()


def post(target: Target, notice: Notice, client: Any) -> Attempt:
    """POST ``notice`` to ``target`` within ``target.timeout`` seconds in all; never raises (an error
    that is not the network's is final, not retried). The URL never appears in the error said.

    ``client`` should keep no connection alive (:func:`client`): the deadline needs each attempt's socket.
    """
    import httpx

    payload = body(target.format, notice)
    late = f"no whole answer within {target.timeout:g} s"
    with _Deadline(target.timeout) as deadline:
        try:
            with client.stream(
                "POST", target.url, content=payload, headers=headers(target, notice, payload),
                timeout=httpx.Timeout(target.timeout), extensions={"trace": deadline.trace},
            ) as response:  # fmt: skip
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if deadline.passed:
                        raise _Late(late)
                    if read >= READ_LIMIT:
                        break  # the status is what counts; the rest of a long answer is never read
                code = response.status_code
        except (httpx.HTTPError, _Late) as exc:
            return Attempt(False, True, error=f"Timeout: {late}" if deadline.passed else _said(exc, target))
        except Exception as exc:  # a bad URL, a codec error...: final (retrying cannot help), never raised
            return Attempt(False, False, error=_said(exc, target))
    if 200 <= code < 300:
        return Attempt(True, False, code)
    return Attempt(False, code >= 500 or code in RETRY_STATUSES, code, f"HTTP {code}")


def client() -> Any:
    """An ``httpx.Client`` for :func:`post`: no redirect followed, no connection kept between attempts."""
    import httpx

    return httpx.Client(follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0))


def _said(exc: BaseException, target: Target) -> str:
    said = str(exc).replace(target.url, "<url>") or "no answer"
    return f"{type(exc).__name__}: {said}"[:300]


def backoff(target: Target, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: ``backoff * 2**(n-1)``, at most
    ``max_delay``, jittered down to half (so many notifiers never retry in step)."""
    delay = min(target.max_delay, target.backoff * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)
