"""The shared terminal helper (tests/terminal.py) measures what a user's terminal shows."""

from __future__ import annotations

from pathlib import Path

from .terminal import screen


def test_the_cli_sees_the_pseudo_terminal_width(tmp_path: Path) -> None:
    narrow = screen("--help", cwd=tmp_path, columns=60, lines=100)
    assert narrow.returncode == 0 and narrow.fits() and 55 <= narrow.widest() <= 60, narrow
    assert narrow.whole("Usage: rollbackkit [OPTIONS] COMMAND [ARGS]..."), narrow
    assert not narrow.fits(lines=10) and narrow.no_color(), narrow
    coloured = screen("--help", cwd=tmp_path, color=True)
    assert not coloured.no_color() and "\x1b" not in coloured.stdout, coloured
