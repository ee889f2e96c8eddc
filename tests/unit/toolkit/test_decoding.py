"""``assistant_builder.toolkit.decoding``: softmax, per-word probabilities, argmax / best-path decoding, entities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant_builder.toolkit.decoding import (argmax_tags, best_path_tags, bio_viterbi, decode_word_tags, softmax, tag_entities,
                                                word_probabilities)
from assistant_builder.toolkit.tags import is_valid, repair, tag_list

LABELS = tag_list(["x", "y"])  # O, B-x, I-x, B-y, I-y
rows = st.lists(st.lists(st.floats(-6, 6), min_size=len(LABELS), max_size=len(LABELS)), min_size=0, max_size=7)


def probabilities_of(logits: list[list[float]]) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64).reshape(-1, len(LABELS)))


def path_score(log_probabilities: np.ndarray, path: list[int]) -> float:
    return float(sum(log_probabilities[w, c] for w, c in enumerate(path)))


def test_softmax_is_stable_and_sums_to_one():
    values = softmax(np.array([[1000.0, 1000.0], [0.0, math.log(3)]]))
    assert np.allclose(values, [[0.5, 0.5], [0.25, 0.75]])
    assert np.allclose(softmax(np.array([1.0, 2.0, 3.0])).sum(), 1.0)


def test_word_probabilities_take_each_words_row_and_default_to_outside():
    logits = np.zeros((5, len(LABELS)))
    logits[2, 1] = 10.0
    logits[4, 3] = 10.0
    probabilities = word_probabilities(4, LABELS, [([(0, 2), (2, 4)], logits), ([], logits)])
    assert probabilities.shape == (4, len(LABELS)) and probabilities.dtype == np.float64
    assert probabilities[0].argmax() == 1 and probabilities[2].argmax() == 3
    assert probabilities[1].tolist() == [1.0, 0, 0, 0, 0] and probabilities[3].tolist() == [1.0, 0, 0, 0, 0]


def test_the_best_path_fixes_what_argmax_gets_wrong():
    # word 1 argmax is I-y after B-x: invalid. The best valid path keeps the entity and relabels
    # the weaker word instead of breaking the entity in two (what repair does).
    probabilities = np.array([[0.05, 0.9, 0.02, 0.02, 0.01],
                              [0.05, 0.02, 0.43, 0.05, 0.45]])
    argmax, _ = argmax_tags(probabilities, LABELS)
    assert argmax == ["B-x", "I-y"] and repair(argmax) == ["B-x", "B-y"]
    tags, scores = best_path_tags(probabilities, LABELS)
    assert tags == ["B-x", "I-x"] and scores == [0.9, 0.43]
    assert decode_word_tags(probabilities, LABELS, "best_path") == (tags, scores)
    assert decode_word_tags(probabilities, LABELS, "argmax") == (["B-x", "B-y"], [0.9, 0.45])
    with pytest.raises(ValueError, match="decoding method"):
        decode_word_tags(probabilities, LABELS, "beam")


def test_a_sentence_may_not_start_inside_an_entity():
    probabilities = np.array([[0.1, 0.2, 0.7, 0.0, 0.0]])
    assert best_path_tags(probabilities, LABELS)[0] == ["B-x"]
    assert bio_viterbi(np.log(np.full((0, len(LABELS)), 0.2)), LABELS) == []


@settings(max_examples=200, deadline=None)
@given(rows)
def test_best_path_is_always_valid_and_equals_argmax_when_argmax_is_valid(logits):
    probabilities = probabilities_of(logits)
    tags, scores = best_path_tags(probabilities, LABELS)
    assert len(tags) == len(probabilities) and is_valid(tags)
    assert scores == [float(probabilities[w, LABELS.index(t)]) for w, t in enumerate(tags)]
    argmax = argmax_tags(probabilities, LABELS)
    if is_valid(argmax[0]):
        assert (tags, scores) == argmax


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-6, 6), min_size=len(LABELS), max_size=len(LABELS)), min_size=1, max_size=4))
def test_viterbi_finds_the_best_valid_sequence(logits):
    log_probabilities = np.log(probabilities_of(logits))
    path = bio_viterbi(log_probabilities, LABELS)
    assert is_valid([LABELS[i] for i in path])
    best = max(path_score(log_probabilities, list(candidate)) for candidate in itertools.product(range(len(LABELS)), repeat=len(logits))
               if is_valid([LABELS[i] for i in candidate]))
    assert path_score(log_probabilities, path) == pytest.approx(best)
    # never worse than repairing the argmax sequence
    repaired = [LABELS.index(t) for t in repair(argmax_tags(np.exp(log_probabilities), LABELS)[0])]
    assert path_score(log_probabilities, path) >= path_score(log_probabilities, repaired) - 1e-9


def test_viterbi_needs_iob2_classes():
    with pytest.raises(ValueError, match="expected IOB2 classes"):
        bio_viterbi(np.zeros((1, 2)), ["O", "S-x"])
    with pytest.raises(ValueError, match="no valid IOB2 sequence"):
        bio_viterbi(np.zeros((1, 1)), ["I-x"])


def test_entities_are_character_spans_with_the_mean_score():
    text = "Call Dr. O'Neil now"
    offsets = [(0, 4), (5, 7), (7, 8), (9, 10), (10, 11), (11, 15), (16, 19)]
    tags = ["O", "B-per", "I-per", "I-per", "I-per", "I-per", "B-time"]
    scores = [1.0, 0.5, 0.7, 0.9, 0.9, 1.0, 0.25]
    assert tag_entities(tags, scores, text, offsets) == [
        {"label": "per", "start": 5, "end": 15, "text": "Dr. O'Neil", "score": pytest.approx(0.8)},
        {"label": "time", "start": 16, "end": 19, "text": "now", "score": 0.25}]
    assert tag_entities(["O"], [1.0], "hi", [(0, 2)]) == []
