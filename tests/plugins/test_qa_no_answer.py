"""The qa task's no-answer threshold fitted on validation (no_answer.py, decoding.Candidates, QATask.fit_decision_rule)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from assistant_builder.registry import build_registry
from assistant_builder.tokenization import load_tokenizer
from assistant_builder_tasks.qa.data import Answer, QAExample
from assistant_builder_tasks.qa.decoding import Candidates, Span
from assistant_builder_tasks.qa.no_answer import best_null_threshold, fit_rule, null_threshold, threshold_sweep
from assistant_builder_tasks.qa.task import QAOptions

CONTEXT = "the alarm is at 7 am. the weather in london is cold."


def question(gold: str | None, span: str, difference: float) -> tuple[Candidates, QAExample]:
    """A validation question whose best span is ``span`` (scoring 10) and whose null score is ``10 + difference``."""
    start = CONTEXT.index(span)
    answers = () if gold is None else (Answer(gold, CONTEXT.index(gold)),)
    return Candidates((Span(start, start + len(span), 10.0),), 10.0 + difference), QAExample("q", CONTEXT, answers)


def rows(*questions: tuple[str | None, str, float]) -> tuple[list[Candidates], list[QAExample]]:
    made = [question(*q) for q in questions]
    return [c for c, _ in made], [e for _, e in made]


# null differences -3, 1, 2.5, 4, 6; span F1 1, 1, (no answer), 0.5, (no answer)
KNOWN = (("7 am", "7 am", -3.0), ("london", "london", 1.0), (None, "cold", 2.5), ("the weather", "weather in london", 4.0),
         (None, "alarm", 6.0))


def test_null_difference_is_what_the_decoder_compares_with_the_threshold():
    assert Candidates((Span(0, 3, 4.0), Span(4, 5, 1.0)), 6.5).null_difference == 2.5
    assert Candidates((), 6.5).null_difference == math.inf  # no span: the null answer whenever it is allowed


def test_the_sweep_scores_every_distinct_decision_and_the_best_threshold_is_halfway():
    differences = [-3.0, 1.0, 2.5, 4.0, 6.0]
    span_f1, null_f1 = [1.0, 1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0, 1.0]
    sweep = threshold_sweep(differences, span_f1, null_f1)
    assert [t for t, _ in sweep] == [-4.0, -1.0, 1.75, 3.25, 5.0, 7.0]  # one logit beyond the ends, else midpoints
    assert [f1 for _, f1 in sweep] == pytest.approx([0.4, 0.6, 0.8, 0.6, 0.5 + 0.2, 0.5])
    threshold = best_null_threshold(differences, span_f1, null_f1)
    assert threshold == 1.75 and threshold not in differences  # between 1.0 and 2.5, never on a validation score
    assert best_null_threshold(differences[::-1], span_f1[::-1], null_f1[::-1]) == 1.75  # order does not matter


def test_infinite_differences_keep_their_decision_and_the_ends_are_one_logit_out():
    # every answerable question is best answered: the threshold goes above the highest finite difference
    differences, span_f1, null_f1 = [-1.0, 0.5, math.inf], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    assert threshold_sweep(differences, span_f1, null_f1)[-1] == (1.5, 1.0)
    assert best_null_threshold(differences, span_f1, null_f1) == 1.5
    assert best_null_threshold([math.inf, math.inf], [0.0, 0.0], [1.0, 1.0]) is None  # nothing to choose


def test_ties_go_to_the_threshold_closest_to_zero_then_to_the_smaller():
    # golds: answer, no answer, answer, no answer; the 1st and 3rd spans are right
    span_f1, null_f1 = [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]
    assert best_null_threshold([-4.0, -2.0, 3.0, 5.0], span_f1, null_f1) == -3.0  # F1 0.75 at -3 and at 4: -3 is closer to 0
    assert best_null_threshold([-8.0, -6.0, 1.0, 3.0], span_f1, null_f1) == 2.0  # F1 0.75 at -7 and at 2: not the smallest
    assert best_null_threshold([-4.0, -2.0, 3.0, 5.0], span_f1, null_f1, prefer=10.0) == 4.0
    assert best_null_threshold([-4.0, -2.0, 2.0, 4.0], span_f1, null_f1) == -3.0  # -3 and 3 equally close: the smaller


def test_fit_rule_sets_the_threshold_and_reports_before_and_after():
    candidates, examples = rows(*KNOWN)
    options = QAOptions(allow_unanswerable=True)
    rule = fit_rule(candidates, examples, options)
    assert rule is not None and rule.options.null_threshold == 1.75 and options.null_threshold is None
    fit = rule.summary["no_answer"]
    assert fit["fitted"] and (fit["questions"], fit["has_answer"], fit["no_answer"]) == (5, 3, 2)
    assert fit["before"] == {"null_threshold": 0.0, "f1": 0.6, "has_ans_f1": pytest.approx(0.3333), "no_ans_accuracy": 1.0,
                             "answered_null": 4}
    assert fit["after"] == {"null_threshold": 1.75, "f1": 0.8, "has_ans_f1": 0.6667, "no_ans_accuracy": 1.0, "answered_null": 3}
    assert "## No-answer threshold" in rule.report and "**1.7500**" in rule.report and "| F1 | 0.6000 | 0.8000 |" in rule.report
    assert len(rule.warnings) == 1 and "only 2 validation questions without an answer" in rule.warnings[0]
    json.dumps(rule.summary)  # goes into metrics.json and summary.json


def test_without_unanswerable_validation_questions_the_threshold_is_kept_and_the_reason_shown():
    candidates, examples = rows(("7 am", "7 am", -3.0), ("london", "london", 1.0))
    options = QAOptions(allow_unanswerable=True)
    rule = fit_rule(candidates, examples, options)
    assert rule is not None and rule.options == options and null_threshold(rule.options) == 0.0
    assert rule.summary["no_answer"]["fitted"] is False
    (warning,) = rule.warnings
    assert "no questions without an answer (2 with an answer, 0 without)" in warning and "Not fitted" in rule.report
    candidates, examples = rows((None, "cold", 2.5))
    assert "no questions with an answer" in fit_rule(candidates, examples, options).warnings[0]


def test_no_fit_without_unanswerable_questions_on_or_with_a_threshold_set_in_the_recipe():
    candidates, examples = rows(*KNOWN)
    assert fit_rule(candidates, examples, QAOptions()) is None
    assert fit_rule(candidates, examples, QAOptions(allow_unanswerable=True, null_threshold=0.0)) is None
    assert fit_rule(candidates, examples, QAOptions(allow_unanswerable=True, null_threshold=-2.0)) is None


def test_the_task_fits_on_model_outputs_and_decode_then_applies_the_fitted_threshold(tiny_model_dir):
    task = build_registry().create("task", "qa")
    options = task.Options.model_validate({"allow_unanswerable": True})
    examples = [QAExample("when is the alarm", CONTEXT, (Answer("7 am", CONTEXT.index("7 am")),)),
                QAExample("who is at the door", CONTEXT, ())]
    features = task.encode(examples, load_tokenizer(tiny_model_dir, 64), [], options, 64)
    starts, ends = [], []
    for feature in features:
        offsets = feature["offsets"]
        start, end = np.zeros(len(offsets)), np.zeros(len(offsets))
        seven = next(i for i, o in enumerate(offsets) if o is not None and CONTEXT[o[0]:o[1]] == "7")
        start[seven], end[seven + 1] = 3.0, 3.0  # best span "7 am", score 6
        start[0] = end[0] = 3.25 if feature["example_index"] == 0 else 3.5  # null score 6.5 (answerable) / 7 (not)
        starts.append(start), ends.append(end)
    outputs = {"start_logits": starts, "end_logits": ends}
    assert [p["answer"] for p in task.decode(outputs, features, examples, [], options)] == ["", ""]  # 0: both null
    rule = task.fit_decision_rule(outputs, features, examples, [], options)
    assert rule.options.null_threshold == pytest.approx(0.75)  # halfway between the differences 0.5 and 1.0
    predictions = task.decode(outputs, features, examples, [], rule.options)
    assert [p["answer"] for p in predictions] == ["7 am", ""]
    metrics = task.evaluate(predictions, examples, []).metrics
    assert metrics["f1"] == rule.summary["no_answer"]["after"]["f1"] == 1.0 and rule.summary["no_answer"]["before"]["f1"] == 0.5
    restored = task.Options.model_validate(json.loads(json.dumps(rule.options.model_dump(mode="json"))))
    assert task.decode(outputs, features, examples, [], restored) == predictions  # as task_options.json / a bundle holds it
    assert task.fit_decision_rule(outputs, features, examples, [], restored) is None  # a value in the options is kept


def test_options_from_before_the_fit_decode_as_before(tiny_model_dir):
    task = build_registry().create("task", "qa")
    example = task.parse_input({"question": "who", "context": CONTEXT})
    (feature,) = task.encode([example], load_tokenizer(tiny_model_dir, 64), [], QAOptions(), 64)
    first = next(i for i, o in enumerate(feature["offsets"]) if o is not None)
    start, end = np.zeros(len(feature["offsets"])), np.zeros(len(feature["offsets"]))
    start[0] = end[0] = 3.0
    start[first] = end[first] = 2.9  # null beats the span by 0.2
    outputs = {"start_logits": [start], "end_logits": [end]}
    old = task.Options.model_validate({"allow_unanswerable": True, "stride": 128, "n_best": 20, "max_answer_length": 30,
                                       "null_threshold": 0.0})  # a bundle's task_options from before this change
    unset = task.Options.model_validate({"allow_unanswerable": True})
    assert task.decode(outputs, [feature], [example], [], old) == task.decode(outputs, [feature], [example], [], unset)
    assert task.decode(outputs, [feature], [example], [], old)[0]["answer"] == ""
