"""Saved task models are transformers model folders, for BERT and other encoder types.

For each encoder type a tiny random model is built in code; each task model on it is saved with
``save_pretrained`` and must (1) reload with our loader to the same outputs, (2) load with
transformers: the standard ``*ForTokenClassification`` / ``*ForQuestionAnswering`` for ner and qa,
the folder's own ``modeling_pooled_encoder.py`` for classification (imported here from the folder,
as ``trust_remote_code`` does; the real ``trust_remote_code`` path runs in
``tests/integration/test_hf_compat.py``), with the same outputs. Also: the tokenizer configs
written beside the weights.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from assistant_builder.toolkit.hf_folder import tokenizer_files
from assistant_builder.toolkit.token_classifier import build_token_classifier, load_token_classifier
from assistant_builder_tasks.classification.model import build_classifier, load_classifier
from assistant_builder_tasks.qa.model import build_question_answerer, load_question_answerer

SMALL = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
ENCODERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("BertConfig", {"hidden_size": 32, **SMALL}),
    "roberta": ("RobertaConfig", {"hidden_size": 32, "max_position_embeddings": 130, **SMALL}),
    "distilbert": ("DistilBertConfig", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    "electra": ("ElectraConfig", {"embedding_size": 16, "hidden_size": 32, **SMALL}),
    "albert": ("AlbertConfig", {"embedding_size": 16, "hidden_size": 32, **SMALL}),
    "mpnet": ("MPNetConfig", {"hidden_size": 32, **SMALL}),
    "deberta-v2": ("DebertaV2Config", {"hidden_size": 32, **SMALL}),
}
LABELS = ["O", "B-x", "I-x"]


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def base_model(request, tmp_path_factory, tiny_model_dir) -> Path:
    """A tiny random encoder of each type, with the tiny BERT's tokenizer files (only the model matters here)."""
    import transformers

    config_class, sizes = ENCODERS[request.param]
    directory = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(vocab_size=201, **sizes)
    transformers.AutoModel.from_config(config).save_pretrained(directory)
    shutil.copy(tiny_model_dir / "tokenizer.json", directory / "tokenizer.json")
    return directory


def batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 60, 61, 62, 63, 3], [2, 70, 71, 3, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}


def outputs(model: Any, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our model's or a transformers model's outputs as a dict of tensors."""
    if not getattr(model.config, "type_vocab_size", 0):
        inputs = {k: v for k, v in inputs.items() if k != "token_type_ids"}  # e.g. DistilBERT takes none
    with torch.no_grad():
        result = model(**inputs)
    return {k: v for k, v in dict(result).items() if k in ("logits", "start_logits", "end_logits")}


def assert_same(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert set(ours) == set(theirs)
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], rtol=1e-5, atol=1e-5)


def import_folder_code(folder: Path) -> Any:
    """Import the folder's modeling file under a unique name (what ``trust_remote_code`` does, minus the copy)."""
    spec = importlib.util.spec_from_file_location(f"modeling_pooled_encoder_{abs(hash(folder))}", folder / "modeling_pooled_encoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_classification_folder(base_model, tmp_path):
    model = build_classifier(base_model, 3, "mean", 0.1, None, 0.0).eval()
    model.save_pretrained(tmp_path, LABELS)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["PooledEncoderForSequenceClassification"]
    assert config["auto_map"] == {"AutoModelForSequenceClassification": "modeling_pooled_encoder.PooledEncoderForSequenceClassification"}
    expected = outputs(model, batch())
    assert_same(expected, outputs(load_classifier(tmp_path), batch()))

    code = import_folder_code(tmp_path)
    assert code.ENCODER_ATTRIBUTE == model.encoder.base_model_prefix
    loaded = code.PooledEncoderForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.id2label == dict(enumerate(LABELS))
    assert_same(expected, outputs(loaded, batch()))


def test_cls_pooling_survives_the_round_trip(base_model, tmp_path):
    model = build_classifier(base_model, 3, "cls", 0.1, None, 0.0).eval()
    model.save_pretrained(tmp_path, LABELS)
    assert load_classifier(tmp_path).pooling == "cls"
    loaded = import_folder_code(tmp_path).PooledEncoderForSequenceClassification.from_pretrained(tmp_path).eval()
    assert_same(outputs(model, batch()), outputs(loaded, batch()))


def test_ner_folder(base_model, tmp_path):
    from transformers import AutoModelForTokenClassification

    model = build_token_classifier(base_model, len(LABELS), 0.1).eval()
    model.save_pretrained(tmp_path, LABELS)
    expected = outputs(model, batch())
    assert_same(expected, outputs(load_token_classifier(tmp_path), batch()))
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [type(loaded).__name__]
    assert loaded.config.id2label == dict(enumerate(LABELS))
    assert_same(expected, outputs(loaded, batch()))


def test_qa_folder(base_model, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    model = build_question_answerer(base_model).eval()
    model.save_pretrained(tmp_path)
    expected = outputs(model, batch())
    assert_same(expected, outputs(load_question_answerer(tmp_path), batch()))
    loaded = AutoModelForQuestionAnswering.from_pretrained(tmp_path).eval()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [type(loaded).__name__]
    assert_same(expected, outputs(loaded, batch()))


def test_onnx_bundle_config_has_labels_and_no_custom_code(tiny_model_dir, tmp_path):
    model = build_classifier(tiny_model_dir, 3, "mean", 0.1, None, 0.0).eval()
    model.save_pretrained(tmp_path, LABELS)
    files = model.hf_config_files()
    assert set(files) == {"config.json", "tokenizer_config.json", "special_tokens_map.json"}
    assert files["config.json"]["id2label"] == {"0": "O", "1": "B-x", "2": "I-x"} and "auto_map" not in files["config.json"]
    assert files["config.json"]["model_type"] == "bert"


def test_tokenizer_files_copied_from_the_base_model_without_its_paths(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": False, "tokenizer_class": "BertTokenizer", "model_max_length": 512, "name_or_path": "/somewhere/else",
        "unk_token": "[UNK]"}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "pad_token": "[PAD]"}))
    files = tokenizer_files(tmp_path)
    assert files["tokenizer_config.json"] == {"do_lower_case": False, "tokenizer_class": "BertTokenizer", "model_max_length": 512,
                                              "unk_token": "[UNK]"}
    assert files["special_tokens_map.json"] == {"unk_token": "[UNK]", "pad_token": "[PAD]"}


def test_tokenizer_files_derived_from_tokenizer_json(tiny_model_dir, tmp_path):
    """A base model with only tokenizer.json: special tokens, lower-casing and length come from its files."""
    files = tokenizer_files(tiny_model_dir)
    specials = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}
    assert files["special_tokens_map.json"] == specials
    assert files["tokenizer_config.json"] == {**specials, "do_lower_case": True, "model_max_length": 128}

    roberta_like = {"added_tokens": [{"content": t, "special": True} for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")],
                    "normalizer": None, "model": {"type": "BPE", "vocab": {}}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(roberta_like))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}))
    files = tokenizer_files(tmp_path)
    assert files["special_tokens_map.json"] == {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                                                "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
    assert files["tokenizer_config.json"]["model_max_length"] == 512 and "do_lower_case" not in files["tokenizer_config.json"]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet", "max_position_embeddings": 514, "pad_token_id": 1}))
    assert tokenizer_files(tmp_path)["tokenizer_config.json"]["model_max_length"] == 512  # MPNet reserves positions too
