"""The Evaluate screen's out-of-scope threshold what-if (``assistant_builder.tui.threshold``) on
hand-made validation examples with known counts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assistant_builder.tui.threshold import ScoredExample, candidate_thresholds, format_threshold, step_threshold, what_if

OOS = "out_of_scope"


def example(text: str, gold: str, candidate: str, score: float) -> ScoredExample:
    return ScoredExample(text, gold, candidate, score, gold == OOS)


#: six in-scope examples (one the model gets wrong: "b") and three out-of-scope ones
EXAMPLES = [example("a", "alarm", "alarm", 9.0), example("b", "music", "alarm", 3.0), example("c", "weather", "weather", 8.0),
            example("d", "alarm", "alarm", 7.0), example("e", "music", "music", 2.0), example("f", "weather", "weather", 6.0),
            example("x", OOS, "alarm", 1.0), example("y", OOS, "music", 2.5), example("z", OOS, "weather", 6.5)]


def test_reject_nothing() -> None:
    result = what_if(EXAMPLES, None)
    assert (result.in_scope, result.out_of_scope, result.rejected, result.accepted_out_of_scope) == (6, 3, 0, 3)
    assert result.scores.in_scope_accuracy == pytest.approx(5 / 6) and result.scores.kept == 1.0
    assert result.scores.oos_recall == 0.0 and result.scores.oos_precision == 0.0 and result.scores.oos_f1 == 0.0
    assert [(r, e.text) for r, e in result.rows] == [(False, "z"), (False, "y"), (False, "x")]


def test_known_counts_at_a_threshold() -> None:
    result = what_if(EXAMPLES, 2.75)  # rejects x (1.0), e (2.0), y (2.5)
    assert (result.rejected, result.rejected_in_scope, result.rejected_out_of_scope, result.accepted_out_of_scope) == (3, 1, 2, 1)
    assert result.scores.kept == pytest.approx(5 / 6)
    assert result.scores.in_scope_accuracy == pytest.approx(4 / 6)  # b is wrong, e is rejected
    assert result.scores.oos_precision == pytest.approx(2 / 3) and result.scores.oos_recall == pytest.approx(2 / 3)
    assert result.scores.oos_f1 == pytest.approx(2 / 3)
    # the accepted out-of-scope example first, then the rejected ones, nearest the threshold first
    assert [(r, e.text) for r, e in result.rows] == [(False, "z"), (True, "y"), (True, "e"), (True, "x")]
    assert what_if(EXAMPLES, 6.5).rejected == 5  # a score equal to the threshold is kept (reject when score < threshold)


def test_stepping_through_the_scores() -> None:
    candidates = candidate_thresholds([e.score for e in EXAMPLES])
    assert candidates == [1.5, 2.25, 2.75, 4.5, 6.25, 6.75, 7.5, 8.5, 9.5]
    assert step_threshold(candidates, None, 1) == 1.5 and what_if(EXAMPLES, 1.5).rejected == 1
    assert step_threshold(candidates, 1.5, 1) == 2.25 and what_if(EXAMPLES, 2.25).rejected == 2
    assert step_threshold(candidates, 1.5, -1) is None
    assert step_threshold(candidates, 2.75, 10) == 9.5 and what_if(EXAMPLES, 9.5).rejected == 9  # clamped: everything
    assert step_threshold(candidates, 9.5, 1) == 9.5
    assert step_threshold(candidates, 2.25, -10) is None and step_threshold(candidates, None, -1) is None
    assert step_threshold(candidates, 4.0, 1) == 4.5 and step_threshold(candidates, 4.0, -1) == 2.75  # a recipe's threshold
    assert step_threshold(candidates, 4.5, 0) == 4.5
    assert candidate_thresholds([]) == [] and candidate_thresholds([3.0, 3.0]) == [3.5]


def test_format_threshold_keeps_the_decisions() -> None:
    scores = [e.score for e in EXAMPLES]
    assert format_threshold(2.75, scores) == "2.8"
    close = [1.0, 1.00002]
    text = format_threshold(1.00001, close)
    assert text == "1.00001" and [s < float(text) for s in close] == [True, False]


def test_the_what_if_module_imports_neither_textual_nor_torch() -> None:
    code = ("import sys, assistant_builder.tui.threshold, assistant_builder.tui.evaluation; "
            "print([m for m in ('textual', 'torch') if m in sys.modules])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
