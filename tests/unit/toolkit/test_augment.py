"""toolkit.augment: seeded, type-preserving augmentation building blocks."""

from __future__ import annotations

import random

import pytest

from assistant_builder.toolkit.augment import (augment_words, mention_pool, random_deletion, random_swap, replace_mentions,
                                               replace_tokens, span_mask, token_pool)
from assistant_builder.toolkit.tags import is_valid, spans_from_tags

SENTENCES = [
    (["fly", "to", "new", "york", "on", "monday"], ["O", "O", "B-city", "I-city", "O", "B-day"]),
    (["book", "paris", "for", "friday"], ["O", "B-city", "O", "B-day"]),
    (["rome", "then", "los", "angeles"], ["B-city", "O", "B-city", "I-city"]),
]


def test_mention_pool_groups_distinct_mentions_by_type():
    pool = mention_pool(SENTENCES)
    assert pool == {"city": [("new", "york"), ("paris",), ("rome",), ("los", "angeles")], "day": [("monday",), ("friday",)]}


def test_mention_replacement_keeps_types_and_valid_tags_for_any_seed():
    pool = mention_pool(SENTENCES)
    for seed in range(50):
        for tokens, tags in SENTENCES:
            new_tokens, new_tags = replace_mentions(tokens, tags, pool, 1.0, random.Random(seed))
            assert len(new_tokens) == len(new_tags) and is_valid(new_tags)
            assert [t for _, _, t in spans_from_tags(new_tags)] == [t for _, _, t in spans_from_tags(tags)]
            for start, end, entity_type in spans_from_tags(new_tags):
                assert tuple(new_tokens[start:end]) in pool[entity_type]
            # probability 1 and other mentions available: every mention changed
            old = [tuple(tokens[s:e]) for s, e, _ in spans_from_tags(tags)]
            new = [tuple(new_tokens[s:e]) for s, e, _ in spans_from_tags(new_tags)]
            assert all(a != b for a, b in zip(old, new))


def test_words_outside_entities_are_kept():
    tokens, tags = SENTENCES[0]
    new_tokens, new_tags = replace_mentions(tokens, tags, mention_pool(SENTENCES), 1.0, random.Random(3))
    assert [w for w, t in zip(new_tokens, new_tags) if t == "O"] == ["fly", "to", "on"]


def test_probability_zero_changes_nothing():
    tokens, tags = SENTENCES[0]
    assert replace_mentions(tokens, tags, mention_pool(SENTENCES), 0.0, random.Random(0)) == (tokens, tags)
    assert replace_tokens(tokens, tags, token_pool(SENTENCES), 0.0, random.Random(0)) == tokens


def test_label_wise_token_replacement_draws_words_seen_with_the_same_tag():
    pool = token_pool(SENTENCES)
    tokens, tags = SENTENCES[0]
    new = replace_tokens(tokens, tags, pool, 1.0, random.Random(1))
    assert len(new) == len(tokens)
    for word, tag in zip(new, tags):
        assert word in pool[tag]
    assert new[2] in ("paris", "rome", "los")  # B-city words


def test_same_seed_same_result():
    pool = mention_pool(SENTENCES)
    tokens, tags = SENTENCES[0]
    first = [replace_mentions(tokens, tags, pool, 0.5, random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    words = "please set an alarm for seven in the morning".split()
    ops = ["deletion", "swap", "span_mask"]
    assert augment_words(words, ops, 0.3, random.Random(5)) == augment_words(words, ops, 0.3, random.Random(5))


def test_deletion_keeps_at_least_one_word():
    for seed in range(20):
        assert len(random_deletion(["a", "b", "c"], 1.0, random.Random(seed))) == 1
    assert random_deletion(["a", "b", "c"], 0.0, random.Random(0)) == ["a", "b", "c"]


def test_swap_is_a_permutation():
    words = "one two three four five".split()
    swapped = random_swap(words, 0.4, random.Random(2))
    assert sorted(swapped) == sorted(words)
    assert random_swap(["alone"], 1.0, random.Random(0)) == ["alone"]


def test_span_mask_replaces_one_span():
    words = "one two three four five six".split()
    masked = span_mask(words, 0.5, random.Random(4), "[MASK]", max_span=2)
    positions = [i for i, w in enumerate(masked) if w == "[MASK]"]
    assert 1 <= len(positions) <= 2 and positions == list(range(positions[0], positions[-1] + 1))
    assert [w for w in masked if w != "[MASK]"] == [w for i, w in enumerate(words) if i not in positions]


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        random_deletion(["a"], 1.5, random.Random(0))
    with pytest.raises(ValueError, match="operations among deletion, swap, span_mask"):
        augment_words(["a", "b"], ["shuffle"], 0.1, random.Random(0))
