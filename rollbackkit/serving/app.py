"""The HTTP face of a served environment (Starlette). Thin: every route calls the API.

- ``POST /predict``: ``{"records": [...]}``, ``{"columns": [...], "data": [[...]]}`` or
  ``{"frame": <wire frame>}`` (typed, see :mod:`rollbackkit.serving.wire`), an optional
  ``"key"`` for sticky canary routing; answers ``{"predictions", "version", "bundle_id",
  "slot", "request_id"}``. Rows without dtypes are read with the scoring version's dtypes
  where nothing is lost (``null`` in a nullable feature is a missing value). Features a
  version cannot score get 422 naming the columns, never a 500.
- ``POST /labels`` (admin token): ground truth for logged rows, ``{"on": "request_id"|"key",
  "labels": [{"request_id": ..., "row": 0, "label": ...}]}``, read as the live version's
  classes (or numbers) and stored all or nothing (:mod:`rollbackkit.serving.labels`);
  answers what was stored, replaced and unknown. At most ``max_rows`` labels per request.
- ``GET /metrics`` (no token): Prometheus' text format (:mod:`rollbackkit.serving.metrics`); a
  404 under ``serve --no-metrics``.
- ``GET /healthz`` (503 while nothing is served), ``GET /status``, ``GET /openapi.json``
  (every route, described in :mod:`rollbackkit.serving.openapi`).
- ``POST /admin/deploy|promote|rollback`` (an optional ``"actor"`` names the person;
  default ``admin-api``): every change of what serves is an assignment in the history.
  ``affected|backfill|drift|window|gates`` work over the prediction log (the server is its
  one writer). ``score`` scores rows with the warm slot holding a version, routing and logging
  nothing (:mod:`rollbackkit.serving.scoring`). Admin calls need ``Authorization: Bearer TOKEN``,
  the exact bytes (401 without, 403 with a wrong one; nothing changes either way). Frames in
  admin bodies (``features``, ``frame``) and answers (``window``, ``outputs``) are wire frames.

A ``/predict`` request over ``max_rows`` rows (``serve --max-rows``, 100,000 by default) and
any body over :data:`MAX_BODY_BYTES` get a 413 with one ``{"error", "hint"}`` line before
anything is scored (an oversized ``Content-Length`` before the body is read).

Every body is read by one of the pydantic models in :mod:`~rollbackkit.serving.bodies`
(which :mod:`~rollbackkit.serving.openapi` also publishes): a body that is not JSON, nests
too deep, holds a lone surrogate, a field of the wrong type or an unknown field gets a 400
with one ``{"error", "hint"}`` line.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollbackkit.analysis.rollout_plan import checked_rollout
from rollbackkit.errors import (
    IncompatibleInput,
    InvalidInput,
    InvalidName,
    InvalidReference,
    InvalidVersion,
    PreflightFailed,
    RollbackkitError,
    RoutingError,
)
from rollbackkit.refs import shown
from rollbackkit.serving.answers import MAX_BODY_BYTES as MAX_BODY_BYTES
from rollbackkit.serving.answers import BadRequest, error, read
from rollbackkit.serving.bodies import (
    ADMIN_BODIES,
    BinnedBody,
    Body,
    DeployBody,
    GateHistoryBody,
    LabelsBody,
    LogBody,
    LogRead,
    PredictBody,
    PromoteBody,
    RollbackBody,
    ScoreBody,
)
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.gate_thin import history_answer
from rollbackkit.serving.labels import serve_labels
from rollbackkit.serving.log_operations import log_binned, log_operation
from rollbackkit.serving.openapi import openapi_document
from rollbackkit.serving.scoring import Unscored, score_answer
from rollbackkit.serving.signal_routes import SignalCounts, signal_routes, signal_status
from rollbackkit.serving.wire import decode_frame, json_records, records_frame

_BEARER = b"Bearer "


def _decoded(frame: Any, what: str) -> pd.DataFrame:
    """A wire frame (or records) from a body; anything that does not decode is the client's 400."""
    try:
        return decode_frame(frame)
    except InvalidInput as exc:
        raise BadRequest(f"{what}: {exc.message}", exc.hint) from None
    except Exception as exc:  # a hostile frame: every failure to read it is a bad request
        hint = "Build it with rollbackkit.serving.wire.encode_frame."
        raise BadRequest(f"{what} cannot be read: {type(exc).__name__}: {exc}.", hint) from None


