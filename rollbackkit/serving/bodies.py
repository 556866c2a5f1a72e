"""The request bodies of the HTTP API: one strict pydantic model per route.

The app (:mod:`rollbackkit.serving.app`) reads every body with one of them, and
:mod:`rollbackkit.serving.openapi` publishes their JSON schemas.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rollbackkit.analysis.rollout_plan import CANARY_RANGE, SHADOW_RANGE
from rollbackkit.analysis.times import when
from rollbackkit.errors import InvalidInput, RollbackkitError
from rollbackkit.refs import Version, shown, validate_name
from rollbackkit.serving.predlog.binning import MAX_EDGES, MAX_KNOWN


class Body(BaseModel):
    """A request body: a JSON object with exactly these fields, each of exactly its type."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _valid_version(value: str) -> str:
    """VALUE if it is a version such as v1.0.0 (pydantic reports the ValueError as one 400 line)."""
    if not Version.is_valid(value):
        raise ValueError(f"{shown(value)} is not a version such as v1.0.0")
    return value


def _percent(bounds: tuple[int, int]) -> dict[str, Any]:
    """A share's range in the JSON schema, checked by :mod:`rollbackkit.analysis.rollout_plan` (one rule)."""
    return {"minimum": bounds[0], "maximum": bounds[1]}


_Frame = dict[str, Any] | list[dict[str, Any]] | None
_ACTOR = Field(None, description="Who asks (the CLI sends git's user.name); default admin-api.")
_FEATURES = Field(None, description="Live features for preflight, a wire frame (default: inputs lately scored).")


class PredictBody(Body):
    """``POST /predict``: rows as records, as columns + data, or as a typed frame."""

    records: list[dict[str, Any]] | None = None
    columns: list[str] | None = None
    data: list[list[Any]] | None = None
    frame: dict[str, Any] | None = None
    key: str | int | None = Field(None, description="Sticky canary routing key (or header X-Request-Key).")


class DeployBody(Body):
    """``POST /admin/deploy``."""

    version: str = Field(description="vX.Y.Z")
    canary: int | None = Field(
        None, json_schema_extra=_percent(CANARY_RANGE), description="Percent of traffic for a canary (1-99)."
    )
    shadow: int | None = Field(
        None,
        json_schema_extra=_percent(SHADOW_RANGE),
        description="Percent of requests mirrored to the version as a shadow (1-100).",
    )
    steps: list[int] | None = Field(
        None, description="A stepped rollout: increasing percents ending at 100, such as [5, 25, 50, 100]."
    )
    bake: str | float | None = Field(
        None, description="How long each step's gates must pass: seconds or 30s, 10m, 2h (default: serve --bake)."
    )
    features: _Frame = _FEATURES
    force: bool = False
    reason: str = ""
    actor: str | None = _ACTOR


class PromoteBody(Body):
    """``POST /admin/promote``."""

    reason: str = ""
    actor: str | None = _ACTOR
    from_shadow: bool = Field(False, description="Promote the running shadow instead of the canary.")
    canary: int | None = Field(
        None,
        json_schema_extra=_percent(CANARY_RANGE),
        description="With from_shadow: the shadow becomes a canary of this percent (1-99).",
    )


class RollbackBody(Body):
    """``POST /admin/rollback``."""

    reason: str
    incident: str = ""
    to: str | None = Field(None, description="vX.Y.Z (default: the rollback target).")
    features: _Frame = _FEATURES
    force: bool = False
    actor: str | None = _ACTOR


MAX_SAMPLE = 50_000
"""The latest answered rows one window read takes at most (``limit``; a rollback preview's sample)."""


class LogRead(Body):
    """A body that may read another model's or environment's rows: the server running holds the
    project's one prediction log file, so a read for an environment with no server of its own
    comes here (default: this server's name and environment)."""

    name: str | None = Field(None, description="The bundle whose rows to read (default: this server's).")
    env: str | None = Field(None, description="The environment whose rows to read (default: this server's).")

    @field_validator("name", "env")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        try:
            return None if value is None else validate_name(value)
        except RollbackkitError as exc:  # one rule for names; pydantic reports a ValueError
            raise ValueError(f"{exc.message[:-1]}: use lower-case letters, digits and inner dashes") from None


class LogBody(LogRead):
    """``POST /admin/affected|backfill|drift|window|gates``: a version (``drift``: ``v1,v2,...``)."""

    version: str = Field(description="vX.Y.Z (drift: a comma-separated list)")
    since: str | None = Field(None, description="Only rows at or after this ISO 8601 time (affected).")
    limit: int | None = Field(
        None, ge=1, le=MAX_SAMPLE, description="window: the latest LIMIT answered rows, with their times (a sample)."
    )
    deployment: str | None = Field(None, max_length=200, description="window: only this deployment's rows.")

    @field_validator("since")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        try:  # the one rule for a user's time (naive: local time): analysis.times.when
            stamp = when(value, "time")
        except InvalidInput:
            raise ValueError("not an ISO 8601 time such as 2026-01-05T09:30:00+00:00") from None
        return None if stamp is None else stamp.isoformat()


