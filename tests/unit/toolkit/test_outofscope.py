"""toolkit.outofscope and toolkit.calibration: the figures the rejection rule and calibration are chosen by."""

from __future__ import annotations

import numpy as np
import pytest

from assistant_builder.toolkit.calibration import expected_calibration_error, fit_temperature, log_softmax, reliability_bins
from assistant_builder.toolkit.outofscope import (accuracy_at_coverage, auroc, energy_scores, fit_threshold, rejection_scores,
                                                  tradeoff_table)


def test_energy_is_logsumexp_of_the_chosen_columns() -> None:
    logits = np.array([[1.0, 2.0, 30.0], [0.0, 0.0, 0.0]])
    assert energy_scores(logits, [0, 1]) == pytest.approx([np.log(np.e + np.e**2), np.log(2.0)])
    assert energy_scores(logits)[0] == pytest.approx(30.0 + np.log1p(np.exp(-28) + np.exp(-29)))


def test_auroc_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    inside, outside = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)
    expected = roc_auc_score([1] * 40 + [0] * 30, np.concatenate([inside, outside]))
    assert auroc(inside, outside) == pytest.approx(expected)
    assert np.isnan(auroc(inside, []))


def separable(n_in: int = 200, n_oos: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(5.0, 1.0, n_in), rng.normal(1.0, 1.0, n_oos)])
    correct = np.concatenate([rng.random(n_in) < 0.95, np.zeros(n_oos, dtype=bool)])
    out_of_scope = np.concatenate([np.zeros(n_in, dtype=bool), np.ones(n_oos, dtype=bool)])
    return scores, correct, out_of_scope


def test_with_out_of_scope_examples_f1_is_maximised_within_the_accuracy_floor() -> None:
    scores, correct, oos = separable()
    fit = fit_threshold(scores, correct, oos, max_accuracy_loss=0.01)
    keep_all = rejection_scores(scores, correct, oos, None)
    assert fit.threshold is not None and "F1" in fit.objective and not fit.warnings
    assert fit.scores.in_scope_accuracy >= keep_all.in_scope_accuracy - 0.01
    assert fit.scores.oos_recall > 0.8 and fit.scores.oos_f1 > 0.8
    # no other threshold within the floor has a better F1
    for t in np.linspace(scores.min(), scores.max(), 200):
        other = rejection_scores(scores, correct, oos, float(t))
        if other.in_scope_accuracy >= keep_all.in_scope_accuracy - 0.01:
            assert other.oos_f1 <= fit.scores.oos_f1 + 1e-12


def test_without_out_of_scope_examples_the_threshold_keeps_the_share_asked_for() -> None:
    scores, correct, oos = separable(n_oos=0)
    fit = fit_threshold(scores, correct, oos, keep=0.9)
    kept = (scores[correct] >= fit.threshold).mean()
    assert 0.9 <= kept < 0.92 and "keep >= 90%" in fit.objective
    few = fit_threshold(*separable(n_oos=3), keep=0.98)  # 3 out-of-scope examples: too few to fit on, said so
    assert few.threshold is not None and "only 3 out-of-scope" in few.warnings[0]


def test_too_little_validation_data_rejects_nothing_and_says_how_much_there_was() -> None:
    scores, correct, oos = separable(n_in=12, n_oos=0)
    fit = fit_threshold(scores, correct, oos)
    assert fit.threshold is None and f"only {int(correct.sum())} correctly classified" in fit.warnings[0]
    assert rejection_scores(scores, correct, oos, None).kept == 1.0


def test_tradeoff_and_coverage_are_monotone() -> None:
    scores, correct, oos = separable()
    rows = tradeoff_table(scores, correct, oos)
    assert rows[0].kept == 1.0 and rows[-1].kept == pytest.approx(0.6, abs=0.01)
    assert all(a.oos_recall <= b.oos_recall for a, b in zip(rows, rows[1:]))
    coverage = accuracy_at_coverage(scores[~oos], correct[~oos], (1.0, 0.5))
    assert coverage[1.0] == pytest.approx(correct[~oos].mean())


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 3.0, size=(4000, 6))
    true_temperature = 2.5  # labels drawn from softmax(logits / 2.5): the raw logits are over-confident
    probabilities = np.exp(log_softmax(logits / true_temperature))
    gold = np.array([rng.choice(6, p=p) for p in probabilities])
    fitted = fit_temperature(logits, gold)
    assert fitted == pytest.approx(true_temperature, rel=0.1)
    raw = np.exp(log_softmax(logits))
    scaled = np.exp(log_softmax(logits / fitted))
    ece_raw = expected_calibration_error(raw.max(1), raw.argmax(1) == gold)
    ece_scaled = expected_calibration_error(scaled.max(1), scaled.argmax(1) == gold)
    assert ece_scaled < 0.03 < ece_raw
    bins = reliability_bins(scaled.max(1), scaled.argmax(1) == gold, 10)
    assert sum(b.count for b in bins) == 4000


def test_weak_entities_are_dropped_and_their_words_tagged_o() -> None:
    from assistant_builder.toolkit.decoding import drop_weak_entities, tag_entities

    tags = ["B-person", "I-person", "O", "B-city"]
    entities = tag_entities(tags, [0.9, 0.8, 1.0, 0.4], "ann lee in oslo", [(0, 3), (4, 7), (8, 10), (11, 15)])
    kept_tags, kept = drop_weak_entities(tags, entities, 0.5)
    assert kept_tags == ["B-person", "I-person", "O", "O"] and [e["text"] for e in kept] == ["ann lee"]
    assert drop_weak_entities(tags, entities, 0.0) == (tags, entities)


def test_a_fitted_threshold_lies_between_scores_not_on_one() -> None:
    for scores, correct, oos in (separable(), separable(n_oos=0)):
        threshold = fit_threshold(scores, correct, oos).threshold
        gap = np.abs(scores - threshold).min()
        assert gap > 1e-6  # a rounding difference of the exported model cannot flip a validation decision
        nearest = np.sort(np.abs(scores - threshold))[:2]
        assert nearest[0] == pytest.approx(nearest[1])  # halfway between its neighbours