def _frame(body: PredictBody) -> tuple[pd.DataFrame, bool]:
    """The request's rows, and whether they carry dtypes (a wire frame) or not (JSON rows)."""
    hint = 'Send {"records": [{...}, ...]}, {"columns": [...], "data": [[...], ...]} or {"frame": {...}} with rows.'
    if body.frame is not None:
        frame = _decoded(body.frame, "frame")
        if len(frame):
            return frame, True
    elif body.records:
        try:
            return records_frame(body.records), False
        except InvalidInput as exc:
            raise BadRequest(exc.message, exc.hint) from None
    elif body.columns is not None and body.data:
        short = next((i for i, row in enumerate(body.data) if len(row) != len(body.columns)), None)
        if short is not None:  # pandas would pad a short row with missing values
            message = f"Row {short} has {len(body.data[short])} values for {len(body.columns)} columns."
            raise BadRequest(message, hint)
        try:
            return pd.DataFrame(body.data, columns=body.columns), False
        except ValueError as exc:
            raise BadRequest(f"The rows do not match the columns: {exc}.", hint) from None
    raise BadRequest("The body has no rows.", hint)


def _too_many(rows: int, max_rows: int) -> tuple[str, str, int]:
    return (
        f"The request has {rows:,} rows; this server takes at most {max_rows:,} per request.",
        "Split the batch into requests of fewer rows (or restart the server with a larger --max-rows).",
        413,
    )


