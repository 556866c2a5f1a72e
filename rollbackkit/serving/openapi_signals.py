"""The OpenAPI description of the routes a monitoring system reads (:mod:`~rollbackkit.serving.signal_routes`):
``/analysis``, ``/analysis/flagger`` and ``/metrics``, with the ``Verdict`` schema; and the small
helpers :mod:`~rollbackkit.serving.openapi` writes the whole document with.
"""

from __future__ import annotations

from typing import Any

from rollbackkit.serving.verdict import FRESH_S
from rollbackkit.serving.verdict_types import DECISIONS, ROLLED_BACK, FlaggerPayload

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    """A reference to the document's schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON response described in words (default schema: the one-line ``Error``)."""
    return {"description": description, "content": {JSON: {"schema": schema or ref("Error")}}}


def body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body with an example."""
    return {"required": True, "content": {JSON: {"schema": schema, "example": example}}}


TEXT = {"type": "string"}
OBJECT = {"type": "object", "additionalProperties": True}

SIGNAL_SCHEMAS: dict[str, Any] = {
    "Verdict": {
        "type": "object",
        "description": (
            "A version's gate verdict, judged without acting (no rollback, promotion or streak counted). "
            "decision: pass (passed), rollback (failed), warn|inconclusive (inconclusive: wait; the watchdog never "
            f"promotes on warn). source: watchdog (its report about this deployment, at most {FRESH_S:g} s old, "
            "failure_limit applied), evaluated (judged now) or history (role rolled-back: a rollback took this "
            "version's traffic away; decision rollback, the reason names the rollback's tag and time). A gate's "
            "message and the reason hold gate names, statuses, values and bounds only, never a slice's value."
        ),
        "properties": {
            "model": TEXT,
            "env": TEXT,
            "version": TEXT,
            "role": {"enum": ["live", "canary", "shadow", ROLLED_BACK]},
            "deployment": TEXT,
            "decision": {"enum": list(DECISIONS)},
            "reason": TEXT,
            "n": {"type": "integer", "description": "Rows in the window judged."},
            "evaluated_at": TEXT,
            "source": {"enum": ["watchdog", "evaluated", "history"]},
            "passed": {"type": "boolean"},
            "failed": {"type": "boolean"},
            "inconclusive": {"type": "boolean"},
            "gates": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": TEXT,
                        "kind": TEXT,
                        "status": TEXT,
                        "value": {"type": ["number", "null"]},
                        "threshold": OBJECT,
                        "message": TEXT,
                    },
                },
            },
        },
        "required": ["model", "env", "version", "decision", "passed", "failed", "inconclusive", "n", "gates"],
    },
}
"""The schemas only the signal routes answer (``Verdict``)."""


def signal_paths() -> dict[str, Any]:
    """``/analysis``, ``/analysis/flagger`` and ``/metrics``, as OpenAPI path items."""
    return {
        "/analysis": {
            "get": {
                "summary": "A version's gate verdict for Argo Rollouts' web metric (jsonPath {$.decision}); no token.",
                "tags": ["analysis"],
                "parameters": [
                    {
                        "name": "version",
                        "in": "query",
                        "required": False,
                        "schema": TEXT,
                        "description": "V or model@V (default: the canary, else the shadow, else the live version).",
                    }
                ],
                "responses": {
                    "200": answer(
                        "The verdict, whatever it is (a failing or rolled-back version is a 200 too).", ref("Verdict")
                    ),
                    "400": answer("version is not V or model@V (quoted cut short), or is given twice."),
                    "404": answer("Never served here (or another model's): the error names what is."),
                    "503": answer(
                        "The gates could not be evaluated (the error names the exception's type only; GET /status"
                        " analysis.last_error has its text), or are still being evaluated: never a pass; counted."
                    ),
                },
            }
        },
        "/analysis/flagger": {
            "post": {
                "summary": "A Flagger webhook (rollout or confirm-promotion): 200 when the version passed; no token.",
                "tags": ["analysis"],
                "requestBody": body(
                    FlaggerPayload.model_json_schema(),
                    {"name": "model", "namespace": "prod", "phase": "Progressing", "metadata": {"version": "v1.1.0"}},
                ),
                "responses": {
                    "200": answer("The version passed (decision pass).", ref("Verdict")),
                    "400": answer(
                        "Not Flagger's payload (name, namespace, phase, metadata of strings), or a bad version."
                    ),
                    "404": answer("metadata.version was never served here: the error names what is."),
                    "412": answer("Failed, warned or inconclusive: a failed check for Flagger.", ref("Verdict")),
                    "503": answer("The gates could not be evaluated (a failed check)."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text; OpenMetrics when Accept asks); no token, never a feature value.",
                "tags": ["serving"],
                "responses": {
                    "200": {
                        "description": "Every rollbackkit_* metric of this environment (see the README's Metrics).",
                        "content": {"text/plain": {"schema": TEXT}},
                    },
                    "404": answer("The server runs with --no-metrics."),
                    "503": answer(
                        "Another scrape is being rendered, no body under 5 s old can be handed out, and it did not"
                        " finish within 1.5 s (scrapes never queue); counted (GET /status metrics.scrapes_refused)."
                    ),
                },
            }
        },
    }
