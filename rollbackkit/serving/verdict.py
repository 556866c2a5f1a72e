"""A version's gate verdict for Argo Rollouts' ``web`` metric and Flagger's webhooks: judged, never acted on.

``GET /analysis?version=V`` and ``POST /analysis/flagger`` answer :class:`Verdict`. The gates
are judged exactly as the watchdog judges them (:func:`~rollbackkit.serving.gatewindows.judge`
over the version's window, live over the same minutes, label gates on rows old enough for
labels), but nothing moves: no rollback, no promotion, no bake, no failure streak counted.
When the watchdog's own report about that deployment is at most :data:`FRESH_S` old it is
the answer (``source: "watchdog"``: the decision it acts on, ``failure_limit`` applied);
otherwise the gates are evaluated here (``source: "evaluated"``: this window, no tolerance).
Each version's answer is kept :data:`CACHE_S` seconds, so a controller polling often (or
many at once) costs one evaluation.

Argo Rollouts reads one value with a jsonPath (``{$.decision}``) and compares it with
``successCondition``/``failureCondition``; neither true is *Inconclusive* (the rollout
pauses). Any answer other than 2xx is an Argo *Error*, so a failing version still gets 200
here. Flagger counts any status above 202 as a failed check: :func:`flagger_status` answers
412 unless the version passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from rollbackkit.analysis.gates import GateReport, GateResult
from rollbackkit.errors import VersionNotServed
from rollbackkit.serving.bodies import Body
from rollbackkit.serving.gatewindows import judge
from rollbackkit.serving.rollout import candidate
from rollbackkit.serving.router import RoutingState, Slot

if TYPE_CHECKING:
    from rollbackkit.serving.environment import ServingEnvironment

FRESH_S = 15.0
"""The oldest watchdog report (seconds) taken as the verdict instead of evaluating again."""
CACHE_S = 2.0
"""How long (seconds) one version's verdict is answered again without evaluating."""
PASSED = ("pass", "warn")
FAILED = ("rollback",)
INCONCLUSIVE = ("inconclusive", "insufficient")


