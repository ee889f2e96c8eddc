"""toolkit.calibration: the isotonic confidence map and out-of-fold calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from assistant_builder.toolkit.calibration import (apply_confidence_map, expected_calibration_error, fit_isotonic_map,
                                                   out_of_fold_probabilities)


def step_accuracy_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Top confidences spread over (0.5, 1) whose accuracy is a step no temperature can follow:
    0.6 below a confidence of 0.9, 0.98 above it."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < np.where(confidence < 0.9, 0.6, 0.98)
    return confidence, correct


def test_the_map_is_monotone_and_cuts_the_error_on_new_data() -> None:
    confidence, correct = step_accuracy_sample(3000, seed=0)
    knots = fit_isotonic_map(confidence, correct, bins=10)
    assert len(knots) == 10
    xs, ys = np.array(knots).T
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0)
    assert 0 < ys.min() and ys.max() < 1  # no score reads 0 or 1
    new_confidence, new_correct = step_accuracy_sample(3000, seed=1)
    mapped = np.interp(new_confidence, xs, ys)
    before, after = expected_calibration_error(new_confidence, new_correct), expected_calibration_error(mapped, new_correct)
    assert before > 0.08 and after < 0.03


def test_plain_isotonic_with_one_bin_per_example_and_degenerate_input() -> None:
    confidence, correct = step_accuracy_sample(200, seed=2)
    assert len(fit_isotonic_map(confidence, correct, bins=1000)) == 200
    assert fit_isotonic_map([0.7], [True]) == [] and fit_isotonic_map([0.7, 0.7], [True, False]) == []


def test_applying_a_map_keeps_every_label_and_rescales_the_rest_in_proportion() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.98, 0.01, 0.01]])
    mapped = apply_confidence_map(probabilities, [(0.5, 0.4), (1.0, 0.9)])
    assert np.allclose(mapped.sum(axis=1), 1.0)
    assert list(mapped.argmax(axis=1)) == list(probabilities.argmax(axis=1))
    assert mapped[0, 0] == pytest.approx(np.interp(0.7, [0.5, 1.0], [0.4, 0.9]))
    assert mapped[0, 1] / mapped[0, 2] == pytest.approx(2.0)  # the others keep their proportions
    assert apply_confidence_map(probabilities, []) is not probabilities and np.array_equal(apply_confidence_map(probabilities, []),
                                                                                           probabilities)


def test_a_map_below_the_second_class_stops_where_the_top_class_stays_first() -> None:
    binary = np.array([[0.55, 0.45]])
    mapped = apply_confidence_map(binary, [(0.5, 0.3), (1.0, 0.35)])  # the map says "right 30% of the time"
    assert mapped[0, 0] == pytest.approx(0.5) and mapped[0, 1] == pytest.approx(0.5)
    certain = apply_confidence_map(np.array([[1.0, 0.0, 0.0]]), [(0.5, 0.5), (1.0, 0.8)])
    assert certain[0] == pytest.approx([0.8, 0.1, 0.1])


def test_out_of_fold_probabilities_never_come_from_a_fit_that_saw_the_example() -> None:
    gold = np.array([0] * 30 + [1])  # one example of class 1: any fit without it has never seen class 1
    logits = np.zeros((31, 2))

    def fit(train_logits: np.ndarray, train_gold: np.ndarray):
        frequency = np.bincount(train_gold, minlength=2) / len(train_gold)
        return lambda held_out: np.tile(frequency, (len(held_out), 1))

    probabilities = out_of_fold_probabilities(logits, gold, fit, folds=10, seed=3)
    assert probabilities[30, 1] == 0.0
    assert 27 <= int(np.sum(probabilities[:30, 1] > 0)) <= 28  # only its own fold (3 or 4 examples) was fitted without it
    assert out_of_fold_probabilities(logits[:19], gold[:19], fit, folds=10) is None


def test_the_winner_given_keeps_its_place_at_an_exact_tie() -> None:
    """A map that raises the winner exactly to the second class's value: a tie, which the scores must not break
    against the winner (no other class above it), whichever column the winner is in."""
    probabilities = np.array([[0.4, 0.05, 0.55], [0.1, 0.55, 0.35], [0.55, 0.45, 0.0]])
    knots = [(0.5, 0.3), (1.0, 0.35)]  # below every second class: each winner stops at the floor, tied with the second
    winners = np.array([2, 1, 0])
    mapped = apply_confidence_map(probabilities, knots, winners)
    rows = np.arange(len(mapped))
    assert np.all(mapped[rows, winners] >= mapped.max(axis=1))  # exact: no class above the winner, not even by rounding
    assert mapped[2] == pytest.approx([0.5, 0.5, 0.0]) and mapped[0, 2] == pytest.approx(mapped[0, 0])
    assert np.allclose(mapped.sum(axis=1), 1.0)
    # the default winner is each row's largest probability
    assert np.array_equal(apply_confidence_map(probabilities, knots), mapped)
    with pytest.raises(ValueError, match="one winning column per row"):
        apply_confidence_map(probabilities, knots, [0, 1])


def test_float_noise_at_the_floor_never_lifts_another_class_above_the_winner() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(5) * 0.7, size=2000)
    winners = probabilities.argmax(axis=1)
    mapped = apply_confidence_map(probabilities, [(0.0, 0.01), (1.0, 0.02)], winners)  # every row at its floor
    rows = np.arange(len(mapped))
    assert np.all(mapped[rows, winners] >= mapped.max(axis=1))
    assert np.allclose(mapped.sum(axis=1), 1.0)
