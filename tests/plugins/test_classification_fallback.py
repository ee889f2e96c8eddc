"""The classification task's fallback label: decisions, label checks, evaluation (fallback.py, data.py, metrics.py)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant_builder.errors import DataError
from assistant_builder_tasks.classification.data import TextExample, check_labels
from assistant_builder_tasks.classification.fallback import decide, fit_rule
from assistant_builder_tasks.classification.task import ClassificationOptions, ClassificationTask

LABELS = ["alarm", "music", "weather"]


def options(**values):
    return ClassificationOptions.model_validate(values)


def test_without_a_fallback_predictions_are_as_before() -> None:
    logits = np.array([[3.0, 1.0, 0.0]])
    [prediction] = decide(logits, LABELS, options())
    assert set(prediction) == {"label", "score", "top"} and prediction["label"] == "alarm"
    assert prediction["score"] == pytest.approx(np.exp(3) / (np.exp(3) + np.e + 1))


def test_below_the_threshold_the_fallback_label_is_returned_with_the_top_candidates() -> None:
    logits = np.array([[6.0, 1.0, 0.0], [0.2, 0.1, 0.0]])
    sure, unsure = decide(logits, LABELS, options(fallback_label="out_of_scope", fallback_threshold=2.0))
    assert sure["label"] == "alarm" and sure["in_scope"] is True and sure["in_scope_score"] > 2.0
    assert unsure["label"] == "out_of_scope" and unsure["in_scope"] is False
    assert [t["label"] for t in unsure["top"]] == ["alarm", "music", "weather"]
    assert unsure["score"] == pytest.approx(1 - unsure["top"][0]["score"])
    [margin] = decide(logits[:1] * 0 + [[1.0, 0.99, 0.0]], LABELS, options(fallback_label="oos", fallback_threshold=-10.0,
                                                                             fallback_margin=0.05))
    assert margin["in_scope"] is False  # rejected by the ambiguity margin alone


def test_a_trained_fallback_class_rejects_by_argmax_until_a_threshold_is_fitted() -> None:
    labels = ["alarm", "music", "oos"]
    rejected, kept = decide(np.array([[0.0, 0.0, 5.0], [4.0, 0.0, 1.0]]), labels, options(fallback_label="oos"))
    assert rejected["label"] == "oos" and rejected["in_scope"] is False
    assert all(t["label"] != "oos" for t in rejected["top"])  # the candidates are in-scope labels
    assert kept["label"] == "alarm" and kept["in_scope"] is True


def test_temperature_changes_scores_never_labels() -> None:
    logits = np.random.default_rng(0).normal(size=(50, 3)) * 4
    plain, scaled = decide(logits, LABELS, options()), decide(logits, LABELS, options(temperature=3.0))
    assert [p["label"] for p in plain] == [p["label"] for p in scaled]
    assert np.mean([p["score"] for p in scaled]) < np.mean([p["score"] for p in plain])


def test_fit_rule_fits_threshold_and_temperature_and_the_rule_rejects_out_of_scope() -> None:
    rng = np.random.default_rng(0)
    gold_in = rng.integers(0, 3, 120)
    logits_in = rng.normal(0, 1, (120, 3))
    logits_in[np.arange(120), gold_in] += 9.0  # confident and right: over-confident before calibration
    logits_oos = rng.normal(0, 1, (40, 3))
    logits = np.concatenate([logits_in, logits_oos])
    gold = [LABELS[i] for i in gold_in] + ["out_of_scope"] * 40
    rule = fit_rule(logits, gold, LABELS, options(fallback_label="out_of_scope"))
    assert rule.options.fallback_threshold is not None and rule.options.temperature != 1.0
    rejection = rule.summary["rejection"]
    assert rejection["oos_recall"] > 0.9 and rejection["in_scope_accuracy"] >= 0.98 and rejection["validation_out_of_scope"] == 40
    assert "## Out-of-scope rejection" in rule.report and "## Calibration" in rule.report and "reliability.png" in rule.files
    assert rule.files["reliability.png"][:8] == b"\x89PNG\r\n\x1a\n"
    # the reliability bins saved for the TUI: the 120 in-scope examples, before and after calibration
    reliability = rule.summary["calibration"]["reliability"]
    for side in ("before", "after"):
        assert sum(b["count"] for b in reliability[side]) == 120 and all(b["low"] < b["confidence"] <= b["high"] for b in reliability[side])
        right = sum(b["accuracy"] * b["count"] for b in reliability[side])
        assert right == pytest.approx(float(np.sum(logits_in.argmax(axis=1) == gold_in)), abs=1e-2)
    assert reliability["before"][-1]["high"] == 1.0 and reliability["before"] != reliability["after"]  # T changed the confidences
    predictions = decide(logits, LABELS, rule.options)
    assert sum(not p["in_scope"] for p in predictions[120:]) / 40 == pytest.approx(rejection["oos_recall"])
    # a threshold the user set is kept, not refitted
    assert fit_rule(logits, gold, LABELS, options(fallback_label="out_of_scope", fallback_threshold=1.5)).options.fallback_threshold == 1.5


def test_fallback_label_may_be_in_validation_only_but_not_declared_without_training_examples() -> None:
    train = [TextExample("a", "alarm", source="train.jsonl:1"), TextExample("b", "music", source="train.jsonl:2")]
    validation = [TextExample("c", "out_of_scope", source="valid.jsonl:1")]
    assert check_labels(train, validation, None, "out_of_scope") == ["alarm", "music"]
    with pytest.raises(DataError, match="valid.jsonl:1: label 'out_of_scope' appears in validation but never in training"):
        check_labels(train, validation, None, None)
    with pytest.raises(DataError, match="fallback label 'out_of_scope' is declared as a label but has no training examples"):
        check_labels(train, validation, ["alarm", "music", "out_of_scope"], "out_of_scope")


def test_evaluation_reports_in_scope_accuracy_and_out_of_scope_detection() -> None:
    task = ClassificationTask()
    examples = [TextExample("a", "alarm"), TextExample("b", "music"), TextExample("c", "oos"), TextExample("d", "oos")]
    predictions = [{"label": "alarm", "score": 0.9, "in_scope_score": 5.0}, {"label": "oos", "score": 0.6, "in_scope_score": 1.0},
                   {"label": "oos", "score": 0.7, "in_scope_score": 0.5}, {"label": "music", "score": 0.5, "in_scope_score": 2.0}]
    metrics = task.evaluate(predictions, examples, ["alarm", "music"], options=options(fallback_label="oos")).metrics
    assert metrics["in_scope_accuracy"] == 0.5 and metrics["oos_precision"] == 0.5 and metrics["oos_recall"] == 0.5
    assert metrics["oos_auroc"] == pytest.approx(0.75) and metrics["accuracy"] == 0.5
    assert "oos_recall" not in task.evaluate(predictions[:2], examples[:2], ["alarm", "music"]).metrics


def test_feedback_accepts_the_fallback_label() -> None:
    task = ClassificationTask()
    gold = task.feedback_gold(TextExample("x"), {"label": "alarm"}, {"label": "oos"}, ["alarm", "music"], options(fallback_label="oos"))
    assert gold == "oos"
    with pytest.raises(DataError, match="label"):
        task.feedback_gold(TextExample("x"), {"label": "alarm"}, {"label": "oos"}, ["alarm", "music"], options())


def step_calibrated_binary(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Binary logits whose accuracy is 0.6 for small margins and 0.98 for large ones: one temperature
    cannot follow that step, an isotonic map of the top score can."""
    rng = np.random.default_rng(seed)
    margin = rng.uniform(0.0, 8.0, n)
    predicted = rng.integers(0, 2, n)
    right = rng.random(n) < np.where(margin < 3.0, 0.6, 0.98)
    gold = np.where(right, predicted, 1 - predicted)
    logits = np.zeros((n, 2))
    logits[np.arange(n), predicted] = margin
    return logits, [["neg", "pos"][g] for g in gold]


