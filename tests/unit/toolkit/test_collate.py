"""``assistant_builder.toolkit.collate``: padding features into tensors, targets only when every feature has them."""

from __future__ import annotations

from assistant_builder.toolkit.collate import collate, padded_arrays

FEATURES = [{"input_ids": [5, 6, 7], "token_type_ids": [0, 0, 1], "labels": [1, -100, 2], "intent": 3},
            {"input_ids": [5], "labels": [0], "intent": 1}]


def test_padded_arrays():
    batch = padded_arrays(FEATURES, 0, ("labels", "intent", "absent"))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "intent"}
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]] and batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert batch["labels"].tolist() == [[1, -100, 2], [0, -100, -100]] and batch["intent"].tolist() == [3, 1]


def test_collate_gives_int64_tensors_and_drops_targets_some_feature_lacks():
    import torch

    batch = collate([FEATURES[0], {"input_ids": [1, 2]}], 9, ("labels",))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.int64 for v in batch.values())
    assert batch["input_ids"].tolist() == [[5, 6, 7], [1, 2, 9]]
    assert set(collate([], 0, ("labels",))) == {"input_ids", "attention_mask", "token_type_ids"}
