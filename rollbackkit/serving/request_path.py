"""The request path of a served environment: score a request, mirror it to a running shadow,
keep its rows (in the prediction log, or in its slot's window), and read them back as gate windows.

:class:`RequestPath` is mixed into :class:`~rollbackkit.serving.environment.ServingEnvironment`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.analysis.gatespec import WINDOW_ROWS
from rollbackkit.analysis.times import when
from rollbackkit.errors import IncompatibleInput
from rollbackkit.serving.in_flight import InFlight
from rollbackkit.serving.metrics import ServingMetrics
from rollbackkit.serving.mirrored import KeepFailed, Mirrored, sampled
from rollbackkit.serving.predlog.surface import PredictionStore
from rollbackkit.serving.router import Router
from rollbackkit.serving.routing_state import Routed, Slot
from rollbackkit.serving.shadow import Mirror
from rollbackkit.serving.threads import limit_scoring_threads
from rollbackkit.serving.window import Kept, Windows

if TYPE_CHECKING:
    from rollbackkit.serving.sync import ReplicaSync


def _moment(since: str | None, field: str = "since") -> datetime | None:
    """``since`` as a time-zone-aware time, or None, by the one rule (naive: local time) of
    :func:`rollbackkit.analysis.times.when`."""
    moment = when(since, field)
    return None if moment is None else moment.to_pydatetime()


def _plain_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a 0..n-1 index, copied only when it has another (off the hot path's way)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


class RequestPath:
    """Requests, their shadow mirror, their rows and windows, for
    :class:`~rollbackkit.serving.environment.ServingEnvironment` (which sets these attributes)."""

    name: str
    env: str
    router: Router
    log: PredictionStore | None
    windows: Windows
    scoring_threads: int | None
    metrics: ServingMetrics | None
    in_flight: InFlight
    mirror: Mirror
    sync: ReplicaSync | None

    def predict(
        self, frame: pd.DataFrame, key: str | None = None, request_id: str | None = None, *, untyped: bool = False
    ) -> Routed:
        """Score a request and keep it: in the log when there is one, else in its slot's window.

        A request the version refuses (:class:`IncompatibleInput`: column names, columns,
        dtypes or values it cannot take) is the client's error: it is counted per slot load
        (``client_errors`` in :meth:`~rollbackkit.serving.environment.ServingEnvironment.status`)
        and neither logged nor windowed, so no client can fail the error-rate gate and roll
        back a healthy version. Anything else raised while scoring is the model's error and is
        kept against the slot that scored it.

        Once the live answer is computed, a running shadow gets the request when it is in
        the shadow's sampled share (:func:`~rollbackkit.serving.mirrored.sampled`): a
        reference on the mirror's queue, scored off the request path, and only while no
        live request is being scored (:attr:`in_flight`).

        Args:
            frame: The request's features.
            key: Sticky canary routing key, logged with the rows (without one, the request id
                routes the request).
            request_id: Logged with the rows (default: a fresh one).
            untyped: The frame came from JSON rows without dtypes: its columns are read with
                the scoring version's dtypes where nothing is lost (see
                :func:`rollbackkit.bundle.conform.conform`), and kept that way.
        """
        state = self.router.state
        limit_scoring_threads(self.scoring_threads, state.generation)
        when = datetime.now(UTC)
        request_id = request_id or uuid.uuid4().hex
        started = time.perf_counter()
        slot = self.router.route(key if key is not None else request_id)
        metrics = self.metrics
        with self.in_flight:
            try:
                routed = self.router.score(slot, frame, untyped=untyped)
            except IncompatibleInput:  # the client's error: counted apart, never a gate's evidence
                self.windows.refused(slot.name, slot.loaded_at)
                if metrics is not None:
                    metrics.observe(slot, "client_error", time.perf_counter() - started, len(frame))
                raise
            except Exception as exc:  # the model failed on a compatible request: its slot's error
                self._keep(slot, frame, None, float("nan"), type(exc).__name__, (request_id, when, key))
                if metrics is not None:
                    metrics.observe(slot, "error", time.perf_counter() - started, len(frame))
                raise
            self._keep(routed.slot, routed.inputs, routed.outputs, routed.latency_ms, None, (request_id, when, key))
        if metrics is not None:
            metrics.observe(routed.slot, "ok", time.perf_counter() - started, len(routed.outputs))
        shadow = state.slot(state.shadow)
        if shadow is not None and sampled(request_id, state.shadow_percent):
            self.mirror.offer(Mirrored(shadow, frame, untyped, request_id, when, key))
        return routed

    def _score_shadow(self, request: Mirrored) -> bool:
        """Score one mirrored request with its shadow and keep its rows (the mirror's worker calls this).

        Returns False when that shadow no longer runs. Raises what the shadow raised: a
        refusal (:class:`IncompatibleInput`) is kept nowhere, a model failure is kept as the
        shadow's error row; either is counted by the mirror, never the client's.
        """
        return self._score_shadows([request])[0]

    def _score_shadows(self, requests: Sequence[Mirrored]) -> list[bool]:
        """Score mirrored requests in one model call and keep each one's rows (one bool each, as one request).

        Several requests must share a slot, columns and dtypes (typed frames); their rows keep
        no latency (the call answered them together) and a failure keeps no error row: it is
        raised, and the mirror scores them one by one.
        """
        state = self.router.state
        slot = requests[0].slot
        if state.slot(state.shadow) is not slot:
            return [False] * len(requests)
        limit_scoring_threads(self.scoring_threads, state.generation)  # the worker's pools: as live's
        one = requests[0] if len(requests) == 1 else None
        keys = [(r.request_id, r.when, r.key) for r in requests]
        frame = one.frame if one is not None else pd.concat([r.frame for r in requests], ignore_index=True)
        try:
            routed = self.router.score(slot, frame, untyped=one is not None and one.untyped)
        except IncompatibleInput:
            raise
        except Exception as exc:
            if one is not None:
                self._keep(slot, one.frame, None, float("nan"), type(exc).__name__, keys[0], recent=False)
            raise
        if one is not None:
            self._keep(slot, routed.inputs, routed.outputs, routed.latency_ms, None, keys[0], recent=False)
            return [True]
        if len(routed.outputs) != len(frame):
            raise ValueError(f"{len(routed.outputs)} answers for {len(frame)} rows")
        start = 0
        for kept, (request, key) in enumerate(zip(requests, keys, strict=True)):
            self.mirror.yield_to_live()  # each request's rows are kept between live requests
            outputs, start = routed.outputs.iloc[start : start + len(request.frame)], start + len(request.frame)
            try:
                self._keep(slot, request.frame, outputs, float("nan"), None, key, recent=False)
            except Exception as exc:  # the ones kept stay kept: never scored (and logged) twice
                raise KeepFailed(kept, exc) from exc
        return [True] * len(requests)

    def _keep(
        self,
        slot: Slot,
        frame: pd.DataFrame,
        outputs: pd.DataFrame | None,
        latency_ms: float,
        error: str | None,
        keys: tuple[str, datetime, str | None],
        *,
        recent: bool = True,
    ) -> None:
        """Queue the request for the log (or window it in memory); keep scored inputs for preflight.

        ``keys``: the request id, time and routing key. Only scored
        requests feed :meth:`recent_inputs` (and a shadow's never, ``recent`` false): a
        refused request must not make the next deploy's preflight fail on inputs nobody scored.
        """
        request_id, when, key = keys
        inputs = _plain_index(frame)
        outputs = _plain_index(outputs) if outputs is not None else None
        kept = Kept(inputs, outputs, latency_ms, error, request_id, when, key)
        # with a log, gate windows come from it
        self.windows.keep(slot.name, slot.loaded_at, kept, windowed=self.log is None, recent=recent)
        if self.log is None:
            return
        bundle = slot.bundle
        meta = {"request_id": request_id, "time": when, "env": self.env, "name": self.name, "key": key}
        meta |= {"version": bundle.version, "bundle_id": bundle.bundle_id, "slot": slot.name}
        meta |= {"deployment": slot.deployment, "latency_ms": latency_ms, "error": error}
        meta["primary"] = bundle.schema.output.primary
        self.log.record(meta, inputs, outputs)

    def window(self, slot: Slot, *, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """The recent requests of one deployment as a gate window (rows at or after ISO time ``since``
        and, read before the row cap, at or before ``until``: the newest rows up to that time).

        From the durable prediction log when the server keeps one (so a restarted server
        still sees the window; a shadow's rows from its own table), else from the bounded
        in-memory window of the slot load. Columns: inputs, outputs, ``latency_ms``,
        ``error``, ``time``, ``request_id``, ``row``, ``key`` (and ``label`` from the log).

        Raises:
            InvalidInput: ``since`` or ``until`` is not an ISO 8601 time.
        """
        moment, end = _moment(since), _moment(until, "until")
        if self.log is not None:
            where: dict[str, Any] = {"deployment": slot.deployment, "limit": WINDOW_ROWS}
            if moment is not None:
                where["since"] = moment.isoformat()
            if end is not None:
                where["until"] = end.isoformat()
            return self.log.window(self.name, self.env, **where)
        frame = self.windows.frame(slot.name, slot.loaded_at, moment)
        return frame if end is None or frame.empty else frame[frame["time"] <= pd.Timestamp(end)]

    def recent_inputs(self) -> pd.DataFrame | None:
        """A sample of the inputs this server has scored lately (for preflight), in the dtypes scored.

        With a shared store, the environment's (every replica's) from the log.
        """
        shared = getattr(self.log, "recent_inputs", None) if self.sync is not None else None
        if shared is not None:
            return shared(self.name, self.env)  # type: ignore[no-any-return]
        return self.windows.recent()