class FlaggerPayload(Body):
    """What Flagger POSTs to a webhook; ``metadata.version`` picks the version (default: the canary, else live).

    Fields Flagger may add later are ignored (a newer Flagger must not fail every check).
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    name: str
    namespace: str
    phase: str
    checksum: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class GateVerdict:
    """One gate: its status, the value observed, the bounds it is held to, and a plain-words line."""

    name: str
    kind: str
    status: str
    value: float | None
    threshold: dict[str, float]
    message: str


@dataclass(frozen=True)
class Verdict:
    """A version's gate decision (``pass``, ``warn``, ``inconclusive``, ``insufficient`` or ``rollback``)."""

    model: str
    env: str
    version: str
    role: str
    deployment: str
    decision: str
    reason: str
    n: int
    evaluated_at: str
    source: str
    gates: tuple[GateVerdict, ...]

    @property
    def passed(self) -> bool:
        """The version may go on: its gates passed (or only warned)."""
        return self.decision in PASSED

    @property
    def failed(self) -> bool:
        """A gate failed: the version should be rolled back."""
        return self.decision in FAILED

    @property
    def inconclusive(self) -> bool:
        """The data does not decide yet (no traffic, too few rows or labels): wait."""
        return self.decision in INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer: the fields, ``passed``/``failed``/``inconclusive`` and each gate."""
        said = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gates"}
        flags = {"passed": self.passed, "failed": self.failed, "inconclusive": self.inconclusive}
        return {**said, **flags, "gates": [asdict(g) for g in self.gates]}


def flagger_status(verdict: Verdict) -> int:
    """200 when the version passed, else 412 (Flagger counts any status over 202 as a failed check)."""
    return 200 if verdict.passed else 412


class Verdicts:
    """The verdicts of one served environment, each cached :data:`CACHE_S` seconds per deployment.

    Args:
        env: The served environment (read only: its routing state, windows and last report).
        ttl: Seconds a verdict is answered again.
        fresh_s: The oldest watchdog report reused.
        clock: A monotonic clock (tests may drive it).
    """

    def __init__(
        self,
        env: ServingEnvironment,
        *,
        ttl: float = CACHE_S,
        fresh_s: float = FRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env, self.ttl, self.fresh_s, self.clock = env, ttl, fresh_s, clock
        self._lock = threading.Lock()  # one evaluation at a time: a burst of polls waits for it, then hits the cache
        self._cache: dict[str, tuple[float, Verdict]] = {}

    def verdict(self, version: str | None = None) -> Verdict:
        """The gate verdict of ``version`` (``model@V`` or ``V``; None: the canary, else the shadow, else live).

        Raises:
            VersionNotServed: ``version`` takes no traffic here (the message names what does).
        """
        state = self.env.router.state
        role, slot = self._served(state, version)
        with self._lock:
            now = self.clock()
            cached = self._cache.get(slot.deployment)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
            found = self._reused(slot, role) or self._evaluated(state, role, slot)
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl}
            self._cache[slot.deployment] = (now, found)
            return found

    def _served(self, state: RoutingState, version: str | None) -> tuple[str, Slot]:
        """The role and slot of ``version`` (or of the version under evaluation)."""
        env = self.env
        served = {role: state.slot(name) for role, name in (("canary", state.canary), ("shadow", state.shadow))}
        served["live"] = state.slot(state.live)
        if not version:
            under, slot = candidate(state)
            if slot is not None:
                return under, slot
        wanted = (version or "").removeprefix(f"{env.name}@")
        for role, found in served.items():
            if found is not None and found.bundle.version == wanted:
                return role, found
        now = ", ".join(f"{s.bundle.version} ({r})" for r, s in served.items() if s is not None) or "nothing"
        asked = f"{env.name}@{wanted}" if wanted else f"a version of {env.name}"
        raise VersionNotServed(
            f"{asked} is not served in {env.env} here; serving: {now}.",
            "Ask for a version that takes traffic (version=...), or deploy it first.",
        )

    def _reused(self, slot: Slot, role: str) -> Verdict | None:
        """The watchdog's report about this deployment when it is at most ``fresh_s`` old."""
        last = self.env.last_report
        tags = (slot.bundle.version, f"{self.env.name}@{slot.bundle.version}")  # the report names the bundle's tag
        if not last or last.get("version") not in tags or last.get("slot") != slot.name:
            return None
        at = last.get("evaluated_at")
        try:
            age = (datetime.now(UTC) - datetime.fromisoformat(str(at))).total_seconds()
        except ValueError:
            return None
        if not 0 <= age <= self.fresh_s or last.get("decision") is None:
            return None
        names = {f.name for f in fields(GateResult)}
        gates = [GateResult(**{k: v for k, v in g.items() if k in names}) for g in last.get("gates") or []]
        report = GateReport(slot.bundle.version, int(last.get("n") or 0), last["decision"], gates)
        return self._verdict(slot, role, report, str(at), "watchdog")

    def _evaluated(self, state: RoutingState, role: str, slot: Slot) -> Verdict:
        """The gates judged here, as the watchdog judges them, without its tolerance or any action."""
        env = self.env
        began = next((a.time for a in env.deployments.history(env.name, env.env) if a.tag == slot.deployment), None)
        live_slot = state.slot(state.live) if role != "live" else None
        serving_for = max(0.0, time.monotonic() - env.step_started(slot.deployment))
        now = datetime.now(UTC)
        report = judge(env.window, slot, env.window(slot), live_slot, began=began, now=now, serving_for=serving_for)
        return self._verdict(slot, role, report, now.isoformat(timespec="seconds"), "evaluated")

    def _verdict(self, slot: Slot, role: str, report: GateReport, at: str, source: str) -> Verdict:
        env = self.env
        gates = tuple(
            GateVerdict(g.name, g.kind, g.status, g.observed, dict(g.threshold), g.words()) for g in report.gates
        )
        return Verdict(
            model=env.name,
            env=env.env,
            version=slot.bundle.version,
            role=role,
            deployment=slot.deployment,
            decision=report.decision,
            reason=report.summary(),
            n=report.n,
            evaluated_at=at,
            source=source,
            gates=gates,
        )
