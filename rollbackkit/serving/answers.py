"""The HTTP app's request bodies and one-line errors, shared by :mod:`~rollbackkit.serving.app` and
:mod:`~rollbackkit.serving.signal_routes`: a body is read bounded (:data:`MAX_BODY_BYTES`, 413) and
validated by a pydantic model (400 naming the first problem); every refusal is one ``{"error", "hint"}`` line.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from rollbackkit.serving.bodies import Body

MAX_BODY_BYTES = 200 * 1024 * 1024
"""The largest request body read (a bigger ``Content-Length``, or more bytes sent: 413)."""

_B = TypeVar("_B", bound=Body)


class BadRequest(Exception):
    """A request refused as the client's: its status (400 or 413), message and hint."""

    def __init__(self, message: str, hint: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.hint, self.status = message, hint, status


async def read_body(request: Request) -> bytes:
    """The body's bytes, at most :data:`MAX_BODY_BYTES` (413 before reading when its
    ``Content-Length`` says more, or as soon as more arrives)."""
    too_big = BadRequest(
        f"The body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.",
        "Send fewer rows per request (split the batch).",
        413,
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def error(status: int, message: str, hint: str = "", **extra: Any) -> JSONResponse:
    """One ``{"error", "hint"}`` line, whatever a message quoted from the request held."""
    body = {"error": " ".join(message.split()), "hint": " ".join(hint.split()), **extra}
    return JSONResponse(body, status_code=status)


async def read(request: Request, model: type[_B]) -> _B:
    """The body as ``model``, or a one-line :class:`BadRequest` naming the first problem."""
    hint = f"See POST {request.url.path} in GET /openapi.json."
    try:
        return model.model_validate_json(await read_body(request))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "json_invalid":  # also too deep, a lone surrogate, a number out of range
            message = f"The body is not valid JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
            if "hex escape" in message:
                message += " (a \\u escape must be a whole character; a lone surrogate is not one)"
            message += "."
        elif first["type"] == "model_type":
            message = "The body must be a JSON object."
        elif first["type"] == "extra_forbidden":
            message = f"Unknown field {where!r}."
        else:
            message = f"{where}: {first['msg'].removeprefix('Value error, ')}."
        more = exc.error_count() - 1
        raise BadRequest(message + (f" ({more} more problem{'s' * (more > 1)})" if more else ""), hint) from None
