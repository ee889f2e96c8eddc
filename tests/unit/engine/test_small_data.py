"""Small-data training settings: min_steps raises epochs, tiny validation switches early stopping off."""

from __future__ import annotations

import random

from assistant_builder.batching import batch_count, length_grouped_batches, random_batches
from assistant_builder.contracts import ExampleView
from assistant_builder.engine.small_data import adjust_training, epochs_for_min_steps, mean_per_label, steps_per_epoch
from assistant_builder.recipe.schema import TrainSection


class FakeTask:
    name = "fake"
    head_learning_rate = 3e-3
    learning_rates = {"full": 2e-4}

    def example_view(self, example):
        return ExampleView(example[0], example[1], (example[1],), "x")


def validation(per_label: int, labels: int = 3):
    return [(f"text {i}", f"label{j}") for j in range(labels) for i in range(per_label)]


def test_batch_count_matches_the_batches_the_trainer_cuts():
    for count, size in [(1, 8), (24, 8), (25, 8), (1000, 4), (3017, 16)]:
        lengths = [random.Random(count).randint(1, 30) for _ in range(count)]
        assert batch_count(count, size) == len(length_grouped_batches(lengths, size, random.Random(0)))
        assert batch_count(count, size, group_by_length=False) == len(random_batches(count, size, random.Random(0)))


def test_min_steps_raises_the_epoch_count():
    # 750 examples (CLINC150 at 5 per intent), batch 32: 24 steps per epoch; 6 epochs = 144 < 600
    assert steps_per_epoch(750, 32) == 24
    assert epochs_for_min_steps(6, 24, 600) == 25
    settings, notes = adjust_training(TrainSection(), FakeTask(), 750, validation(10))
    assert settings.epochs == 25 and settings.early_stopping_patience == 3
    assert len(notes) == 1 and "144 steps < train.min_steps 600: training 25 epochs (600 steps)" in notes[0]


def test_enough_steps_or_min_steps_zero_keep_the_epochs():
    assert epochs_for_min_steps(6, 200, 600) == 6
    settings, notes = adjust_training(TrainSection(min_steps=0), FakeTask(), 750, validation(10))
    assert settings.epochs == 6 and notes == []


def test_accumulation_counts_optimiser_steps():
    assert steps_per_epoch(640, 32, accumulation=4) == 5
    settings, _ = adjust_training(TrainSection(gradient_accumulation_steps=4, min_steps=50), FakeTask(), 640, validation(10))
    assert settings.epochs == 10


def test_early_stopping_off_on_tiny_validation():
    settings, notes = adjust_training(TrainSection(min_steps=0), FakeTask(), 100, validation(4))
    assert settings.early_stopping_patience == 0
    assert notes == ["early stopping off: the validation data has 4.0 examples per label on average "
                     "(< train.early_stopping_min_per_label 5), too few to tell a better epoch from noise; the best epoch is still kept"]


def test_early_stopping_kept_on_enough_validation_or_when_the_rule_is_off():
    assert adjust_training(TrainSection(min_steps=0), FakeTask(), 100, validation(5))[0].early_stopping_patience == 3
    kept, notes = adjust_training(TrainSection(min_steps=0, early_stopping_min_per_label=0), FakeTask(), 100, validation(1))
    assert kept.early_stopping_patience == 3 and notes == []


def test_head_learning_rate_default_comes_from_the_task_and_an_explicit_one_wins():
    assert adjust_training(TrainSection(min_steps=0), FakeTask(), 100, validation(9))[0].head_learning_rate == 3e-3
    assert adjust_training(TrainSection(min_steps=0, head_learning_rate=1e-3), FakeTask(), 100, validation(9))[0].head_learning_rate == 1e-3


def test_mean_per_label_without_classes_is_none():
    assert mean_per_label([(), ()]) is None
    assert mean_per_label([("a",), ("a",), ("b",)]) == 1.5


def test_encoder_learning_rate_default_comes_from_the_task_for_its_trainer_and_an_explicit_one_wins():
    assert adjust_training(TrainSection(min_steps=0), FakeTask(), 100, validation(9))[0].learning_rate == 2e-4
    assert adjust_training(TrainSection(min_steps=0, learning_rate=5e-5), FakeTask(), 100, validation(9))[0].learning_rate == 5e-5
    # a trainer the task names no rate for keeps its own default (None here: the trainer applies it)
    assert adjust_training(TrainSection(min_steps=0, trainer="lora"), FakeTask(), 100, validation(9))[0].learning_rate is None
