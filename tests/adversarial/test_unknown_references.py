"""References to what does not exist: one line each, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_journal_whole, assert_one_clean_line, rollbackkit, state


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (("show", "nope@v1.0.0"), "nope"),
        (("show", "cancer@v9.9.9"), "v9.9.9"),
        (("resolve", "cancer#nowhere"), "nowhere"),
        (("restore", "cancer@v9.9.9"), "v9.9.9"),
        (("diff", "cancer@v1.0.0", "cancer@v9.9.9"), "v9.9.9"),
        (("parity", "cancer@v9.9.9"), "v9.9.9"),
    ],
)
def test_an_unknown_version_is_one_line_and_changes_nothing(
    two_versions: Path, args: tuple[str, ...], mention: str
) -> None:
    before = state(two_versions)
    assert_one_clean_line(rollbackkit(*args, cwd=two_versions), mention)
    assert state(two_versions) == before
    assert_journal_whole(two_versions)