class LabelItem(Body):
    """One label of ``POST /labels``: the row it is for (``request_id`` and ``row``, or ``key``) and its value."""

    request_id: str | None = Field(None, description="The request_id /predict answered (with on: request_id).")
    row: int = Field(0, ge=0, description="The row's position in its request (default 0).")
    key: str | int | None = Field(None, description="The request's key (with on: key): labels its every logged row.")
    label: str | bool | int | float | None = Field(
        description="The truth, as the live version predicts it (a class, or a number); null: no label (skipped)."
    )

    @field_validator("label")
    @classmethod
    def _json_number(cls, value: str | bool | int | float | None) -> str | bool | int | float | None:
        """NaN and Infinity are not JSON (Python's parser takes them): a 400, not a missing label."""
        if isinstance(value, float) and not math.isfinite(value):
            spelled = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            raise ValueError(f"{spelled} is not JSON; send null for no label")
        return value


class LabelsBody(Body):
    """``POST /labels``: ground truth for logged rows, joined by request id or by key."""

    on: Literal["request_id", "key"] = Field(description="How the labels find their rows.")
    labels: list[LabelItem] = Field(min_length=1)
    all_rows: bool = Field(False, description="With on: key, let one key label more than 1,000 logged rows.")


class GateHistoryBody(LogRead):
    """``POST /admin/gate_history``: the watchdog's recorded evaluations, optionally of one version, in a range."""

    since: str | None = Field(None, description="Only evaluations at or after this ISO 8601 time.")
    until: str | None = Field(None, description="Only evaluations at or before this ISO 8601 time.")
    version: str | None = Field(None, description="Only evaluations of this version (vX.Y.Z).")
    most: int = Field(5000, ge=2, le=20_000, description="At most this many, thinned (the answer says truncated).")

    @field_validator("since", "until")
    @classmethod
    def _iso_times(cls, value: str | None) -> str | None:
        return LogBody._iso_time(value)  # type: ignore[no-any-return]  # one rule for ISO times

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return None if value is None else _valid_version(value)


class BinnedBody(LogRead):
    """``POST /admin/binned``: counts per slice, time window and bin of one logged column (drift over time)."""

    column: str = Field(
        max_length=200, description="primary_output, an input feature, or (with output) an output column."
    )
    edges: list[float] | list[str] = Field(
        min_length=1,
        max_length=MAX_EDGES,
        description=f"k+1 equal-width numeric edges (p1..p99), or the categories as text (at most {MAX_EDGES}).",
    )
    start: str | None = Field(None, description="ISO 8601 start of the first window (default: the first row).")
    end: str | None = Field(None, description="ISO 8601 end of the last window (default: the last row).")
    windows: int = Field(24, ge=1, le=1000)
    by: str | None = Field(None, max_length=200, description="A feature (or version, deployment) to slice by.")
    versions: list[str] | None = Field(None, max_length=100, description="Only these versions' rows (at most 100).")
    output: bool = Field(False, description="Read column from each row's outputs (a class label).")
    known: list[str] | None = Field(
        None, max_length=MAX_KNOWN, description="Categories: the reference's values past edges (counted one by one)."
    )
    cuts: list[int] | None = Field(
        None, max_length=1000, description="Each answer window's first equal window (merged where counted)."
    )

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_valid_version(v) for v in value]


MAX_SCORE_ROWS = 10_000
"""Rows ``POST /admin/score`` takes at most (a preview's sample; 413 beyond)."""


class ScoreBody(Body):
    """``POST /admin/score``: rows scored by the warm slot that holds VERSION (nothing routed, logged or shifted)."""

    name: str = Field(description="The bundle name this server serves.")
    env: str = Field(description="The environment this server serves.")
    version: str = Field(description="vX.Y.Z: held by the live, canary or shadow slot, or the warm standby.")
    frame: dict[str, Any] = Field(description=f"The rows, a wire frame of at most {MAX_SCORE_ROWS:,} rows.")

    @field_validator("name", "env")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return validate_name(value)
        except RollbackkitError as exc:  # one rule for names; pydantic reports a ValueError
            raise ValueError(f"{exc.message[:-1]}: use lower-case letters, digits and inner dashes") from None

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return _valid_version(value)


ADMIN_BODIES: dict[str, type[Body]] = {
    "deploy": DeployBody,
    "promote": PromoteBody,
    "rollback": RollbackBody,
    **dict.fromkeys(("affected", "backfill", "drift", "window", "gates"), LogBody),
    "gate_history": GateHistoryBody,
    "binned": BinnedBody,
    "score": ScoreBody,
}
"""Every admin operation and the body it takes (the app's admin routes and the OpenAPI document)."""
