"""Dynamic padding and length-grouped batching."""

from __future__ import annotations

import random

import numpy as np
import pytest

from assistant_builder.batching import length_grouped_batches, pad_batch, random_batches, sorted_batches


def test_pad_batch_shapes_masks_and_pad_ids() -> None:
    features = [{"input_ids": [5, 6, 7]}, {"input_ids": [8]}, {"input_ids": [1, 2, 3, 4, 9]}]
    batch = pad_batch(features, pad_token_id=0)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    for array in batch.values():
        assert array.shape == (3, 5) and array.dtype == np.int64
    np.testing.assert_array_equal(batch["input_ids"], [[5, 6, 7, 0, 0], [8, 0, 0, 0, 0], [1, 2, 3, 4, 9]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(batch["token_type_ids"], np.zeros((3, 5)))


def test_pad_batch_uses_given_pad_id_and_token_types() -> None:
    features = [{"input_ids": [5, 6], "token_type_ids": [0, 1]}, {"input_ids": [8, 9, 10], "token_type_ids": [0, 1, 1]}]
    batch = pad_batch(features, pad_token_id=99)
    np.testing.assert_array_equal(batch["input_ids"], [[5, 6, 99], [8, 9, 10]])
    np.testing.assert_array_equal(batch["token_type_ids"], [[0, 1, 0], [0, 1, 1]])


def test_pad_batch_scalar_labels() -> None:
    batch = pad_batch([{"input_ids": [1], "labels": 2}, {"input_ids": [1, 2], "labels": 0}], 0, ("labels",))
    assert batch["labels"].shape == (2,) and batch["labels"].dtype == np.int64
    np.testing.assert_array_equal(batch["labels"], [2, 0])


def test_pad_batch_token_labels_padded_with_minus_100() -> None:
    features = [{"input_ids": [1, 2, 3], "labels": [4, 5, 6]}, {"input_ids": [1], "labels": [7]}]
    batch = pad_batch(features, 0, ("labels",))
    np.testing.assert_array_equal(batch["labels"], [[4, 5, 6], [7, -100, -100]])
    assert batch["labels"].shape == batch["input_ids"].shape


def test_pad_batch_leaves_unrequested_keys_out() -> None:
    batch = pad_batch([{"input_ids": [1], "labels": 2, "example_index": 0}], 0)
    assert "labels" not in batch and "example_index" not in batch


def skewed_lengths(count: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([rng.randint(3, 12)] * 9 + [rng.randint(40, 128)]) for _ in range(count)]


def padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_length_grouped_batches_deterministic_for_seed() -> None:
    lengths = skewed_lengths()
    first = length_grouped_batches(lengths, 16, random.Random(7), mega_batch_factor=4)
    again = length_grouped_batches(lengths, 16, random.Random(7), mega_batch_factor=4)
    other = length_grouped_batches(lengths, 16, random.Random(8), mega_batch_factor=4)
    assert first == again
    assert first != other


@pytest.mark.parametrize(("count", "batch_size"), [(1000, 16), (37, 8), (5, 16), (1, 1)])
def test_length_grouped_batches_cover_every_index_once(count: int, batch_size: int) -> None:
    lengths = skewed_lengths(count)
    batches = length_grouped_batches(lengths, batch_size, random.Random(0), mega_batch_factor=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(count))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= -(-count // (batch_size * 3))  # at most one short batch per mega-batch


def test_length_grouped_batches_empty() -> None:
    assert length_grouped_batches([], 8, random.Random(0)) == []


def test_longest_example_in_first_batch() -> None:
    for seed in range(5):
        lengths = skewed_lengths(seed=seed)
        lengths[random.Random(seed).randrange(len(lengths))] = 500
        batches = length_grouped_batches(lengths, 16, random.Random(seed), mega_batch_factor=4)
        assert max(lengths[i] for i in batches[0]) == 500


def test_length_grouped_batches_have_much_less_padding_than_random() -> None:
    lengths = skewed_lengths()
    grouped = length_grouped_batches(lengths, 16, random.Random(0))
    shuffled = random_batches(len(lengths), 16, random.Random(0))
    assert padding(grouped, lengths) * 5 < padding(shuffled, lengths)


def test_batch_order_is_shuffled_across_epochs() -> None:
    lengths = skewed_lengths()
    rng = random.Random(0)
    epoch1 = length_grouped_batches(lengths, 16, rng, mega_batch_factor=4)
    epoch2 = length_grouped_batches(lengths, 16, rng, mega_batch_factor=4)
    assert epoch1 != epoch2
    # not simply sorted longest-first
    maxima = [max(lengths[i] for i in b) for b in epoch1]
    assert maxima != sorted(maxima, reverse=True)


def test_random_batches_cover_all() -> None:
    batches = random_batches(50, 8, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(50))
    assert [len(b) for b in batches] == [8] * 6 + [2]


def test_sorted_batches_cover_all_and_are_sorted() -> None:
    lengths = skewed_lengths(101)
    batches = sorted_batches(lengths, 10)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(101))
    assert [len(b) for b in batches] == [10] * 10 + [1]
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert sorted_batches([], 4) == []
