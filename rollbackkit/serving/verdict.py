"""A version's gate verdict for Argo Rollouts' ``web`` metric and Flagger's webhooks: judged, never acted on.

``GET /analysis?version=V`` and ``POST /analysis/flagger`` answer :class:`Verdict`. The gates
are judged exactly as the watchdog judges them (:func:`~rollbackkit.serving.gatewindows.judge`
over the version's window, live over the same minutes, label gates on rows old enough for
labels), but nothing moves: no rollback, no promotion, no bake, no failure streak counted.
When the watchdog's own report about that deployment (the same tag, not merely the same
version) is at most :data:`FRESH_S` old and its last evaluation did not raise, it is the
answer (``source: "watchdog"``: the decision it acts on, ``failure_limit`` applied);
otherwise the gates are evaluated here (``source: "evaluated"``: this window, no tolerance).
One evaluation per deployment runs at a time: concurrent callers wait for it (at most
:data:`WAIT_S`), and its answer, or its failure, is kept :data:`CACHE_S` seconds, so a
controller polling often (or many at once) costs one evaluation.

Only ``pass`` passes: the watchdog never promotes on ``warn`` (it holds the rollout and
restarts the bake), so ``warn`` is undecided here too, like ``inconclusive``.

A version a rollback took traffic from (the watchdog's or a person's, and not deployed here
since) is no longer served, but its verdict stands: ``rollback`` (``source: "history"``,
``role: "rolled-back"``), the reason naming the rollback's tag and time; a version never
served here is a :class:`~rollbackkit.errors.VersionNotServed`. The version asked for is
validated first (an invalid one is an :class:`~rollbackkit.errors.InvalidVersion`, quoted
cut short).

Controllers copy answers into events and logs anyone may read: a gate's ``message`` and the
``reason`` are the public words (:meth:`~rollbackkit.analysis.gates.GateResult.words` with
``public=True``: names, measures, values and bounds), never a slice gate's worst slice (it names
a feature's value, which any client can send) nor an insufficient gate's reason text.

Argo Rollouts reads one value with a jsonPath (``{$.decision}``) and compares it with
``successCondition``/``failureCondition``; neither true is *Inconclusive* (the rollout
pauses). Any answer other than 2xx is an Argo *Error*, so a failing version still gets 200
here. Flagger counts any status above 202 as a failed check: :func:`flagger_status` answers
412 unless the version passed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rollbackkit.analysis.gates import GateReport, GateResult
from rollbackkit.analysis.gatespec import parse_gates_dict, reads_labels
from rollbackkit.analysis.series import json_safe
from rollbackkit.errors import InvalidVersion, VersionNotServed
from rollbackkit.refs import Reference, Version, shown
from rollbackkit.serving.gatewindows import judge_candidate
from rollbackkit.serving.rolled_back import RolledBack
from rollbackkit.serving.rollout import candidate
from rollbackkit.serving.routing_state import RoutingState, Slot
from rollbackkit.serving.verdict_types import (
    DECISIONS,
    FAILED,
    PASSED,
    ROLLED_BACK,
    FlaggerPayload,
    GateVerdict,
    StillEvaluating,
    Verdict,
    flagger_status,
)
from rollbackkit.serving.watched import EVALUATION_FAILED

if TYPE_CHECKING:
    from rollbackkit.serving.environment import ServingEnvironment

__all__ = [
    "CACHE_S", "DECISIONS", "FAILED", "FRESH_S", "PASSED", "ROLLED_BACK", "THREADS", "WAIT_S",
    "FlaggerPayload", "GateVerdict", "StillEvaluating", "Verdict", "Verdicts", "flagger_status",
]  # fmt: skip

FRESH_S = 15.0
"""The oldest watchdog report (seconds) taken as the verdict instead of evaluating again."""
CACHE_S = 2.0
"""How long (seconds) one deployment's verdict, or its failure, is answered again without evaluating."""
WAIT_S = 10.0
"""The longest (seconds) a caller waits for another caller's evaluation of the same deployment."""
THREADS = 4
"""The most worker threads ``/analysis`` calls hold at once (the rest wait without one): ``/predict`` keeps its own."""


@dataclass
class _Flight:
    """One deployment's evaluation: running until ``done``, then its verdict or its error, kept from ``at``."""

    done: threading.Event = field(default_factory=threading.Event)
    at: float = math.inf  # when it finished (never expired while it runs)
    verdict: Verdict | None = None
    error: Exception | None = None


