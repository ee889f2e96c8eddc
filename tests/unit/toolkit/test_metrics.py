"""``assistant_builder.toolkit.metrics``: entity scores (seqeval strict), span errors, classification scores."""

from __future__ import annotations

import pytest

from assistant_builder.toolkit.metrics import (ERROR_KINDS, classification_scores, count_span_errors, entity_scores, markdown_cell,
                                               span_errors, token_accuracy)


def test_entity_scores_are_strict_and_list_every_type():
    gold = [["B-per", "I-per", "O", "B-loc"], ["B-time", "O"]]
    predicted = [["B-per", "O", "O", "B-loc"], ["I-time", "O"]]  # strict IOB2: an entity starting with I- is no entity
    micro, per_type = entity_scores(gold, predicted, ["per", "loc", "time", "date"])
    # predicted entities: "per" (wrong boundary) and "loc" (right); gold: 3
    assert micro == {"precision": 0.5, "recall": pytest.approx(1 / 3), "f1": pytest.approx(0.4)}
    assert per_type["loc"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per_type["per"]["recall"] == 0.0 and per_type["date"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert entity_scores([["O"]], [["O"]], ["x"]) == ({"precision": 0.0, "recall": 0.0, "f1": 0.0},
                                                     {"x": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}})


def test_token_accuracy():
    assert token_accuracy([["O", "B-x"], ["O"]], [["O", "O"], ["O"]]) == pytest.approx(2 / 3)
    assert token_accuracy([], []) == 0.0


def test_span_error_categories():
    gold = [(0, 2, "per"), (3, 4, "loc"), (5, 7, "time"), (8, 9, "per")]
    predicted = [(0, 2, "per"), (3, 4, "per"), (5, 6, "time"), (10, 11, "loc")]
    errors = span_errors(gold, predicted)
    assert errors == [("wrong type", (3, 4, "loc"), (3, 4, "per")), ("wrong boundary", (5, 7, "time"), (5, 6, "time")),
                      ("missed", (8, 9, "per"), None), ("spurious", None, (10, 11, "loc"))]
    assert count_span_errors([kind for kind, _, _ in errors]) == dict.fromkeys(ERROR_KINDS, 1)
    assert span_errors(gold, gold) == [] and count_span_errors([]) == dict.fromkeys(ERROR_KINDS, 0)


def test_classification_scores():
    gold = ["a", "a", "b", "b", "unseen"]
    predicted = ["a", "b", "b", "b", "a"]
    scores = classification_scores(gold, predicted, ["a", "b", "c"])
    assert scores.accuracy == pytest.approx(3 / 5)
    assert scores.per_label["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert scores.per_label["b"]["precision"] == pytest.approx(2 / 3) and scores.per_label["b"]["recall"] == 1.0
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)  # over every label of the list
    assert scores.present_macro_f1 == pytest.approx((0.5 + 0.8) / 2)  # over labels that occur
    assert scores.confusion_matrix == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert scores.weighted_f1 == pytest.approx((0.5 * 2 + 0.8 * 2) / 4)


def test_markdown_cell():
    assert markdown_cell("a | b", 3) == "a \\|"
