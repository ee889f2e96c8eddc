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


def tiny_config(model_type: str, **extra):
    from transformers import AutoConfig

    sizes = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "vocab_size": 100}
    return AutoConfig.for_model(model_type, **sizes, **extra)


@pytest.mark.parametrize(("model_type", "extra", "limit"), [
    ("bert", {}, 64), ("roberta", {"pad_token_id": 1}, 62), ("mpnet", {"pad_token_id": 1}, 62),
    ("deberta-v2", {"relative_attention": True, "position_biased_input": False, "pos_att_type": ["p2c", "c2p"]}, None),
    ("modernbert", {"pad_token_id": 0}, None),
])
def test_input_token_limit_counts_the_positions_a_model_can_index(model_type, extra, limit):
    from transformers import AutoModel

    from assistant_builder.toolkit.encoder import input_token_limit

    with torch.device("meta"):
        encoder = AutoModel.from_config(tiny_config(model_type, **extra))
    assert input_token_limit(encoder) == limit


def test_check_encoder_folder_names_the_folder_the_model_type_and_what_cannot_work(tmp_path):
    from transformers import T5Config

    from assistant_builder.toolkit.encoder import check_encoder_folder

    roberta = tmp_path / "roberta"
    tiny_config("roberta", pad_token_id=1).save_pretrained(roberta)
    assert check_encoder_folder(roberta, 62).model_type == "roberta"
    with pytest.raises(ModelError, match=r"model.max_length = 63: expected at most 62 tokens for model_type 'roberta' \(.*"
                                         r"roberta/config.json: max_position_embeddings 64, 2 of them reserved"):
        check_encoder_folder(roberta, 63)
    T5Config(d_model=32, num_layers=1, num_heads=2, d_kv=16, d_ff=64, vocab_size=100).save_pretrained(tmp_path / "t5")
    with pytest.raises(ModelError, match=r"t5/config.json: model_type 't5' is an encoder-decoder model"):
        check_encoder_folder(tmp_path / "t5", 32)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"model_type": "wizardformer", "hidden_size": 32}')
    with pytest.raises(ModelError, match=r"odd/config.json: model_type 'wizardformer' is not an architecture transformers"):
        load_encoder(tmp_path / "odd")


def test_word_shapes_are_added_in_the_embedding_size_where_it_differs_from_the_hidden_size():
    """ELECTRA and ALBERT embed in 16 dimensions and project to 32: the shape embedding is 16 wide, and the model runs."""
    from transformers import AutoModel

    from assistant_builder.toolkit.encoder import embedding_size
    from assistant_builder.toolkit.shapes import SHAPES
    from assistant_builder.toolkit.token_classifier import TokenClassifier

    for model_type in ("electra", "albert"):
        encoder = AutoModel.from_config(tiny_config(model_type, embedding_size=16)).eval()
        assert embedding_size(encoder) == 16 and encoder.config.hidden_size == 32
        model = TokenClassifier(encoder, 3, 0.0, word_shapes=len(SHAPES)).eval()
        assert model.shape_embedding.embedding_dim == 16
        ids = torch.tensor([[2, 5, 6, 3]])
        output = model(ids, torch.ones_like(ids), torch.zeros_like(ids), shape_ids=torch.tensor([[0, 2, 1, 0]]))
        assert output["logits"].shape == (1, 4, 3)


def test_token_types_reach_only_encoders_with_more_than_one():
    """A RoBERTa has one token type: a second-segment id from its tokenizer must not index past it."""
    from transformers import AutoModel

    encoder = AutoModel.from_config(tiny_config("roberta", pad_token_id=1, type_vocab_size=1)).eval()
    ids = torch.tensor([[0, 5, 6, 2]])
    with torch.no_grad():
        states = encoder_states(encoder, ids, torch.ones_like(ids), torch.tensor([[0, 0, 1, 1]]))
        assert torch.equal(states, encoder_states(encoder, ids, torch.ones_like(ids)))
