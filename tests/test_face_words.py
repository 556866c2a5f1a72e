"""What a new user reads: a gates.yaml refusal names the fix for what is wrong (the list of gate
kinds only when the kind is wrong), a ``.nan`` reads as words, not a pydantic path."""

from __future__ import annotations

import pytest

from rollbackkit.analysis.gatespec import GATE_KINDS, parse_gates
from rollbackkit.errors import InvalidInput

KIND_WRONG = [
    "gates:\n  - name: lat\n    kind: latncy\n    max_ms: 5\n",
    "gates:\n  - name: lat\n    max_ms: 5\n",
]
KIND_RIGHT = [
    (
        "gates:\n  - name: e\n    kind: error_rate\n    max: 0.1\n    failure_limit: 0\n",
        "line 5: gate 'e': failure_limit",
    ),
    ("gates:\n  - name: e\n    kind: error_rate\n    max: -0.1\n", "line 4: gate 'e': max must be"),
    ("gates:\n  - name: l\n    kind: latency\n    max_ms: 5\n    quantil: p99\n", "unknown key 'quantil'"),
]


@pytest.mark.parametrize("text", KIND_WRONG)
def test_a_wrong_or_missing_kind_lists_the_valid_kinds(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_gates(text)
    assert refused.value.hint.startswith(f"Valid gate kinds: {', '.join(GATE_KINDS)}")


@pytest.mark.parametrize(("text", "said"), KIND_RIGHT)
def test_a_valid_kind_with_a_bad_value_does_not_list_the_kinds(text: str, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_gates(text)
    assert said in refused.value.message
    assert "Valid gate kinds" not in refused.value.hint and "latency, error_rate" not in refused.value.hint


def test_a_nan_threshold_reads_as_words_not_a_pydantic_path() -> None:
    text = "gates:\n  - name: e\n    kind: error_rate\n    compare: live\n    max_increase: .nan\n"
    with pytest.raises(InvalidInput) as refused:
        parse_gates(text)
    assert refused.value.message == "gates.yaml line 5: gate 'e': max_increase must be a finite number, got nan."
    assert "gates.error_rate" not in refused.value.message


def test_the_labels_summary_says_one_row_and_one_line_in_the_singular() -> None:
    from rollbackkit.ops.label_results import LabelIngest
    from rollbackkit.screens.labels import lines

    def said(**counts: int) -> str:
        result = LabelIngest("iris", "prod", "request_id", received=4, stored=2, unknown=0, **counts)
        return "\n".join(line.plain for line in lines(result))

    one = said(replaced=1, missing=1, duplicates=1, rows_labelled=1, max_rows_per_key=0)
    assert "  1 row had a label: the new one wins" in one and "  1 line without a label skipped" in one, one
    assert "  1 line overridden by a later line" in one and "  1 logged row is labelled now" in one, one
    many = said(replaced=2, missing=3, duplicates=2, rows_labelled=1200)
    assert "  2 rows had a label" in many and "  3 lines without a label skipped" in many, many
    assert "  1,200 logged rows are labelled now" in many, many
