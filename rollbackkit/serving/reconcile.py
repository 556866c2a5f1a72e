"""Make a router serve a :class:`~rollbackkit.serving.desired.Desired` state: warm first, then one switch.

A slot that already holds a placement's version is kept (relabelled with its tag: a
rollback to the warm standby loads nothing); every other placement is loaded and warmed
into a free slot while traffic still flows to the old state; only then is the whole state
installed in one atomic swap (:meth:`~rollbackkit.serving.router.Router.adopt`). A version
that cannot be loaded changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rollbackkit.serving.desired import Desired, Placement, desired_of
from rollbackkit.serving.router import Router
from rollbackkit.serving.routing_state import SLOTS, Slot

if TYPE_CHECKING:
    from rollbackkit.bundle.model import LoadedBundle


class CannotLoad(Exception):
    """A placement's version could not be loaded or warmed here; nothing was switched."""

    def __init__(self, version: str, why: str) -> None:
        super().__init__(f"cannot load {version}: {why}")
        self.version = version


@dataclass(frozen=True)
class Reconciled:
    """What :func:`reconcile` did: ``switched`` (False: traffic was already there), the versions it
    ``loaded``, ``(new tag, old tag)`` of each slot it kept (``relabelled``), and the warm standby
    it still lacks (``standby``: load it with :func:`fill_standby`, after the switch)."""

    switched: bool
    loaded: tuple[str, ...] = ()
    relabelled: tuple[tuple[str, str], ...] = ()
    standby: Placement | None = None


def _why(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


def _traffic(desired: Desired) -> tuple[Placement | None, ...]:
    return desired.live, desired.canary, desired.shadow


def reconcile(router: Router, desired: Desired, load: Callable[[str], LoadedBundle]) -> Reconciled:
    """Make ``router`` route as ``desired`` does: warm what takes traffic and is missing, then switch once.

    ``load(version)`` returns the version's bundle (unwarmed). A slot holding the desired
    standby's version is kept as the standby; a standby that is not held is left to
    :func:`fill_standby` (the switch never waits for it). Raises :class:`CannotLoad`
    (nothing switched) when a version that takes traffic cannot be loaded or warmed.
    """
    state = router.state
    now = desired_of(state)
    if desired.live is None:
        return Reconciled(False)
    standby = desired.standby
    if _traffic(now) == _traffic(desired):
        held = now.standby is not None and standby is not None and now.standby.version == standby.version
        return Reconciled(False, standby=None if held or standby is None else standby)
    placements = [(r, p) for r, p in desired.placements() if r != "standby"][: len(SLOTS)]
    current: dict[str, Slot | None] = dict(state.slots)
    chosen: dict[str, tuple[str, Placement]] = {}  # slot name -> (role, placement)
    for role, placement in placements + ([("standby", standby)] if standby is not None else []):
        free = [n for n, s in current.items() if s is not None and n not in chosen]
        same = [n for n in free if current[n].bundle.version == placement.version]  # type: ignore[union-attr]
        best = sorted(same, key=lambda n: current[n].deployment != placement.tag)  # type: ignore[union-attr]
        if best and (role != "standby" or len(chosen) < len(SLOTS)):
            chosen[best[0]] = (role, placement)
    missing = [(r, p) for r, p in placements if not any(q is p for _, q in chosen.values())]
    if len(chosen) + len(missing) > len(SLOTS):  # the standby's slot is needed for traffic
        chosen = {n: rp for n, rp in chosen.items() if rp[0] != "standby"}
    loaded: list[str] = []
    new: dict[str, Slot | None] = {n: None for n in SLOTS}
    relabelled: list[tuple[str, str]] = []
    for name, (_role, placement) in chosen.items():
        slot = current[name]
        assert slot is not None
        new[name] = replace(slot, deployment=placement.tag) if slot.deployment != placement.tag else slot
        relabelled.append((placement.tag, slot.deployment))
    for role, placement in missing:
        name = next(n for n in SLOTS if n not in chosen)
        try:
            new[name] = router.warm(load(placement.version), name, placement.tag)
        except Exception as exc:
            raise CannotLoad(placement.version, _why(exc)) from exc
        chosen[name] = (role, placement)
        loaded.append(placement.version)
    by_role: dict[str, Any] = {role: (n, p) for n, (role, p) in chosen.items()}
    canary, shadow = by_role.get("canary"), by_role.get("shadow")
    router.adopt(
        new,
        live=by_role["live"][0],
        canary=canary[0] if canary else None,
        percent=(canary[1].percent or 0) if canary else 0,
        shadow=shadow[0] if shadow else None,
        shadow_percent=(shadow[1].percent or 0) if shadow else 0,
    )
    lacking = standby if standby is not None and "standby" not in by_role else None
    return Reconciled(True, tuple(loaded), tuple(relabelled), lacking)


def fill_standby(
    router: Router,
    standby: Placement,
    load: Callable[[str], LoadedBundle],
    on_error: Callable[[str], None] | None = None,
) -> bool:
    """Warm ``standby`` into the idle slot (no traffic moves); False when it is there, no slot is idle,
    or it cannot be loaded (a standby only makes a later rollback faster: never raised, given to
    ``on_error`` as one line)."""
    held = router.state.standby
    if held is not None and held.bundle.version == standby.version:
        return False
    try:
        router.load(load(standby.version), standby.tag)
    except Exception as exc:
        if on_error is not None:
            on_error(" ".join(f"{standby.version}: {type(exc).__name__}: {getattr(exc, 'message', '') or exc}".split()))
        return False
    return True
