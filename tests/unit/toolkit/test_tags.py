"""``assistant_builder.toolkit.tags``: schemes, conversion both ways, validation, repair, spans."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant_builder.toolkit.tags import (SCHEMES, TagError, detect_scheme, from_iob2, invalid_positions, is_valid, repair,
                                            spans_from_tags, split_tag, tag_list, tag_problem, tag_types, tags_from_spans,
                                            to_iob2, types_in)

iob2_tags = st.lists(st.sampled_from(["O", "B-x", "I-x", "B-y", "I-y"]), max_size=12)


def test_split_tag_accepts_every_schemes_prefixes_and_names_a_bad_tag():
    assert split_tag("B-PER") == ("B", "PER") and split_tag("S-x-y") == ("S", "x-y") and split_tag("O") == ("O", "")
    for bad in ("PER", "I-", "X-PER", "", "o"):
        with pytest.raises(ValueError, match=f"got '{bad}'"):
            split_tag(bad)


def test_tag_problem_is_scheme_aware():
    assert tag_problem("E-x") is None and tag_problem("E-x", "bioes") is None
    assert tag_problem("E-x", "iob2") == "tag 'E-x' is not valid in the IOB2 scheme"
    assert tag_problem("PER", "iob2") == "expected 'O', 'B-TYPE' or 'I-TYPE' (IOB2), got 'PER'"
    assert "BIOES: also" in tag_problem("PER")


def test_scheme_detection():
    assert detect_scheme([["B-x", "I-x", "O"], ["O", "B-y"]]) == "iob2"
    assert detect_scheme([["I-x", "I-x", "B-x", "O", "I-y"]]) == "iob1"
    assert detect_scheme([["S-x", "O", "B-y", "E-y"]]) == "bioes"
    assert detect_scheme([]) == "iob2"


def test_conversion_to_iob2_reports_invalid_positions_and_bad_tags():
    assert to_iob2(["I-x", "I-x", "B-x", "O", "I-y", "B-y"], "iob1") == (["B-x", "I-x", "B-x", "O", "B-y", "B-y"], [])
    assert to_iob2(["S-x", "B-y", "I-y", "E-y", "O", "S-y", "S-y"], "bioes") == (["B-x", "B-y", "I-y", "I-y", "O", "B-y", "B-y"], [])
    assert to_iob2(["O", "I-x", "B-y", "I-x"], "iob2") == (["O", "B-x", "B-y", "B-x"], [1, 3])
    assert to_iob2(["O", "E-x"], "bioes") == (["O", "B-x"], [1])  # an entity ending where none began
    with pytest.raises(TagError) as error:
        to_iob2(["O", "S-x"], "iob2")
    assert error.value.position == 1 and "not valid in the IOB2 scheme" in error.value.reason and str(error.value).startswith("word 2:")
    with pytest.raises(ValueError, match="tag scheme"):
        to_iob2(["O"], "bilou")


def test_from_iob2_writes_each_scheme():
    tags = ["B-x", "I-x", "I-x", "O", "B-y", "B-y", "I-y", "I-z"]
    assert from_iob2(tags, "bioes") == ["B-x", "I-x", "E-x", "O", "S-y", "B-y", "E-y", "S-z"]
    assert from_iob2(tags, "iob1") == ["I-x", "I-x", "I-x", "O", "I-y", "B-y", "I-y", "I-z"]
    assert from_iob2(tags, "iob2") == repair(tags)


@given(iob2_tags, st.sampled_from(SCHEMES))
def test_from_iob2_round_trips_through_to_iob2(tags, scheme):
    written = from_iob2(tags, scheme)
    assert all(tag_problem(t, scheme) is None for t in written)
    assert to_iob2(written, scheme) == (repair(tags), [])
    if types_in(tags):  # a sequence with entities shows its scheme
        assert detect_scheme([written]) == scheme


@given(iob2_tags)
def test_repair_makes_any_sequence_valid_and_keeps_its_spans(tags):
    repaired = repair(tags)
    assert is_valid(repaired) and not invalid_positions(repaired)
    assert spans_from_tags(repaired) == spans_from_tags(tags)
    assert repair(repaired) == repaired
    assert [t[2:] for t in repaired] == [t[2:] for t in tags]  # only prefixes change


def test_repair_invalid_positions_and_validity():
    tags = ["I-x", "I-x", "O", "I-y", "B-x", "I-y"]
    assert invalid_positions(tags) == [0, 3, 5]
    assert repair(tags) == ["B-x", "I-x", "O", "B-y", "B-x", "B-y"]
    assert not is_valid(tags) and is_valid(repair(tags)) and not is_valid(["B-x", "E-x"])


def test_spans_and_tags_from_spans():
    assert spans_from_tags(["B-x", "I-x", "O", "B-y", "B-y", "I-y"]) == [(0, 2, "x"), (3, 4, "y"), (4, 6, "y")]
    assert spans_from_tags([]) == []
    assert tags_from_spans([(3, 4, "y"), (0, 2, "x"), (4, 6, "y")], 6) == ["B-x", "I-x", "O", "B-y", "B-y", "I-y"]
    with pytest.raises(ValueError, match="overlaps"):
        tags_from_spans([(0, 2, "x"), (1, 3, "y")], 4)
    with pytest.raises(ValueError, match="0 <= start < end <= 3"):
        tags_from_spans([(2, 2, "x")], 3)


def test_every_valid_iob2_sequence_is_the_tags_of_its_spans():
    for tags in itertools.product(["O", "B-x", "I-x", "B-y"], repeat=4):
        if is_valid(tags):
            assert tags_from_spans(spans_from_tags(tags), 4) == list(tags)


def test_tag_lists_and_types():
    assert tag_list(["time", "per"]) == ["O", "B-time", "I-time", "B-per", "I-per"]
    assert tag_types(tag_list(["time", "per"])) == ["time", "per"]
    assert types_in(["O", "B-a", "I-a", "S-b", "E-c"]) == {"a", "b", "c"}