class Verdicts:
    """The verdicts of one served environment: one evaluation per deployment at a time, each kept :data:`CACHE_S` s.

    Args:
        env: The served environment (read only: its routing state, windows and last report).
        ttl: Seconds a verdict (or an evaluation's failure) is answered again.
        fresh_s: The oldest watchdog report reused.
        wait_s: The longest a caller waits for another caller's evaluation of the same deployment.
        clock: A monotonic clock (tests may drive it).
    """

    def __init__(
        self,
        env: ServingEnvironment,
        *,
        ttl: float = CACHE_S,
        fresh_s: float = FRESH_S,
        wait_s: float = WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env, self.ttl, self.fresh_s, self.wait_s, self.clock = env, ttl, fresh_s, wait_s, clock
        self._lock = threading.Lock()  # guards the flights only, never held during an evaluation
        self._flights: dict[str, _Flight] = {}  # deployment -> its running or recent evaluation
        self._began: dict[str, str | None] = {}  # deployment -> when its assignment began (read once per tag)
        self._gone: RolledBack | None = None  # the versions rolled back from, read when first asked for

    def verdict(self, version: str | None = None) -> Verdict:
        """The gate verdict of ``version`` (``model@V`` or ``V``; None: the canary, else the shadow, else live).

        Raises:
            InvalidVersion: ``version`` is not ``V`` or ``model@V`` (quoted cut short).
            VersionNotServed: ``version`` takes no traffic here and no rollback took it away (the message
                names what serves).
            StillEvaluating: another caller's evaluation of it outlasted :data:`WAIT_S`.
            Exception: the evaluation's own failure (the log unreachable...), kept like a verdict.
        """
        state = self.env.router.state
        wanted = self._wanted(version)
        found = self._served(state, wanted)
        if found is None:
            return self._rolled_back(state, wanted)
        role, slot = found
        flight, mine = self._flight(slot.deployment)
        if mine:
            try:
                flight.verdict = self._reused(slot, role) or self._evaluated(state, role, slot)
            except Exception as exc:  # every caller in the next ttl seconds gets it too: one evaluation per burst
                flight.error = exc
            finally:
                if flight.verdict is None and flight.error is None:
                    flight.error = RuntimeError("the evaluation was interrupted")
                flight.at = self.clock()
                flight.done.set()
        elif not flight.done.wait(self.wait_s):
            raise StillEvaluating(
                f"The gates of {slot.deployment} are still being evaluated (over {self.wait_s:g} s).",
                "Ask again shortly; GET /status shows the log and the watchdog.",
            )
        if flight.error is not None:
            raise flight.error
        assert flight.verdict is not None
        return flight.verdict

    def _flight(self, deployment: str) -> tuple[_Flight, bool]:
        """The deployment's running or recent evaluation, or a new one this caller runs (True)."""
        with self._lock:
            now = self.clock()
            self._flights = {k: f for k, f in self._flights.items() if now - f.at < self.ttl}
            found = self._flights.get(deployment)
            if found is not None:
                return found, False
            self._flights[deployment] = made = _Flight()
            return made, True

    def _wanted(self, version: str | None) -> str | None:
        """The bare version asked for (None: the one under evaluation), validated; another model's is not served."""
        if not version:
            return None
        if "@" not in version:
            Version.parse(version)  # InvalidVersion: the value quoted cut short, whatever its length
            return version
        ref = Reference.parse(version)  # InvalidName / InvalidVersion, quoted cut short
        if ref.version is None:
            raise InvalidVersion(f"Invalid version {shown(version)}.", "Ask for V or model@V, e.g. v1.0.0.")
        if ref.name != self.env.name:
            raise VersionNotServed(
                f"{ref} is not served here: this server serves {self.env.name} in {self.env.env}.",
                f"Ask the server that serves {ref.name}.",
            )
        return ref.version

    def _roles(self, state: RoutingState) -> dict[str, Slot | None]:
        """The roles a verdict is asked about, the one under evaluation first (a standby takes no traffic)."""
        roles = state.roles()
        return {role: roles[role] for role in ("canary", "shadow", "live")}

    def _served(self, state: RoutingState, wanted: str | None) -> tuple[str, Slot] | None:
        """The role and slot of ``wanted`` (None: the version under evaluation, else live), or None."""
        if not wanted:
            under, slot = candidate(state)
            if slot is not None:
                return under, slot
        for role, found in self._roles(state).items():
            if found is not None and (found.bundle.version == wanted if wanted else role == "live"):
                return role, found
        return None

    def _rolled_back(self, state: RoutingState, wanted: str | None) -> Verdict:
        """``rollback`` for a version whose latest assignment here took its traffic away; else VersionNotServed."""
        env = self.env
        served = self._roles(state)
        key = tuple(s.deployment if s is not None else None for s in served.values())
        if self._gone is None:
            self._gone = RolledBack(env.deployments, env.name, env.env)
        gone = self._gone.find(wanted, key) if wanted else None
        if gone is None:
            now = ", ".join(f"{s.bundle.version} ({r})" for r, s in served.items() if s is not None) or "nothing"
            asked = f"{env.name}@{wanted}" if wanted else f"a version of {env.name}"
            raise VersionNotServed(
                f"{asked} is not served in {env.env} here; serving: {now}.",
                "Ask for a version that takes traffic (version=...), or deploy it first.",
            )
        rollback = gone.rollback
        reason = (
            f"rollback: {env.name}@{wanted} was rolled back in {env.env} by {rollback.tag} "
            f"({rollback.action} at {rollback.time}) and serves no traffic here"
        )
        return Verdict(
            model=env.name,
            env=env.env,
            version=str(wanted),
            role=ROLLED_BACK,
            deployment=gone.deployment,
            decision="rollback",
            reason=reason,
            n=0,
            evaluated_at=rollback.time,
            source="history",
            gates=(),
        )

    def _reused(self, slot: Slot, role: str) -> Verdict | None:
        """The watchdog's report about this deployment (its tag) when it is at most ``fresh_s`` old and its
        last evaluation did not raise (a report it cannot rebuild: None, evaluated here instead)."""
        last = self.env.last_report
        if not last or last.get("deployment") != slot.deployment or last.get("slot") != slot.name:
            return None  # another deployment's, even of the same version (a redeploy, the next canary step)
        if str(last.get("paused") or "").startswith(EVALUATION_FAILED) or last.get("decision") not in DECISIONS:
            return None  # its decision is from before the evaluation that raised: stale
        at = last.get("evaluated_at")
        try:
            age = (datetime.now(UTC) - datetime.fromisoformat(str(at))).total_seconds()
            if not 0 <= age <= self.fresh_s:
                return None
            names = {f.name for f in fields(GateResult)}
            gates = [GateResult(**{k: v for k, v in g.items() if k in names}) for g in last.get("gates") or []]
            report = GateReport(slot.bundle.version, int(last.get("n") or 0), last["decision"], gates)
            return self._verdict(slot, role, report, str(at), "watchdog")
        except (TypeError, ValueError, KeyError, AttributeError):  # an older leader's report, say
            return None

    def _evaluated(self, state: RoutingState, role: str, slot: Slot) -> Verdict:
        """The gates judged here, as the watchdog judges them, without its tolerance or any action."""
        env = self.env
        began = self._began.get(slot.deployment, "")
        if began == "":  # not read yet (None: no assignment records it)
            began = next((a.time for a in env.deployments.history(env.name, env.env) if a.tag == slot.deployment), None)
            kept = self._began if len(self._began) < 8 else {}
            self._began = {**kept, slot.deployment: began}  # replaced whole: concurrent readers see a complete dict
        now = datetime.now(UTC)
        report = judge_candidate(env, state, role, slot, env.window(slot), began=began, now=now)
        return self._verdict(slot, role, report, now.isoformat(timespec="seconds"), "evaluated")

    def _verdict(self, slot: Slot, role: str, report: GateReport, at: str, source: str) -> Verdict:
        env = self.env
        gates = tuple(
            GateVerdict(
                g.name, g.kind, g.status, json_safe(g.observed), json_safe(dict(g.threshold)), g.words(public=True)
            )
            for g in report.gates
        )
        return Verdict(
            model=env.name,
            env=env.env,
            version=slot.bundle.version,
            role=role,
            deployment=slot.deployment,
            decision=report.decision,
            reason=report.summary(public=True) + self._unlogged(slot, report),
            n=report.n,
            evaluated_at=at,
            source=source,
            gates=gates,
        )

    def _unlogged(self, slot: Slot, report: GateReport) -> str:
        """Why an inconclusive verdict may stay so on a server without a prediction log (else "")."""
        if self.env.log is not None or report.decision != "inconclusive":
            return ""
        spec = parse_gates_dict(slot.bundle.gates, f"{slot.bundle.info.tag} gates.yaml")
        labelled = {g.name for g in spec.gates if reads_labels(g)}
        never = [g.name for g in report.undecided if g.name in labelled]
        window = "no prediction log (serve --no-log): the window is this server's memory since the version loaded"
        if never:
            window += f"; labels cannot be recorded, so {', '.join(never)} can never be decided"
        return f" ({window})"
