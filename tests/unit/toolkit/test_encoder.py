"""The torch blocks: ``toolkit.encoder`` (pooling, heads, loss) and ``toolkit.hf_folder``'s heads file."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from assistant_builder.errors import ModelError  # noqa: E402
from assistant_builder.toolkit.encoder import (encoder_states, init_head_weights, load_encoder, masked_cross_entropy,  # noqa: E402
                                               pool)
from assistant_builder.toolkit.hf_folder import load_heads_file, save_heads_file  # noqa: E402


def test_mean_pooling_ignores_padding_and_cls_takes_the_first_token():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0], [0.0, 0.0]]  # an all-padding row gives zeros
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0], [5.0, 6.0]]
    with pytest.raises(ValueError, match="pooling mode"):
        pool(hidden, mask, "max")


def test_head_initialisation():
    torch.manual_seed(0)
    layer = nn.Linear(256, 64)
    init_head_weights(layer, std=0.02)
    with torch.no_grad():
        assert float(layer.bias.abs().max()) == 0.0 and 0.015 < float(layer.weight.std()) < 0.025


def test_masked_cross_entropy_averages_over_the_targets_it_keeps():
    logits = torch.randn(2, 3, 4)
    targets = torch.tensor([[1, -100, 2], [-100, -100, 0]])
    kept = targets != -100
    expected = nn.functional.cross_entropy(logits[kept], targets[kept])
    assert torch.allclose(masked_cross_entropy(logits, targets), expected)
    assert float(masked_cross_entropy(logits, torch.full_like(targets, -100))) == 0.0


def test_encoder_states_and_the_heads_file_round_trip(tiny_model_dir, tmp_path):
    encoder = load_encoder(tiny_model_dir).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    states = encoder_states(encoder, ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert states.shape == (1, 4, encoder.config.hidden_size)
    heads = {"intent": nn.Linear(encoder.config.hidden_size, 3), "slots": nn.Linear(encoder.config.hidden_size, 5)}
    save_heads_file(tmp_path / "heads.safetensors", heads)
    again = {"intent": nn.Linear(encoder.config.hidden_size, 3), "slots": nn.Linear(encoder.config.hidden_size, 5)}
    load_heads_file(tmp_path / "heads.safetensors", again)
    assert all(torch.equal(heads[n].weight, again[n].weight) for n in heads)
    with pytest.raises(ModelError, match="heads.safetensors: the 'slots' head weights do not fit"):
        load_heads_file(tmp_path / "heads.safetensors", {"slots": nn.Linear(encoder.config.hidden_size, 7)})
