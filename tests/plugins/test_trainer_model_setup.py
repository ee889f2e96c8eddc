"""``[train] freeze_word_embeddings`` and ``attention_dropout``: what they change in the model, and that a run honours them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from assistant_builder.cli.main import main
from assistant_builder.testing import write_intent_data
from assistant_builder_trainers.model_setup import freeze_word_embeddings, prepare_model, set_attention_dropout


def classifier(model_dir: Path) -> torch.nn.Module:
    """The classification task's model (BERT encoder, mean pooling, dropout 0.1, linear head)."""
    from assistant_builder_tasks.classification.model import build_classifier

    return build_classifier(model_dir, 3, "mean", 0.1, None, 0.0)


def attention_dropouts(model: torch.nn.Module) -> list[float]:
    return [m.dropout.p for m in model.modules() if type(m).__name__.endswith("Attention") and hasattr(m, "dropout")]


def other_dropouts(model: torch.nn.Module) -> set[float]:
    attention = {id(m.dropout) for m in model.modules() if type(m).__name__.endswith("Attention") and hasattr(m, "dropout")}
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout) and id(m) not in attention}


def test_prepare_model_freezes_only_the_word_embeddings_and_sets_attention_dropout(tiny_model_dir: Path) -> None:
    model = classifier(tiny_model_dir)
    words = model.encoder.embeddings.word_embeddings.weight
    changes = prepare_model(model, SimpleNamespace(freeze_word_embeddings=True, attention_dropout=0.0))
    assert changes == {"frozen_embedding_weights": words.numel(), "attention_dropout_modules": 2}  # 2 layers
    assert not words.requires_grad
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "encoder.embeddings.position_embeddings.weight" in trainable and "classifier.weight" in trainable
    assert len(trainable) == len(list(model.parameters())) - 1
    assert attention_dropouts(model) == [0.0, 0.0]
    assert other_dropouts(model) == {0.1}  # hidden-state and head dropout keep their rate


def test_prepare_model_defaults_off_keep_the_model_as_loaded(tiny_model_dir: Path) -> None:
    model = classifier(tiny_model_dir)
    before = attention_dropouts(model)
    assert prepare_model(model, SimpleNamespace(freeze_word_embeddings=False, attention_dropout=None)) == {
        "frozen_embedding_weights": 0, "attention_dropout_modules": 0}
    assert all(p.requires_grad for p in model.parameters())
    assert attention_dropouts(model) == before == [0.1, 0.1]


def test_under_peft_and_without_a_hugging_face_encoder(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(classifier(tiny_model_dir), LoraConfig(r=2, target_modules=["query"]))
    assert freeze_word_embeddings(wrapped) == 0  # peft froze the whole base already
    assert set_attention_dropout(wrapped, 0.0) == 2
    plain = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Dropout(0.1))
    assert prepare_model(plain, SimpleNamespace(freeze_word_embeddings=True, attention_dropout=0.0)) == {
        "frozen_embedding_weights": 0, "attention_dropout_modules": 0}
    assert all(p.requires_grad for p in plain.parameters())


def weight(folder: Path, suffix: str) -> torch.Tensor:
    tensors = load_file(str(folder / "model.safetensors"))
    (name,) = [name for name in tensors if name.endswith(suffix)]
    return tensors[name]


@pytest.mark.parametrize("freeze", [True, False])
def test_a_run_honours_freeze_word_embeddings(tmp_path: Path, write_recipe, tiny_model_dir: Path, freeze: bool) -> None:  # type: ignore[no-untyped-def]
    write_intent_data(tmp_path, per_label=8, seed=3)
    recipe = write_recipe(tmp_path, task={"type": "classification", "options": {"label_field": "intent"}},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 1, "batch_size": 8, "learning_rate": 1e-2, "freeze_word_embeddings": freeze},
                          export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "recipe.resolved.json").read_text())["train"]["freeze_word_embeddings"] is freeze
    trained, base = run_dir / "model", tiny_model_dir
    assert torch.equal(weight(trained, "word_embeddings.weight"), weight(base, "word_embeddings.weight")) is freeze
    assert not torch.equal(weight(trained, "position_embeddings.weight"), weight(base, "position_embeddings.weight"))
