"""Blue-green router: two warm slots, an atomic traffic split, rollback as a shift.

The whole routing state (both slots and the split) is one immutable object. A request
reads it once, so it always sees a consistent state. Writers build a new state under a lock
and swap the reference, which is atomic in CPython. No request ever sees a half-switched
router, and a rollback loads nothing: it points traffic back at the slot that is still warm.

States:
- ``live``: the slot that takes all traffic not sent to the canary.
- ``canary`` + ``percent``: a slot that takes ``percent``% of request keys. The choice is
  sticky per key (crc32 of the key), so one user sees one version for the whole canary.
- ``shadow`` + ``shadow_percent``: a slot that scores a mirror of ``shadow_percent``% of
  requests off the request path (:mod:`rollbackkit.serving.shadow`); :meth:`Router.route`
  never sends a client's request to it.
- the other loaded slot, if any, is the warm **standby**.

The state, its slots and a scored request are :mod:`rollbackkit.serving.routing_state`'s types.

A deploy while a canary or a shadow is running is refused: finish or roll back the canary
(or the shadow) first. This keeps consecutive operations from leaking traffic into each other.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rollbackkit.analysis.parity import ATOL, RTOL
from rollbackkit.bundle.compat import Adaptation, check
from rollbackkit.errors import IncompatibleInput, RoutingError, WarmupError
from rollbackkit.serving.heap import settle_heap
from rollbackkit.serving.request_check import Refusal, refused_values, request_verdict
from rollbackkit.serving.routing_state import SLOTS, Routed, RoutingState, Slot, in_canary, now

if TYPE_CHECKING:
    from rollbackkit.bundle.model import LoadedBundle

_CACHE_SIZE = 256


class Router:
    """The in-process blue-green router.

    Args:
        freeze_heap: Freeze the garbage collector's heap after each load
            (:func:`~rollbackkit.serving.heap.settle_heap`); for serving processes only.
    """

    def __init__(self, freeze_heap: bool = False) -> None:
        self.freeze_heap = freeze_heap
        self._state = RoutingState(
            slots=(("blue", None), ("green", None)), live=None, canary=None, percent=0, since=now(), generation=0
        )
        self._lock = threading.Lock()
        self._adaptations: OrderedDict[tuple[Any, ...], Adaptation | Refusal] = OrderedDict()
        self._adapt_lock = threading.Lock()

    @property
    def state(self) -> RoutingState:
        """The current routing snapshot."""
        return self._state

    # --------------------------------------------------------------------------- writers
    def load(self, bundle: LoadedBundle, deployment: str = "") -> Slot:
        """Warm ``bundle`` into the idle slot (no traffic moves). Returns the slot."""
        slot = self._warm(bundle, self._idle_slot_name(), deployment)
        if self.freeze_heap:
            settle_heap()
        with self._lock:
            self._swap(slots=tuple((n, slot if n == slot.name else s) for n, s in self._state.slots))
        return slot

    def warm(self, bundle: LoadedBundle, slot: str, deployment: str) -> Slot:
        """Warm ``bundle`` as a slot called ``slot`` without installing it (see :meth:`adopt`)."""
        warmed = self._warm(bundle, slot, deployment)
        if self.freeze_heap:
            settle_heap()
        return warmed

    def adopt(
        self,
        slots: dict[str, Slot | None],
        *,
        live: str | None,
        canary: str | None = None,
        percent: int = 0,
        shadow: str | None = None,
        shadow_percent: int = 0,
    ) -> RoutingState:
        """Install a whole routing state at once: warm ``slots`` (by name) and the split (one atomic swap).

        A replica following another's operation (:mod:`rollbackkit.serving.sync`) warms what it
        lacks with :meth:`warm` first, then switches here in one step.
        """
        if set(slots) != set(SLOTS) or any(s is not None and s.name != n for n, s in slots.items()):
            raise RoutingError("A routing state names the slots blue and green.", "This is a bug; report it.")
        if live is None or slots[live] is None:
            raise RoutingError("A routing state needs a live slot.", "Deploy a version first.")
        with self._lock:
            return self._swap(
                slots=tuple((n, slots[n]) for n in SLOTS),
                live=live,
                canary=canary,
                percent=percent if canary is not None else 0,
                shadow=shadow,
                shadow_percent=shadow_percent if shadow is not None else 0,
            )

    def deploy(self, bundle: LoadedBundle, canary_percent: int | None = None, deployment: str = "") -> RoutingState:
        """Load into the idle slot, warm, then shift all traffic or start a canary."""
        self.refuse_busy()
        slot = self.load(bundle, deployment)
        return self.shift(slot.name, 100 if canary_percent is None else canary_percent)

    def refuse_busy(self) -> None:
        """Raise :class:`RoutingError` while a canary or a shadow runs (a deploy would leak into it)."""
        state = self._state
        if state.canary is not None:
            raise RoutingError("A canary is running.", "Promote it or roll it back before deploying again.")
        if state.shadow is not None:
            raise RoutingError(
                "A shadow is running.", "Promote it (promote --from-shadow) or roll it back before deploying again."
            )

    def start_shadow(self, bundle: LoadedBundle, percent: int, deployment: str) -> RoutingState:
        """Warm ``bundle`` into the idle slot as the shadow of ``percent``% of requests (no traffic moves)."""
        if not 1 <= percent <= 100:
            raise RoutingError(f"Shadow percent {percent} is out of range.", "Use 1 to 100.")
        self.refuse_busy()
        slot = self.load(bundle, deployment)
        with self._lock:
            return self._swap(shadow=slot.name, shadow_percent=percent)

    def shift(self, slot: str, percent: int = 100, deployment: str | None = None) -> RoutingState:
        """Send ``percent``% of traffic to ``slot`` (100 makes it live), atomically.

        Args:
            slot: ``blue`` or ``green``.
            percent: 100 makes the slot live; less starts (or resizes) a canary.
            deployment: Relabel the slot's deployment id in the same atomic swap.
        """
        if slot not in SLOTS:
            raise RoutingError(f"Unknown slot {slot!r}.", "Use blue or green.")
        if not 0 <= percent <= 100:
            raise RoutingError(f"Canary percent {percent} is out of range.", "Use 0 to 100.")
        with self._lock:
            state = self._state
            if state.slot(slot) is None:
                raise RoutingError(f"Slot {slot} is empty.", "Deploy a version into it first.")
            label = self._relabelled(state, slot, deployment)
            if state.shadow == slot and percent > 0:  # the shadow takes traffic: it mirrors no longer
                label |= {"shadow": None, "shadow_percent": 0}
            if percent == 100 or state.live is None:
                return self._swap(live=slot, canary=None, percent=0, **label)
            if slot == state.live:
                return self._swap(canary=None, percent=0, **label)
            return self._swap(canary=slot if percent > 0 else None, percent=percent, **label)

    def rollback(self, deployment: str | None = None) -> RoutingState:
        """Cancel a canary or a shadow, or send all traffic back to the warm standby. Loads nothing.

        This is the mechanism only: which version a rollback may go to is decided by
        :meth:`~rollbackkit.registry.assignments.Deployments.rollback_target`, which
        :meth:`~rollbackkit.serving.environment.ServingEnvironment.rollback` applies first.

        Args:
            deployment: Relabel the slot that now takes all traffic (the assignment tag
                its rows are logged under) in the same atomic swap.
        """
        with self._lock:
            state = self._state
            if state.shadow is not None:  # the shadow is cancelled; the live slot keeps all traffic
                cancelled = {"shadow": None, "shadow_percent": 0, "canary": None, "percent": 0}
                return self._swap(**cancelled, **self._relabelled(state, state.live or "", deployment))
            target = state.live if state.canary is not None else (state.standby.name if state.standby else None)
            if target is None:
                raise RoutingError(
                    "There is no warm standby to roll back to.",
                    "Deploy the previous version first (rollbackkit deploy NAME@VERSION).",
                )
            return self._swap(live=target, canary=None, percent=0, **self._relabelled(state, target, deployment))

    @staticmethod
    def _relabelled(state: RoutingState, slot: str, deployment: str | None) -> dict[str, Any]:
        """``{"slots": ...}`` with ``slot`` relabelled to ``deployment`` (empty when None)."""
        current = state.slot(slot)
        if deployment is None or current is None:
            return {}
        relabelled = replace(current, deployment=deployment)
        return {"slots": tuple((n, relabelled if n == slot else s) for n, s in state.slots)}

    def _swap(self, **changes: Any) -> RoutingState:
        """Replace the state (caller holds the lock)."""
        self._state = replace(self._state, since=now(), generation=self._state.generation + 1, **changes)
        return self._state

    def _idle_slot_name(self) -> str:
        state = self._state
        busy = {state.live, state.canary, state.shadow}
        empty = [n for n, s in state.slots if s is None and n not in busy]
        if empty:
            return empty[0]
        idle = [n for n, _ in state.slots if n not in busy]
        if not idle:
            raise RoutingError(
                "Both slots are taking traffic (or mirroring it).", "Promote or roll back the canary (or shadow) first."
            )
        return idle[0]

    def _warm(self, bundle: LoadedBundle, name: str, deployment: str) -> Slot:
        """Score the golden sample and insist on the registered outputs."""
        from rollbackkit.bundle.frames import part

        started = time.perf_counter()
        golden = bundle.golden
        inputs, expected = part(golden, "input"), part(golden, "output")
        # Golden rows come from the validation data and may lie outside the training domain:
        # check their columns and dtypes only, as for requests.
        outputs = bundle.predict(inputs, adaptation=check(bundle.schema, inputs, domain=False).adaptation)
        for column in expected.columns:
            got = outputs[column].to_numpy()
            want = expected[column].to_numpy()
            same = (
                np.allclose(got.astype(float), want.astype(float), rtol=RTOL, atol=ATOL, equal_nan=True)
                if np.issubdtype(want.dtype, np.number)
                else bool((got.astype(str) == want.astype(str)).all())
            )
            if not same:
                differs = [f.detail for f in bundle.runtime.problems]
                raise WarmupError(
                    f"{bundle.info.tag} scores its golden sample differently here ({column})"
                    + (f"; {differs[0]}" if differs else "")
                    + ".",
                    "Check library versions against the ones it was registered with ('rollbackkit show' lists them).",
                )
        return Slot(name, bundle, deployment, now(), (time.perf_counter() - started) * 1000)

    # --------------------------------------------------------------------------- readers
    def route(self, key: str | None = None) -> Slot:
        """The slot the split sends ``key`` to (the live one without a canary or a key)."""
        state = self._state  # one read: a consistent snapshot for this request
        name = state.live
        if state.canary is not None and key is not None and in_canary(key, state.percent):
            name = state.canary
        slot = state.slot(name)
        if slot is None:
            raise RoutingError("No version is serving yet.", "Deploy one first.")
        return slot

    def predict(self, frame: pd.DataFrame, key: str | None = None, *, untyped: bool = False) -> Routed:
        """Score a frame on the slot the split picks for ``key``; thread-safe, lock-free.

        ``untyped`` frames (JSON rows) are first read with that slot's schema dtypes where
        nothing is lost (:func:`rollbackkit.bundle.conform.conform`).
        """
        return self.score(self.route(key), frame, untyped=untyped)

    def score(self, slot: Slot, frame: pd.DataFrame, *, untyped: bool = False) -> Routed:
        """Score a frame on ``slot`` (see :meth:`predict`).

        Raises:
            IncompatibleInput: The client's fault, never the model's: column names the
                prediction log cannot store, columns or dtypes the version cannot score,
                or values outside what it was trained on (checked only once the model
                has failed on them). Anything else the model raises is the model's.
        """
        started = time.perf_counter()
        if untyped:
            from rollbackkit.bundle.conform import conform

            frame = conform(frame, slot.bundle.schema)
        adaptation = self._adaptation(slot.bundle, frame)
        try:
            outputs = slot.bundle.predict(frame, adaptation=adaptation)
        except IncompatibleInput:
            raise
        except Exception:
            refused = refused_values(slot.bundle, frame)
            if refused is None:
                raise  # a well-formed, compatible request: the model failed
            raise refused from None
        return Routed(outputs, slot, (time.perf_counter() - started) * 1000, frame)

    def adaptation(self, slot: Slot, frame: pd.DataFrame) -> Adaptation:
        """The adaptation :meth:`score` applies to ``frame`` on ``slot``; raises IncompatibleInput as it does."""
        return self._adaptation(slot.bundle, frame)

    def _adaptation(self, bundle: LoadedBundle, frame: pd.DataFrame) -> Adaptation:
        """The adaptation for these columns and dtypes; raise a fresh IncompatibleInput when none.

        Verdicts are cached per (bundle, column names, dtypes) in an LRU of
        :data:`_CACHE_SIZE` keys: a refusal is kept as its message and columns, never as
        an exception object (whose traceback would keep the failed request's frames alive).
        """
        key = (bundle.bundle_id, tuple(map(repr, frame.columns)), tuple(map(str, frame.dtypes)))
        with self._adapt_lock:
            cached = self._adaptations.get(key)
            if cached is not None:
                self._adaptations.move_to_end(key)
        if cached is None:
            cached = request_verdict(bundle, frame)
            with self._adapt_lock:
                self._adaptations[key] = cached
                while len(self._adaptations) > _CACHE_SIZE:
                    self._adaptations.popitem(last=False)
        if isinstance(cached, Refusal):
            raise cached.error()
        return cached

    def status(self) -> dict[str, Any]:
        """Slots, versions, split and since when (the body of ``GET /status`` minus names)."""
        state = self._state
        live, canary, standby = state.slot(state.live), state.slot(state.canary), state.standby
        shadow = state.slot(state.shadow)
        return {
            "live": live.describe() if live else None,
            "standby": standby.describe() if standby else None,
            "canary": {**canary.describe(), "percent": state.percent} if canary else None,
            "shadow": {**shadow.describe(), "percent": state.shadow_percent} if shadow else None,
            "since": state.since,
            "generation": state.generation,
        }
