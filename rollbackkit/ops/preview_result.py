"""A rollback preview's result: what a rollback would change, per leaving version (the views of
:func:`rollbackkit.ops.preview.preview_rollback`'s answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollbackkit.analysis.preview import scored_words
from rollbackkit.bundle.compat import Adaptation
from rollbackkit.cards import Card, HasCard
from rollbackkit.ops.preview_parts import LOADED, VersionPreview

if TYPE_CHECKING:
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.analysis.preview import SliceDelta, Transition


@dataclass(frozen=True)
class RollbackPreview(HasCard):
    """What rolling ``name`` in ``env`` back to ``to_version`` would change.

    Attributes:
        name: The bundle name.
        env: The environment.
        to_version: The rollback target.
        parts: One :class:`~rollbackkit.ops.preview_parts.VersionPreview` per version losing
            traffic (the canary first), each with its rows, traffic share and flip share.
        kind: ``classification`` or ``regression`` (the target's output contract).
        primary: The target's primary output.
        score: The numeric output both versions have, whose deltas are shown (None: none).
        threshold: The decision threshold on ``score`` (None: a classifier's class).
        by: The slice column (None: no slices).
        preflight: The target's preflight on the first sample: the verdict (None: nothing scored).
        where: Where the target scored the first version's rows: :data:`LOADED`, or a server's
            warm slot holding it (``warm standby slot green of http://...``).
        done: True when the rollback already happened (the rows are the version it replaced).
        note: What the preview could not show and why (a shadow only cancelled, no shared score), and
            why it loaded the target although a server holds it warm (a sample over a slot's limit).
        from_version: The first version losing traffic (the canary, else the live version; a
            cancelled shadow's version when nothing else leaves).
        loaded: Whether the target's bundle was loaded in this process (False when a warm slot
            scored every row and the preflight read its schema only).
        serves: Whether the target is the live version (a canary's rollback keeps it, or the rollback
            is done): a rollback to it skips the preflight, so :attr:`preflight` is shown as not needed.
    """

    name: str
    env: str
    to_version: str
    parts: list[VersionPreview]
    kind: str
    primary: str
    score: str | None
    threshold: float | None
    by: str | None
    preflight: PreflightReport | None
    from_version: str
    where: str = LOADED
    done: bool = False
    note: str | None = None
    loaded: bool = True
    serves: bool = False

    def card(self) -> Card:
        """The flip share, the versions losing traffic, the slices and the most frequent flips."""
        from rollbackkit.ops.result_cards import preview_card

        return preview_card(self)

    @property
    def _main(self) -> VersionPreview | None:
        return self.parts[0] if self.parts else None

    @property
    def from_versions(self) -> list[str]:
        """Every version losing (or, after the rollback, that lost) traffic, the canary first."""
        return [p.version for p in self.parts] or [self.from_version]

    @property
    def n(self) -> int:
        """Rows scored for :attr:`from_version`."""
        return self._main.n if self._main else 0

    @property
    def flip_share(self) -> float | None:
        """Share of :attr:`from_version`'s decisions that flip (0.0 when only a shadow is cancelled)."""
        return self._main.flip_share if self._main else 0.0

    @property
    def slices(self) -> list[SliceDelta]:
        """:attr:`from_version`'s per slice flip share and deltas, ``"all"`` first."""
        return self._main.slices if self._main else []

    @property
    def changes(self) -> list[Transition]:
        """:attr:`from_version`'s most frequent flips."""
        return self._main.changes if self._main else []

    @property
    def refused(self) -> str | None:
        """Why :attr:`from_version`'s decisions were not compared (None: they were)."""
        return self._main.refused if self._main else None

    @property
    def total(self) -> float | None:
        """Share of all the environment's decisions that flip: each leaving version's flip share
        weighted by its traffic share (None when one is unknown)."""
        if not self.parts:
            return 0.0
        shares = [(p.traffic, p.flip_share) for p in self.parts]
        if any(t is None or f is None for t, f in shares):
            return None
        return sum(t * f for t, f in shares if t is not None and f is not None) / 100

    @property
    def verdict(self) -> str:
        """The preflight verdict: ``compatible``, ``adaptable``, ``incompatible`` (``skipped``: nothing scored)."""
        return self.preflight.verdict if self.preflight is not None else "skipped"

    @property
    def adaptation(self) -> Adaptation:
        """What was done to :attr:`from_version`'s logged columns before the target scored them."""
        return self._main.adaptation if self._main else Adaptation()

    @property
    def refused_rows(self) -> int:
        """Rows of :attr:`from_version`'s sample the target would refuse (its refused column sets)."""
        return self._main.refused_rows if self._main else 0

    @property
    def refused_why(self) -> str | None:
        """The largest refused column set's columns missing, or its reason (None: none refused)."""
        group = next((g for g in self._main.groups if g.refused is not None), None) if self._main else None
        if group is None:
            return None
        return group.lacking().strip() or group.refused

    def preflight_said(self) -> str:
        """What the preflight checked and what it says: ``incompatible`` on ``v1.1.0``'s rows, or, when the
        target already serves, ``not needed: v1.0.0 serves live traffic (...)``."""
        groups = self._main.groups if self._main else []
        rows = f"{self.from_version}'s latest {groups[0].rows if groups else self.n:,} rows"
        if len(groups) > 1:  # the largest column set's rows: those the preflight checks
            rows = f"{self.from_version}'s largest column set ({groups[0].rows:,} rows{groups[0].lacking()})"
        if not self.serves:
            return f"{self.verdict} on {rows}"
        why = "the rollback is done" if self.done else "a rollback only stops the canary"
        return f"not needed: {self.to_version} serves live traffic ({why}; on {rows} it would read {self.verdict})"

    def flip_said(self) -> str:
        """``85.5% flip of 62 scoreable rows; 238 of 300 (79%) would be refused: without visits``."""
        share = "n/a" if self.flip_share is None else f"{100 * self.flip_share:.3g}%"
        return f"{share} {scored_words(self.n, self.refused_rows, done=self.done, why=self.refused_why)}"

    def headline(self) -> str:
        """One line: the versions, the flip share, of how many scoreable rows, and the rows refused."""
        return f"{self.name} in {self.env}, {self.from_version} -> {self.to_version}: {self.flip_said()}"

    @property
    def rewrite(self) -> int | None:
        """Rows a backfill would rewrite, over every leaving version and every deployment of each
        (not only the rows re-scored here; None: no log)."""
        rows = [p.rows for p in self.parts if p.rows is not None]
        return sum(r.backfill for r in rows) if rows else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what a runbook records): versions, flip shares, verdict, slices, backfill rows."""
        main = self._main.to_dict() if self._main else {}
        return {
            "name": self.name,
            "env": self.env,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "n": self.n,
            "flip_share": self.flip_share,
            "total": self.total,
            "threshold": self.threshold,
            "score": self.score,
            "verdict": self.verdict,
            "adaptation": self.adaptation.to_dict(),
            "refused": self.refused,
            "by": self.by,
            "slices": main.get("slices", []),
            "changes": main.get("changes", []),
            "parts": [p.to_dict() for p in self.parts],
            "rewrite": self.rewrite,
            "refused_rows": self.refused_rows,
            "where": self.where,
            "done": self.done,
            "note": self.note,
            "loaded": self.loaded,
            "serves": self.serves,
            "from_versions": self.from_versions,
        }