# --------------------------------------------------------------------------- the app
def create_app(env: ServingEnvironment, token: str, max_rows: int = 100_000) -> Starlette:
    """Build the app for ``env``; admin routes compare the bearer token's exact bytes in constant time;
    ``/predict`` takes at most ``max_rows`` rows per request."""
    expected = token.encode()
    # Refused before any slot saw them (counted here, on the event loop: no lock needed):
    # bad bodies are the client's, never a version's errors, and are shown in /status.
    refused = {"bad_predict_bodies": 0, "bad_admin_bodies": 0, "unauthorised": 0}

    def authorised(request: Request) -> JSONResponse | None:
        # The raw header as sent (Starlette decodes it as latin-1): no case folding, no
        # stripping of (unicode) whitespace, so only the token's own bytes match.
        header = request.headers.get("authorization", "").encode("latin-1")
        hint = "Send 'Authorization: Bearer TOKEN' with the project's admin token."
        if not header.startswith(_BEARER):
            refused["unauthorised"] += 1
            return error(401, "Admin calls need 'Authorization: Bearer <token>'.", hint)
        if not hmac.compare_digest(header[len(_BEARER) :], expected):
            refused["unauthorised"] += 1
            return error(403, "The admin token is wrong.", hint)
        return None

    async def predict(request: Request) -> JSONResponse:
        try:
            body = await read(request, PredictBody)
            rows = len(body.records or body.data or [])
            if body.frame is None and rows > max_rows:
                raise BadRequest(*_too_many(rows, max_rows))
            frame, typed = _frame(body)
            if len(frame) > max_rows:
                raise BadRequest(*_too_many(len(frame), max_rows))
        except BadRequest as exc:
            refused["bad_predict_bodies"] += 1
            return error(exc.status, exc.message, exc.hint)
        request_id = uuid.uuid4().hex
        sent = body.key if body.key is not None else request.headers.get("x-request-key")
        key = str(sent) if sent not in (None, "") else None  # logged as sent; None: the request id routes it
        try:
            routed = await run_in_threadpool(env.predict, frame, key, request_id, untyped=not typed)
        except IncompatibleInput as exc:
            return error(422, exc.message, exc.hint, columns=getattr(exc, "columns", []), request_id=request_id)
        except RoutingError as exc:
            return error(503, exc.message, exc.hint, request_id=request_id)
        except Exception as exc:  # a model failure is the server's fault, reported as JSON
            return error(500, f"Scoring failed: {type(exc).__name__}: {exc}", request_id=request_id)
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
        if getattr(env, "leaving", False):  # a replica stopping: drained while it finishes its requests
            reason = f"replica {getattr(env, 'replica', '')} is stopping"
            return JSONResponse({"ok": False, "version": live["version"], "reason": reason}, status_code=503)
        sync = env.sync
        if sync is None:
            return JSONResponse({"ok": True, "version": live["version"]})
        seen = {"store_seen_s": sync.status()["store_seen_s"]}  # a peer cut off asks: do you reach the store?
        drained = sync.drained()  # not what the others serve, or cut off from the store: drain it
        if drained is not None:
            reason = f"replica {sync.replica} {drained}"
            body = {"ok": False, "version": live["version"], "reason": reason, **seen}
            return JSONResponse(body, status_code=503)
        if sync.error is not None:  # no other replica serves it either: serve on, say why
            return JSONResponse({"ok": True, "version": live["version"], "error": sync.error, **seen})
        return JSONResponse({"ok": True, "version": live["version"], **seen})

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(env.name, env.env))

    counts = SignalCounts()  # what /metrics and /analysis could not answer: shown in /status and /metrics
    if env.metrics is not None:
        env.metrics.refused, env.metrics.signals = refused, counts  # read at each scrape

    async def status(request: Request) -> JSONResponse:
        state = await run_in_threadpool(env.status)  # asks the log's writer process
        if env.sync is not None and isinstance(state.get("replica"), dict):  # /metrics' sync_failures_total too
            state["replica"] = {**state["replica"], "failures": env.sync.failures}
        return JSONResponse({**state, "refused": dict(refused), **signal_status(env, counts)})

    def admin(operation: str) -> Any:
        async def handler(request: Request) -> JSONResponse:
            denied = authorised(request)
            if denied is not None:
                return denied
            try:
                body = await read(request, ADMIN_BODIES[operation])
                result = await run_in_threadpool(_admin_call, env, operation, body)
            except BadRequest as exc:
                refused["bad_admin_bodies"] += 1
                return error(exc.status, exc.message, exc.hint)
            except Unscored as exc:  # score: no slot holds the version (404), refused (422), failed (500)
                return error(exc.status, exc.message, exc.hint, **exc.extra)
            except (InvalidInput, InvalidName, InvalidReference, InvalidVersion) as exc:
                return error(400, exc.message, exc.hint)
            except PreflightFailed as exc:
                return error(409, exc.message, exc.hint, preflight=exc.report)
            except RollbackkitError as exc:
                return error(409, exc.message, exc.hint)
            return result if isinstance(result, JSONResponse) else JSONResponse(result)

        return handler

    async def labels(request: Request) -> JSONResponse:
        denied = authorised(request)
        if denied is not None:
            return denied
        try:
            body = await read(request, LabelsBody)
            if len(body.labels) > max_rows:
                raise BadRequest(*_too_many(len(body.labels), max_rows))
            result = await run_in_threadpool(serve_labels, env, body)
        except BadRequest as exc:
            refused["bad_admin_bodies"] += 1
            return error(exc.status, exc.message, exc.hint)
        except InvalidInput as exc:
            return error(400, exc.message, exc.hint)
        except RollbackkitError as exc:
            return error(409, exc.message, exc.hint)
        return JSONResponse(result)

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/labels", labels, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
        *signal_routes(env, counts),
        Route("/openapi.json", openapi, methods=["GET"]),
        *[Route(f"/admin/{op}", admin(op), methods=["POST"]) for op in ADMIN_BODIES],
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route: 404, a method the route does not take: 405) as one
    ``{"error", "hint"}`` line like every other answer; the path is quoted cut short."""
    assert isinstance(exc, HTTPException)
    asked = f"{request.method} {shown(request.url.path)}"
    allow = (exc.headers or {}).get("Allow", "")
    if exc.status_code == 404:
        message = f"No route answers {asked}."
    elif exc.status_code == 405:
        message = f"{asked} is not allowed here; it answers {allow or 'other methods'}."
    else:
        message = f"{asked}: {exc.detail}."
    response = error(exc.status_code, message, "GET /openapi.json lists every route and its methods.")
    response.headers.update(exc.headers or {})
    return response


def _whose(env: ServingEnvironment, body: Body, operation: str) -> tuple[str, str]:
    """Whose rows a log operation is about: this server's, or (a read) those the body names, as
    this server holds the project's one log file; a backfill writes only this server's rows."""
    if not isinstance(body, LogRead):
        return env.name, env.env
    name, env_name = body.name or env.name, body.env or env.env
    if (name, env_name) != (env.name, env.env) and operation == "backfill":
        raise InvalidInput(
            f"This server serves {env.name} in {env.env}; it backfills only their rows.",
            f"Backfill through the server for {name} in {env_name} (rollbackkit serve {name} --env {env_name}).",
        )
    return name, env_name


def _admin_call(env: ServingEnvironment, operation: str, body: Body) -> dict[str, Any] | JSONResponse:
    if isinstance(body, DeployBody):
        plan = checked_rollout(body.canary, body.shadow, body.steps, body.bake)  # the faces' rules, the same words
        return env.deploy(
            body.version,
            canary=plan.canary,
            shadow=plan.shadow,
            steps=list(plan.steps) if plan.steps is not None else None,
            bake_s=plan.bake_s,
            features=_decoded(body.features, "features") if body.features else None,
            force=body.force,
            reason=body.reason,
            actor=body.actor or "admin-api",
        )
    if isinstance(body, PromoteBody):
        return env.promote(
            reason=body.reason, actor=body.actor or "admin-api", from_shadow=body.from_shadow, canary=body.canary
        )
    if isinstance(body, RollbackBody):
        return env.rollback(
            reason=body.reason,
            incident=body.incident,
            to=body.to,
            force=body.force,
            actor=body.actor or "admin-api",
            features=_decoded(body.features, "features") if body.features else None,
        )
    name, env_name = _whose(env, body, operation)
    if isinstance(body, GateHistoryBody):  # the watchdog's evaluations over time
        if env.log is None:
            raise RollbackkitError("This server runs without a prediction log.", "Restart it without --no-log.")
        said = history_answer(env.log, name, env_name, **body.model_dump(exclude={"name", "env"}))
        return JSONResponse(said)  # serialised here, in the worker thread: never on the event loop
    if isinstance(body, BinnedBody):
        return log_binned(env.log, name, env_name, body.model_dump(exclude={"name", "env"}))
    if isinstance(body, ScoreBody):  # a warm slot scores rows for a preview: nothing routed, logged or shifted
        return JSONResponse(score_answer(env, body, _decoded))  # 10,000 rows serialised here, off the event loop
    if not isinstance(body, LogBody):  # ADMIN_BODIES maps every other operation to a LogBody
        raise InvalidInput(f"Unknown admin operation {operation!r}.", "See GET /openapi.json.")
    if env.log is None:
        raise RollbackkitError("This server runs without a prediction log.", "Restart it without --no-log.")
    return log_operation(
        env.registry,
        env.log,
        operation,
        name,
        env_name,
        body.version,
        since=body.since,
        limit=body.limit,
        deployment=body.deployment,
    )
