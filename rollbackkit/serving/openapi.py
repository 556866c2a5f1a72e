"""The HTTP API as an OpenAPI 3.1 document (served at ``GET /openapi.json``).

Written as data, next to nothing else, so that the description of a route is read and
changed in one place. The admin bodies are the schemas of the pydantic models that
validate them (:data:`rollbackkit.serving.bodies.ADMIN_BODIES`). A test compares its paths and
methods with the app's routes: a route without a description here fails it.
"""

from __future__ import annotations

from typing import Any

from rollbackkit.serving.bodies import ADMIN_BODIES, LabelsBody
from rollbackkit.serving.openapi_signals import OBJECT as _OBJECT
from rollbackkit.serving.openapi_signals import SIGNAL_SCHEMAS, signal_paths
from rollbackkit.serving.openapi_signals import TEXT as _TEXT
from rollbackkit.serving.openapi_signals import answer as _answer
from rollbackkit.serving.openapi_signals import body as _body
from rollbackkit.serving.openapi_signals import ref as _ref
from rollbackkit.serving.wire import FORMAT

_REFUSALS = {
    "400": _answer("The body is not a JSON object of this shape (or names a malformed version); nothing changed."),
    "401": _answer("No ``Authorization: Bearer TOKEN`` header; nothing changed."),
    "403": _answer("The token is wrong; nothing changed."),
    "413": _answer("The body is over 200 MB (``Content-Length``, checked before it is read); nothing changed."),
    "409": _answer("Refused (failed preflight, no canary, no log...): ``error`` and ``hint``; nothing changed."),
}


def _admin(operation: str, summary: str, example: dict[str, Any], answer: str) -> dict[str, Any]:
    body = ADMIN_BODIES[operation].model_json_schema()
    if "features" in body["properties"]:
        body["properties"]["features"] = _FEATURES
    return {
        "post": {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"bearer": []}],
            "requestBody": _body(body, example),
            "responses": {"200": _answer(answer, _OBJECT), **_REFUSALS},
        }
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "One line: what went wrong (error) and what to do (hint).",
        "properties": {"error": _TEXT, "hint": _TEXT, "request_id": _TEXT},
        "required": ["error"],
    },
    "Frame": {
        "description": (
            "A typed frame, column by column. null is the column's missing value (NaN, NA or NaT); "
            'floats JSON cannot write are "Infinity", "-Infinity" and, in Float32/Float64, "NaN"; '
            "datetimes are ISO 8601 strings; timedeltas count units of their dtype."
        ),
        "type": "object",
        "properties": {
            "format": {"const": FORMAT},
            "rows": {"type": "integer"},
            "columns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": ["string", "integer"]},
                        "dtype": {"type": "string", "description": "pandas dtype: float64, Int64, str, ..."},
                        "values": {"type": "array"},
                        "categories": {
                            "type": "object",
                            "properties": {"dtype": _TEXT, "values": {"type": "array"}},
                            "description": "category columns only",
                        },
                        "ordered": {"type": "boolean"},
                    },
                    "required": ["name", "dtype", "values"],
                },
            },
        },
        "required": ["format", "columns"],
    },
    "PredictRequest": {
        "description": (
            "Rows as records, as columns + data, or as a typed frame. Records and rows carry no "
            "dtypes: each column is read with the dtype the scoring version was trained on where "
            "nothing is lost (null in a nullable feature is a missing value)."
        ),
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": _OBJECT},
            "columns": {"type": "array", "items": _TEXT},
            "data": {"type": "array", "items": {"type": "array"}},
            "frame": _ref("Frame"),
            "key": {
                "type": ["string", "integer"],
                "description": "Sticky canary routing key (or header X-Request-Key).",
            },
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["records"]}, {"required": ["columns", "data"]}, {"required": ["frame"]}],
    },
    "PredictResponse": {
        "type": "object",
        "properties": {
            "predictions": {
                "type": "array",
                "items": _OBJECT,
                "description": "One object per row: prediction (and proba_<class> for classifiers).",
            },
            "version": _TEXT,
            "bundle_id": _TEXT,
            "slot": {"enum": ["blue", "green"]},
            "request_id": _TEXT,
        },
        "required": ["predictions", "version", "bundle_id", "slot", "request_id"],
    },
    **SIGNAL_SCHEMAS,
    "Health": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "version": {"type": ["string", "null"]}, "reason": _TEXT},
        "required": ["ok", "version"],
    },
    "Status": {
        "type": "object",
        "description": (
            "name, env, live/standby/canary slots (each with client_errors: its 422s), since, generation, "
            "the last gate report, the log writer, and requests refused before any slot saw them."
        ),
        "properties": {
            "name": _TEXT,
            "env": _TEXT,
            "live": {"type": ["object", "null"]},
            "standby": {"type": ["object", "null"]},
            "canary": {"type": ["object", "null"]},
            "since": _TEXT,
            "generation": {"type": "integer"},
            "gates": {"type": ["object", "null"]},
            "log": {"type": ["object", "null"]},
            "refused": {
                "type": "object",
                "description": "bad_predict_bodies, bad_admin_bodies (400s) and unauthorised (401/403) since start.",
            },
            "metrics": {
                "type": "object",
                "description": "enabled, scrapes_refused (503s), and by source (log, replicas): unread (reads not "
                "answered within a scrape's budget) and read_age_s; also in GET /metrics.",
            },
            "analysis": {
                "type": "object",
                "description": "GET /analysis and Flagger checks answered 503: errors (the evaluation raised), "
                "waiting (another caller's evaluation took too long), last_error (the last failure's text).",
            },
            "background": {
                "type": "object",
                "description": "failures of work after an automatic rollback (an MLflow alias not moved, ...) "
                "since start, and the last one's message; traffic is never undone by them; gate_history_dropped: "
                "watchdog evaluations the gate history lost, by reason (repeat, change, write_failed, not_built).",
            },
        },
    },
}