def test_temperature_plus_isotonic_beats_temperature_out_of_fold_and_changes_no_label() -> None:
    logits, gold = step_calibrated_binary(1500, seed=0)
    labels = ["neg", "pos"]
    by_temperature = fit_rule(logits, gold, labels, options(calibration="temperature"))
    by_map = fit_rule(logits, gold, labels, options(calibration="temperature+isotonic", calibration_bins=8))
    assert by_temperature.options.confidence_map is None and len(by_map.options.confidence_map) == 8
    assert by_map.options.temperature == by_temperature.options.temperature  # the map comes after the same temperature
    plain, mapped = by_temperature.summary["calibration"], by_map.summary["calibration"]
    assert mapped["ece_after_out_of_fold"] < plain["ece_after_out_of_fold"] - 0.02
    assert mapped["confidence_map_knots"] == 8 and "out of fold" in by_map.report and "isotonic map" in by_map.report
    with_map, without = decide(logits, labels, by_map.options), decide(logits, labels, by_temperature.options)
    assert [p["label"] for p in with_map] == [p["label"] for p in without]
    assert [p["score"] for p in with_map] != [p["score"] for p in without]
    # a later fit with plain temperature scaling drops the old map
    assert fit_rule(logits, gold, labels, by_map.options.model_copy(update={"calibration": "temperature"})).options.confidence_map is None


