"""One palette for versions and states, in cards and figures: every colour lives in rollbackkit/cards.py.

The timeline once picked its version colours (red and green among them, read as a failure and a
pass) and drew its "now" line near-black on a white label, invisible on a dark theme; now versions
take the cards' :data:`~rollbackkit.cards.VERSIONS` (no state's colour) and "now" the live tone.
"""

from __future__ import annotations

import re
from pathlib import Path

from rollbackkit import cards
from rollbackkit.widgets.timeline_figure import timeline_figure
from tests.timeline_hosts import fake_timeline

PACKAGE = Path(__file__).resolve().parents[1] / "rollbackkit"
HEX = re.compile(r"[\"']#[0-9a-fA-F]{6}[\"']")


def test_every_colour_literal_of_the_package_lives_in_the_cards_palette() -> None:
    found = {
        str(path.relative_to(PACKAGE)): HEX.findall(path.read_text())
        for path in PACKAGE.rglob("*.py")
        if path.name != "cards.py"
    }
    assert {path: colours for path, colours in found.items() if colours} == {}


def test_the_timeline_draws_versions_states_and_now_in_the_cards_palette() -> None:
    states = {cards.PASS, cards.FAIL, cards.WARN, cards.QUIET}
    assert not states & set(cards.VERSIONS) and len(set(cards.VERSIONS)) == len(cards.VERSIONS)
    figure = timeline_figure(fake_timeline(versions=20, changes=200, shadows=20))
    bands = [d.line.color for d in figure.data if d.stackgroup == "traffic"]
    assert bands[:-1] == list(cards.VERSIONS[: len(bands) - 1]) and bands[-1] == cards.FOLDED
    markers = {d.marker.color for d in figure.data if d.mode == "markers"}
    assert markers <= {cards.ACCENT, cards.PASS, cards.FAIL, cards.WARN, cards.SECOND, cards.MUTED}
    (now,) = [s for s in figure.layout.shapes if s.line.dash == "dash"]
    assert now.line.color == cards.NOW == cards.PASS  # the tone of a "live" badge
    label = next(a for a in figure.layout.annotations if a.text.startswith("now:"))
    assert label.bgcolor == cards.rgba(cards.NOW, 0.18)  # translucent: readable on light and dark themes
    assert all("255,255,255" not in str(a.bgcolor) for a in figure.layout.annotations)
