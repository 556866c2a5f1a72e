"""The routes a monitoring system reads: ``GET /metrics``, ``GET /analysis`` and ``POST /analysis/flagger``.

None takes a token. What they could not answer is counted in :class:`SignalCounts` and shown
both in ``GET /status`` (:func:`signal_status`: ``metrics`` and ``analysis``, and the replica's
``failures``) and in ``GET /metrics`` (``rollbackkit_metrics_refused_total``,
``rollbackkit_analysis_unanswered_total{reason}``). An evaluation that raised answers a 503
naming only the exception's type (a controller copies the body into events anyone reads; the
text may quote a value): its full text goes to the server's stderr and ``/status``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollbackkit.errors import InvalidName, InvalidReference, InvalidVersion, MetricsBusy, VersionNotServed
from rollbackkit.serving.answers import BadRequest, error, read
from rollbackkit.serving.environment import ServingEnvironment
from rollbackkit.serving.verdict import THREADS, FlaggerPayload, StillEvaluating, Verdict, Verdicts, flagger_status


@dataclass
class SignalCounts:
    """Answers the signal routes could not give, since the server started (counted on the event loop).

    Attributes:
        scrapes_refused: ``/metrics`` scrapes answered 503 (another scrape rendered, none to reuse).
        analysis_errors: ``/analysis`` evaluations that raised (a 503).
        analysis_waiting: ``/analysis`` callers that waited too long for another's evaluation (a 503).
        last_analysis_error: The last evaluation's failure in full (``/status`` and stderr only).
    """

    scrapes_refused: int = 0
    analysis_errors: int = 0
    analysis_waiting: int = 0
    last_analysis_error: str | None = None


def signal_routes(env: ServingEnvironment, counts: SignalCounts) -> list[Route]:
    """The three routes of ``env``, counting what they refuse in ``counts``."""
    verdicts = Verdicts(env)
    judging = anyio.CapacityLimiter(THREADS)  # /analysis's own worker threads, beside the pool /predict uses

    async def metrics(request: Request) -> Response:
        """Prometheus' text format; a bounded wait on the log writer and the store, off the loop."""
        if env.metrics is None:
            hint = "Restart it without --no-metrics."
            return error(404, "This server runs without metrics (serve --no-metrics).", hint)
        accept = request.headers.get("accept", "")
        try:  # one scrape renders at a time; the others get a recent body, or a 503 after a bounded wait
            body, content_type = await anyio.to_thread.run_sync(env.metrics.exposition, accept)
        except MetricsBusy as busy:
            counts.scrapes_refused += 1
            return error(503, busy.message, busy.hint)
        return Response(body, headers={"Content-Type": content_type})

    async def verdict(version: str | None, status: Callable[[Verdict], int]) -> JSONResponse:
        """The version's verdict, or one line why there is none (404 not served, 503 not judged); at most
        ``THREADS`` worker threads at a time, so /predict never waits behind a burst of polls."""
        try:
            found = await anyio.to_thread.run_sync(verdicts.verdict, version, limiter=judging)
            return JSONResponse(found.to_dict(), status_code=status(found))
        except VersionNotServed as exc:
            return error(404, exc.message, exc.hint)
        except (InvalidName, InvalidReference, InvalidVersion) as exc:  # quoted cut short: never echoed whole
            return error(400, exc.message, exc.hint)
        except StillEvaluating as exc:
            counts.analysis_waiting += 1
            return error(503, exc.message, exc.hint)
        except Exception as exc:  # the log unreachable, a gate that raises, a value JSON cannot hold: never a pass
            return _failed(counts, exc)

    async def analysis(request: Request) -> JSONResponse:
        """Argo Rollouts' web metric: the verdict, 200 whatever it says (a non-2xx is an Argo error)."""
        asked = request.query_params.getlist("version")
        if len(asked) > 1:
            return error(400, f"version is given {len(asked)} times.", "Ask for one version (version=V).")
        return await verdict(asked[0] if asked else None, lambda _: 200)

    async def flagger(request: Request) -> JSONResponse:
        """Flagger's webhook: 200 when the version passed, 412 (a failed check) when it failed or waits."""
        try:
            payload = await read(request, FlaggerPayload)
        except BadRequest as exc:
            return error(exc.status, exc.message, exc.hint)
        return await verdict(payload.metadata.get("version"), flagger_status)

    return [
        Route("/analysis", analysis, methods=["GET"]),
        Route("/analysis/flagger", flagger, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def _failed(counts: SignalCounts, exc: Exception) -> JSONResponse:
    """The 503 of an evaluation that raised: its type only; the full text counted, on stderr and in /status."""
    kind = type(exc).__name__
    counts.analysis_errors += 1
    counts.last_analysis_error = " ".join(f"{kind}: {getattr(exc, 'message', '') or exc}".split())
    print(f"warning: GET /analysis: the gates could not be evaluated: {counts.last_analysis_error}", file=sys.stderr)
    hint = "The server's log and GET /status (analysis.last_error) say why; ask again."
    return error(503, f"The gates could not be evaluated ({kind}).", hint)


def signal_status(env: ServingEnvironment, counts: SignalCounts) -> dict[str, Any]:
    """``/status``'s ``metrics`` and ``analysis`` blocks: what /metrics and /analysis could not answer."""
    reads = env.metrics.collector.reads.status() if env.metrics is not None else {}
    metrics = {
        "enabled": env.metrics is not None,
        "scrapes_refused": counts.scrapes_refused,
        "unread": {source: said["unread"] for source, said in reads.items()},
        "read_age_s": {source: said["read_age_s"] for source, said in reads.items()},
    }
    analysis = {
        "errors": counts.analysis_errors,
        "waiting": counts.analysis_waiting,
        "last_error": counts.last_analysis_error,
    }
    return {"metrics": metrics, "analysis": analysis}