def test_auto_calibration_picks_the_method_with_the_lower_out_of_fold_error() -> None:
    labels = ["neg", "pos"]
    step_logits, step_gold = step_calibrated_binary(1500, seed=1)
    chosen = fit_rule(step_logits, step_gold, labels, options(calibration_bins=8)).summary["calibration"]  # default: auto
    assert chosen["method"] == "temperature+isotonic" and chosen["chosen_by"].startswith("auto: out-of-fold ECE")
    # too few validation examples to compare the two out of fold: plain temperature scaling, and the report says why
    few = fit_rule(step_logits[:15], step_gold[:15], labels, options())
    assert few.summary["calibration"]["method"] == "temperature" and few.options.confidence_map is None
    assert "fewer than 20 validation examples" in few.report


def test_a_map_that_ties_the_top_score_with_the_second_keeps_the_logits_label() -> None:
    """The isotonic map raises the top class only up to the second (an exact tie): the label stays the argmax of
    the logits, listed first in ``top``, whichever column it is in."""
    logits = np.array([[0.0, 0.2, -1.0], [0.1, -2.0, 0.3], [1.0, 1.2, 1.1]])
    tie_map = [(0.3, 0.05), (1.0, 0.1)]  # far below every top probability: each top stops at its floor
    mapped = decide(logits, LABELS, options(confidence_map=tie_map, top_k=3))
    plain = decide(logits, LABELS, options(top_k=3))
    expected = [LABELS[i] for i in np.argmax(logits, axis=1)]
    assert [p["label"] for p in mapped] == [p["label"] for p in plain] == expected
    for prediction in mapped:
        scores = [t["score"] for t in prediction["top"]]
        assert prediction["top"][0]["label"] == prediction["label"] and prediction["score"] == scores[0]
        assert scores[0] >= max(scores[1:]) and scores[0] == pytest.approx(scores[1])  # tied, never below
    assert [[t["label"] for t in p["top"]] for p in mapped] == [[t["label"] for t in p["top"]] for p in plain]


@pytest.mark.parametrize("rule", [{}, {"fallback_label": "oos", "fallback_threshold": 0.5},
                                  {"fallback_label": "weather"}])
def test_decoding_with_calibration_gives_the_labels_of_decoding_without(rule: dict) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(400, 3)) * rng.choice([0.01, 1.0, 5.0], size=(400, 1))  # many near ties
    logits[:50, 1] = logits[:50, 0]  # exact ties in the logits: the first column wins, with or without calibration
    plain = decide(logits, LABELS, options(**rule))
    for calibration in ({"temperature": 2.5}, {"temperature": 0.7, "confidence_map": [(0.34, 0.2), (0.6, 0.55), (1.0, 0.9)]},
                        {"confidence_map": [(0.0, 0.01), (1.0, 0.02)]}):
        calibrated = decide(logits, LABELS, options(**rule, **calibration))
        assert [p["label"] for p in calibrated] == [p["label"] for p in plain]
        assert [p.get("in_scope") for p in calibrated] == [p.get("in_scope") for p in plain]
        assert [[t["label"] for t in p["top"]] for p in calibrated] == [[t["label"] for t in p["top"]] for p in plain]


def test_auto_calibration_reports_the_accuracy_of_the_logits() -> None:
    """Validation accuracy after ``fit_rule`` (auto picks the isotonic map here) is that of the argmax of the logits."""
    logits, gold = step_calibrated_binary(1500, seed=3)
    rule = fit_rule(logits, gold, ["neg", "pos"], options(calibration="temperature+isotonic", calibration_bins=8))
    task = ClassificationTask()
    examples = [TextExample(f"text {i}", g) for i, g in enumerate(gold)]
    features = [{"example_index": i} for i in range(len(gold))]
    predictions = task.decode({"logits": list(logits)}, features, examples, ["neg", "pos"], rule.options)
    accuracy = task.evaluate(predictions, examples, ["neg", "pos"], rule.options).metrics["accuracy"]
    assert accuracy == pytest.approx(np.mean(np.array(["neg", "pos"])[np.argmax(logits, axis=1)] == np.array(gold)))
