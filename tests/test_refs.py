"""Names, versions and references follow GTO's rules; ordering follows semver."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollbackkit.errors import InvalidName
from rollbackkit.refs import Reference, Version, validate_name

GTO_NAME = re.compile(r"^[a-z0-9]([a-z0-9-/]*[a-z0-9])?$")
numbers = st.integers(min_value=0, max_value=10_000)


@given(numbers, numbers, numbers)
def test_versions_round_trip(major: int, minor: int, patch: int) -> None:
    text = f"v{major}.{minor}.{patch}"
    assert str(Version.parse(text)) == text


@given(st.tuples(numbers, numbers, numbers), st.tuples(numbers, numbers, numbers))
def test_version_order_is_numeric_not_lexical(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    assert (Version(*a) < Version(*b)) == (a < b)


def test_a_prerelease_sorts_before_its_release() -> None:
    assert Version.parse("v1.0.0-rc.1") < Version.parse("v1.0.0-rc.2") < Version.parse("v1.0.0")
    assert Version.parse("v1.0.0-alpha") < Version.parse("v1.0.0-beta")


@given(st.text(alphabet="abcz09-/._ AZ", max_size=12))
def test_every_accepted_name_is_also_valid_for_gto(name: str) -> None:
    try:
        validate_name(name)
    except InvalidName:
        return
    assert GTO_NAME.match(name) and "/" not in name and ".." not in name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn@v1.2.3", Reference("churn", version="v1.2.3")),
        ("churn@latest", Reference("churn", latest=True)),
        ("churn", Reference("churn", latest=True)),
        ("churn#prod", Reference("churn", env="prod")),
    ],
)
def test_references_parse(text: str, expected: Reference) -> None:
    assert Reference.parse(text) == expected
