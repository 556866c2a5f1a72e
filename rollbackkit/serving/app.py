"""The HTTP face of a served environment (Starlette). Thin: every route calls the API.

- ``POST /predict``: ``{"records": [...]}``, ``{"columns": [...], "data": [[...]]}`` or
  ``{"frame": <wire frame>}`` (typed, see :mod:`rollbackkit.serving.wire`), an optional
  ``"key"`` for sticky canary routing; answers ``{"predictions", "version", "bundle_id",
  "slot", "request_id"}``. Rows without dtypes are read with the scoring version's dtypes
  where nothing is lost (``null`` in a nullable feature is a missing value). Features a
  version cannot score get 422 naming the columns, never a 500.
- ``GET /healthz`` (503 while nothing is served), ``GET /status``, ``GET /openapi.json``
  (every route, described in :mod:`rollbackkit.serving.openapi`).
- ``POST /admin/deploy|promote|shift|rollback`` (an optional ``"actor"`` names the person;
  default ``admin-api``), and ``affected|backfill|drift|window|gates`` over the prediction
  log (the server is its one writer): need ``Authorization: Bearer TOKEN``
  (401 without, 403 with a wrong one; nothing changes either way). Frames in admin bodies
  (``features``) and answers (``window``) are wire frames.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rollbackkit.errors import IncompatibleInput, InvalidInput, RollbackkitError
from rollbackkit.serving.environment import PreflightFailed, ServingEnvironment
from rollbackkit.serving.openapi import openapi_document
from rollbackkit.serving.router import RoutingError
from rollbackkit.serving.wire import decode_frame, is_wire_frame, json_records, records_frame


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _BadRequest("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _BadRequest("The body must be a JSON object.")
    return body


class _BadRequest(Exception):
    pass


def _frame(body: dict[str, Any]) -> tuple[pd.DataFrame, bool]:
    """The request's rows, and whether they carry dtypes (a wire frame) or not (JSON rows)."""
    try:
        if is_wire_frame(body.get("frame")):
            frame = decode_frame(body["frame"])
            if len(frame):
                return frame, True
        elif isinstance(body.get("records"), list) and body["records"]:
            return records_frame(body["records"]), False
        elif isinstance(body.get("columns"), list) and isinstance(body.get("data"), list) and body["data"]:
            return pd.DataFrame(body["data"], columns=body["columns"]), False
    except InvalidInput as exc:
        raise _BadRequest(str(exc)) from exc
    except ValueError as exc:  # rows of another length than the columns
        raise _BadRequest(f"The rows do not match the columns: {exc}.") from exc
    raise _BadRequest(
        'Send {"records": [{...}, ...]}, {"columns": [...], "data": [[...], ...]} or {"frame": {...}} with rows.'
    )


def _features(body: dict[str, Any]) -> pd.DataFrame | None:
    """The ``features`` of an admin body: a wire frame (or, from older clients, records)."""
    features = body.get("features")
    if not features:
        return None
    try:
        return decode_frame(features)
    except InvalidInput as exc:
        raise _BadRequest(f"features: {exc}") from exc


def create_app(env: ServingEnvironment, token: str) -> Starlette:
    """Build the app for ``env``; admin routes compare bearer tokens in constant time."""

    def authorised(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return _error(401, "Admin calls need 'Authorization: Bearer <token>'.")
        if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return _error(403, "The admin token is wrong.")
        return None

    async def predict(request: Request) -> JSONResponse:
        try:
            body = await _json(request)
            frame, typed = _frame(body)
        except _BadRequest as exc:
            return _error(400, str(exc))
        request_id = uuid.uuid4().hex
        key = str(body.get("key") or request.headers.get("x-request-key") or request_id)
        try:
            routed = await run_in_threadpool(env.predict, frame, key, request_id, untyped=not typed)
        except IncompatibleInput as exc:
            return _error(422, exc.message, columns=getattr(exc, "columns", []), request_id=request_id)
        except RoutingError as exc:
            return _error(503, exc.message, request_id=request_id)
        except Exception as exc:  # a model failure is the server's fault, reported as JSON
            return _error(500, f"Scoring failed: {type(exc).__name__}: {exc}", request_id=request_id)
        slot = routed.slot
        return JSONResponse(
            {
                "predictions": json_records(routed.outputs),
                "version": slot.bundle.version,
                "bundle_id": slot.bundle.bundle_id,
                "slot": slot.name,
                "request_id": request_id,
            }
        )

    async def healthz(request: Request) -> JSONResponse:
        live = env.router.status()["live"]
        if live is None:  # up, but a load balancer must not send it traffic
            reason = f"nothing is served: no version of {env.name} is live in {env.env}; deploy one"
            return JSONResponse({"ok": False, "version": None, "reason": reason}, status_code=503)
        return JSONResponse({"ok": True, "version": live["version"]})

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(env.name, env.env))

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(env.status))  # asks the log's writer process

    def admin(operation: str) -> Any:
        async def handler(request: Request) -> JSONResponse:
            denied = authorised(request)
            if denied is not None:
                return denied
            try:
                body = await _json(request)
                result = await run_in_threadpool(_admin_call, env, operation, body)
            except _BadRequest as exc:
                return _error(400, str(exc))
            except PreflightFailed as exc:
                return _error(409, exc.message, hint=exc.hint, preflight=exc.report)
            except RollbackkitError as exc:
                return _error(409, exc.message, hint=exc.hint)
            return JSONResponse(result)

        return handler

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *[
            Route(f"/admin/{op}", admin(op), methods=["POST"])
            for op in ("deploy", "promote", "shift", "rollback", "affected", "backfill", "drift", "window", "gates")
        ],
    ]
    return Starlette(routes=routes)


def _admin_call(env: ServingEnvironment, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    actor = str(body.get("actor") or "admin-api")  # the CLI sends the person's name
    features = _features(body)
    if operation == "deploy":
        if not isinstance(body.get("version"), str):
            raise _BadRequest('Send {"version": "vX.Y.Z"}.')
        canary = body.get("canary")
        return env.deploy(
            body["version"],
            canary=int(canary) if canary is not None else None,
            features=features,
            force=bool(body.get("force")),
            reason=str(body.get("reason", "")),
            actor=actor,
        )
    if operation == "promote":
        return env.promote(reason=str(body.get("reason", "")), actor=actor)
    if operation == "shift":
        state = env.router.shift(str(body.get("slot", "")), int(body.get("percent", 100)))
        env.journal.append(
            "shift",
            name=env.name,
            env=env.env,
            slot=body.get("slot"),
            percent=body.get("percent"),
            generation=state.generation,
        )
        return {"status": env.status()}
    if operation in ("affected", "backfill", "drift", "window", "gates"):
        from rollbackkit.rollback import log_operation

        if env.log is None:
            raise RollbackkitError("This server runs without a prediction log.", "Restart it without --no-log.")
        return log_operation(
            env.registry,
            env.log,
            operation,
            env.name,
            env.env,
            str(body.get("version", "")),
            since=body.get("since"),
        )
    return env.rollback(
        reason=str(body.get("reason", "")),
        incident=str(body.get("incident", "")),
        to=body.get("to"),
        force=bool(body.get("force")),
        actor=actor,
        features=features,
    )