_FEATURES = {
    "anyOf": [_ref("Frame"), {"type": "null"}],
    "description": "Live features for preflight (default: the inputs lately scored).",
}


def _paths() -> dict[str, Any]:
    return {
        "/predict": {
            "post": {
                "summary": "Score rows with the version the traffic split picks for the key.",
                "tags": ["serving"],
                "requestBody": _body(
                    _ref("PredictRequest"), {"records": [{"tenure": 12, "plan": "pro", "charges": None}], "key": "u-1"}
                ),
                "responses": {
                    "200": _answer("The predictions and which version made them.", _ref("PredictResponse")),
                    "400": _answer("The body is not JSON, not one of the three shapes, or has no rows."),
                    "413": _answer(
                        "More rows than the server's ``--max-rows`` (100,000 by default), or a body over"
                        " 200 MB: one ``error`` and ``hint`` line; nothing was scored."
                    ),
                    "422": _answer("The version cannot score these features; ``columns`` names them."),
                    "500": _answer("The model failed while scoring."),
                    "503": _answer("No version is serving yet."),
                },
            }
        },
        **signal_paths(),
        "/labels": {
            "post": {
                "summary": "Ground truth for logged rows (by request_id and row, or by key), stored all or nothing.",
                "tags": ["admin"],
                "security": [{"bearer": []}],
                "requestBody": _body(
                    LabelsBody.model_json_schema(),
                    {"on": "request_id", "labels": [{"request_id": "3f2a...", "row": 0, "label": "churned"}]},
                ),
                "responses": {
                    "200": _answer(
                        "received, stored, replaced (rows that had a label: the newest wins), unknown (ids matching"
                        " no logged row, not stored) with unknown_sample, duplicates, missing, rows_labelled.",
                        _OBJECT,
                    ),
                    **_REFUSALS,
                    "400": _answer(
                        "The body is not of this shape, or a label is not one of the live version's classes (or"
                        " not a finite number): the first bad item is named; nothing was stored."
                    ),
                    "413": _answer("More labels than the server's ``--max-rows`` or a body over 200 MB; none stored."),
                    "409": _answer("The server runs without a prediction log; nothing stored."),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness for load balancers: 200 while a version is live.",
                "tags": ["serving"],
                "responses": {
                    "200": _answer("A version is live.", _ref("Health")),
                    "503": _answer("The server is up but serves nothing; ``reason`` says why.", _ref("Health")),
                },
            }
        },
        "/status": {
            "get": {
                "summary": "What serves now: slots, traffic split, gates, the log writer.",
                "tags": ["serving"],
                "responses": {"200": _answer("The routing state.", _ref("Status"))},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "tags": ["serving"],
                "responses": {"200": _answer("OpenAPI 3.1.", _OBJECT)},
            }
        },
        "/admin/deploy": _admin(
            "deploy",
            "Preflight VERSION, warm it into the idle slot, shift all traffic (or a canary share); record it.",
            {"version": "v1.1.0", "canary": 20, "reason": "new features"},
            "The assignment, status, preflight report, shift_ms and mlflow_alias (the synced MLflow alias moved).",
        ),
        "/admin/promote": _admin(
            "promote",
            "Send all traffic to the running canary; record it.",
            {"reason": "canary healthy"},
            "The assignment, status and mlflow_alias (the synced MLflow alias moved).",
        ),
        "/admin/rollback": _admin(
            "rollback",
            "Roll back to the rollback target (or ``to``): a shift when it is warm; record it.",
            {"reason": "error rate", "incident": "INC-7"},
            "The assignment, status, preflight report, shift_ms and mlflow_alias (the synced MLflow alias moved).",
        ),
        "/admin/affected": _admin(
            "affected",
            "Rows VERSION wrote here: counts by table and time range, sample rows.",
            {"version": "v1.1.0", "since": "2026-01-05T09:30:00+00:00"},
            "Counts, time range, quarantined and backfilled rows, a sample; shadow_rows: rows it scored as a shadow.",
        ),
        "/admin/backfill": _admin(
            "backfill",
            "Re-score VERSION's quarantined rows with the version now serving.",
            {"version": "v1.1.0"},
            "rescored, already_done, failed.",
        ),
        "/admin/drift": _admin(
            "drift",
            "Logged primary predictions of each version against its reference (PSI).",
            {"version": "v1.0.0,v1.1.0"},
            "Per version: n, psi, edges, reference and current shares.",
        ),
        "/admin/window": _admin(
            "window",
            "VERSION's latest logged rows (inputs, outputs, latency_ms, error) as a typed frame.",
            {"version": "v1.1.0"},
            "A Frame (see components).",
        ),
        "/admin/binned": _admin(
            "binned",
            "Counts per slice, time window and bin of one logged column (drift over time).",
            {"column": "primary_output", "edges": [0.0, 0.5, 1.0], "windows": 24, "by": "version"},
            "kind, start, end, windows, slices, counts [slice][window][bin], n and missing [slice][window].",
        ),
        "/admin/gates": _admin(
            "gates",
            "Evaluate VERSION's gates on its logged rows.",
            {"version": "v1.1.0"},
            "The gate report: decision and one result per gate.",
        ),
        "/admin/gate_history": _admin(
            "gate_history",
            "The watchdog's recorded evaluations (gates over time), oldest first; runs of like ones thinned.",
            {"since": "2026-01-05T09:30:00+00:00", "version": "v1.1.0", "most": 5000},
            "evaluations: time, deployment, version, role, decision, n and each gate's value, low/high, bounds and "
            "status (at most most, thinned); truncated: some were left out.",
        ),
        "/admin/score": _score(),
    }


def _score() -> dict[str, Any]:
    """``POST /admin/score``: an admin route whose rows are a Frame, with its own refusals."""
    route = _admin(
        "score",
        "Score rows with the warm slot holding VERSION (live, canary, shadow or standby); nothing routed or logged.",
        {"name": "churn", "env": "prod", "version": "v1.0.0", "frame": {"format": FORMAT, "rows": 1, "columns": []}},
        "version, bundle_id, slot, role, deployment, rows, batches, score_ms, adaptation, outputs (a Frame) and "
        "runtime (the slot's runtime findings in this server's process: library, registered, here, severity, detail).",
    )
    route["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["frame"] = _ref("Frame")
    route["post"]["responses"] |= {
        "404": _answer("No slot holds VERSION (``slots``: what each role holds): load the bundle to score it."),
        "413": _answer("Over 10,000 rows, or a body over 200 MB; nothing scored."),
        "422": _answer("The version cannot score these features (``columns``)."),
        "500": _answer("The version's model failed on the rows."),
    }
    return route


def openapi_document(name: str, env: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the server for bundle ``name`` in ``env``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"rollbackkit: {name} in {env}",
            "version": "1",
            "description": "Blue-green serving with a prediction log. Admin calls need the project's token.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
