"""What a registered version is, as the bundle layer sees it: its name, version, id and origin."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rollbackkit.bundle.manifest import RawInputs
from rollbackkit.cards import Card, HasCard


@dataclass(frozen=True)
class VersionInfo(HasCard):
    """One registered version, as its tag records it.

    The registry reads it from the version's tag (:func:`rollbackkit.registry.tags.version_from_tag`);
    a loaded bundle carries it so that rows it logs and errors it raises name the version.
    """

    name: str
    version: str
    bundle_id: str
    created: str
    commit: str
    tag: str
    author: str = ""
    message: str = ""
    recorded_commit: str = field(default="", repr=False)  # the commit the tag message names
    raw_inputs: RawInputs | None = field(default=None, repr=False)  # set on what register returns
    notes: tuple[str, ...] = field(default=(), repr=False)
    """What register wants the user to know (e.g. a categorical input its default gates do not slice); only on
    what register returns."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (``raw_inputs`` and ``notes`` only when set: register's result)."""
        skip = ("recorded_commit", "raw_inputs", "notes")
        data: dict[str, object] = {k: v for k, v in asdict(self).items() if k not in skip}
        if self.raw_inputs is not None:
            data["raw_inputs"] = self.raw_inputs.to_dict()
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    def card(self) -> Card:
        """Its card: tag, id, creation, author, message, commit (``_repr_html_``/``_repr_pretty_``)."""
        from rollbackkit.bundle.card_views import version_card

        return version_card(self)
