"""The ``generation`` task's scores on hand-made examples, and the shared SQuAD answer scores."""

from __future__ import annotations

import math

import pytest

from assistant_builder.toolkit import answer_metrics as toolkit
from assistant_builder_tasks.generation.metrics import (
    MAX_PERPLEXITY, METRIC_NAMES, answer_metrics, loss_metrics, per_example_scores,
)


def test_metric_names() -> None:
    assert METRIC_NAMES == ("neg_loss", "loss", "perplexity", "exact_match", "token_f1", "rouge_l")


def test_loss_is_token_weighted() -> None:
    metrics = loss_metrics([2.0, 1.0], [1, 3])  # 3 nats over 4 tokens, not the mean of 2.0 and 1/3
    assert metrics["loss"] == pytest.approx(0.75)
    assert metrics["neg_loss"] == pytest.approx(-0.75)
    assert metrics["perplexity"] == pytest.approx(math.exp(0.75))


def test_perplexity_is_capped() -> None:
    assert loss_metrics([1e6], [1])["perplexity"] == MAX_PERPLEXITY
    assert loss_metrics([0.0], [5]) == {"neg_loss": 0.0, "loss": 0.0, "perplexity": 1.0}


@pytest.mark.parametrize(("sums", "counts", "expected"), [
    ([], [], "no target tokens"), ([1.0], [0], "no target tokens"), ([1.0, 2.0], [3], "one token count per NLL sum"),
])
def test_loss_errors(sums: list[float], counts: list[float], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        loss_metrics(sums, counts)


def test_answer_scores_by_hand() -> None:
    scores = per_example_scores(["Paris", "the cat sat on the mat", "Blue."], ["paris.", "the cat lay on the mat", "red"])
    assert scores[0] == {"exact_match": 1.0, "token_f1": 1.0, "rouge_l": 1.0}
    # SQuAD drops the articles: "cat sat on mat" vs "cat lay on mat", 3 of 4 words shared; ROUGE-L keeps them: LCS 5 of 6
    assert scores[1]["exact_match"] == 0.0
    assert scores[1]["token_f1"] == pytest.approx(0.75)
    assert scores[1]["rouge_l"] == pytest.approx(5 / 6)
    assert scores[2] == {"exact_match": 0.0, "token_f1": 0.0, "rouge_l": 0.0}


def test_answer_metrics_are_means_as_fractions() -> None:
    metrics = answer_metrics(["Paris", "the cat sat on the mat", "Blue."], ["paris.", "the cat lay on the mat", "red"])
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["token_f1"] == pytest.approx((1 + 0.75) / 3)
    assert metrics["rouge_l"] == pytest.approx((1 + 5 / 6) / 3)
    assert answer_metrics([], []) == {}
    with pytest.raises(ValueError, match="one reference per completion"):
        answer_metrics(["a"], [])


def test_squad_scores_live_in_the_toolkit_and_qa_reexports_them() -> None:
    from assistant_builder_tasks.qa import metrics as qa

    assert qa.normalize_answer is toolkit.normalize_answer
    assert qa.f1_score is toolkit.f1_score and qa.exact_match_score is toolkit.exact_match_score
    assert toolkit.normalize_answer("An  Apple, the PEAR!") == "apple pear"
    assert toolkit.exact_match_score("The Eiffel Tower.", "eiffel tower") == 1.0
    assert toolkit.f1_score("red red house", "red house") == pytest.approx(0.8)
    assert toolkit.f1_score("", "") == 0.0
