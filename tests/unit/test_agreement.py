"""Export agreement in each task's unit: examples, entities, answer tokens."""

from __future__ import annotations

import pytest

from assistant_builder.toolkit.agreement import example_agreement, overlap_agreement, unit_agreement
from assistant_builder_tasks.classification.task import ClassificationTask
from assistant_builder_tasks.ner.task import NerTask
from assistant_builder_tasks.qa.task import QATask


def test_example_agreement_counts_equal_keys() -> None:
    assert example_agreement(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 0.75
    assert example_agreement([], []) == 1.0
    with pytest.raises(ValueError, match="as many predictions"):
        example_agreement(["a"], [])


def test_unit_agreement_is_micro_dice_over_multisets() -> None:
    # 3 shared of 4 + 3 units, an empty pair adds nothing
    assert unit_agreement([{1, 2}, set(), {3, 4}], [{1, 2}, set(), {3}]) == pytest.approx(2 * 3 / 7)
    assert unit_agreement([[("x", 1), ("x", 1)]], [[("x", 1)]]) == pytest.approx(2 / 3)  # multiset, not set
    assert unit_agreement([set(), set()], [set(), set()]) == 1.0
    assert unit_agreement([{1}], [{2}]) == 0.0


def test_overlap_agreement_averages_scores() -> None:
    assert overlap_agreement(["a", "b"], ["a", "c"], lambda x, y: float(x == y)) == 0.5
    assert overlap_agreement([], [], lambda x, y: 0.0) == 1.0


def entity(start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label, "text": "", "score": 1.0}


def test_ner_agreement_counts_entities_not_sentences() -> None:
    """Twenty sentences of five entities; one entity differs in each of two sentences: 90% of the
    sentences agree but 98% of the entities do."""
    reference = [{"entities": [entity(i * 10, i * 10 + 5, "loc") for i in range(5)], "tags": []} for _ in range(20)]
    exported = [dict(p, entities=list(p["entities"])) for p in reference]
    exported[3]["entities"][0] = entity(0, 5, "per")
    exported[7]["entities"] = exported[7]["entities"][1:]
    agreement = NerTask().agreement(exported, reference)
    assert agreement.unit == "entities"
    assert agreement.examples == pytest.approx(18 / 20)
    assert agreement.value == pytest.approx(2 * 98 / (99 + 100))
    assert agreement.value >= NerTask.min_agreement > agreement.examples


def test_qa_agreement_gives_credit_for_overlapping_answers() -> None:
    reference = [{"answer": "at nine in the morning", "score": 1.0}, {"answer": "Oslo", "score": 1.0}, {"answer": "", "score": 0.0}]
    exported = [{"answer": "nine in the morning", "score": 1.0}, {"answer": "Oslo", "score": 1.0}, {"answer": "", "score": 0.0}]
    agreement = QATask().agreement(exported, reference)
    assert agreement.unit == "answer tokens" and agreement.examples == pytest.approx(2 / 3)
    assert agreement.value == pytest.approx((2 * 3 / 7 + 1 + 1) / 3)  # tokens "nine morning" vs "at nine morning"


def test_classification_agreement_is_per_example() -> None:
    reference = [{"label": "a", "score": 0.9}, {"label": "b", "score": 0.8}]
    exported = [{"label": "a", "score": 0.7}, {"label": "a", "score": 0.6}]
    agreement = ClassificationTask().agreement(exported, reference)
    assert (agreement.value, agreement.unit, agreement.examples) == (0.5, "examples", 0.5)
