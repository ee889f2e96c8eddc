"""The classification task through its public contract (data, encode, model, decode, evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant_builder.errors import DataError
from assistant_builder.recipe.schema import DataSection
from assistant_builder.registry import build_registry
from assistant_builder.tokenization import load_tokenizer


@pytest.fixture
def task():
    return build_registry().create("task", "classification")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [{"text": f"please set an alarm {i}", "label": "alarm"} for i in range(6)] + \
       [{"text": f"what is the weather {i}", "label": "weather"} for i in range(6)]


def options(task, **values):
    return task.Options.model_validate(values)


def test_loads_jsonl_and_csv_with_configured_fields(task, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"body": r["text"], "intent": r["label"]} for r in ROWS])
    csv_path = tmp_path / "valid.csv"
    csv_path.write_text("body,intent\nset alarm for 7,alarm\n\"rain, tomorrow?\",weather\n")
    data = DataSection(train=tmp_path / "train.jsonl", validation=csv_path)
    loaded = task.load_data(data, options(task, text_field="body", label_field="intent"))
    assert loaded.labels == ["alarm", "weather"]
    assert len(loaded.train) == 12
    assert [e.text for e in loaded.validation] == ["set alarm for 7", "rain, tomorrow?"]


def test_declared_labels_fix_order_and_reject_unknown(task, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    data = DataSection(train=tmp_path / "train.jsonl")
    loaded = task.load_data(data, options(task, labels=["weather", "alarm"]))
    assert loaded.labels == ["weather", "alarm"]
    with pytest.raises(DataError, match="label 'weather' is not in task.options.labels"):
        task.load_data(data, options(task, labels=["alarm", "music"]))


def test_held_out_split_is_stratified_and_seeded(task, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS * 1)
    data = DataSection(train=tmp_path / "train.jsonl", validation_split=0.34)
    first = task.load_data(data, options(task))
    again = task.load_data(data, options(task))
    assert [e.text for e in first.validation] == [e.text for e in again.validation]
    assert {e.label for e in first.validation} == {"alarm", "weather"}
    assert not {e.text for e in first.validation} & {e.text for e in first.train}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": \n', r"train.jsonl:2: malformed JSON"),
        ('{"text": "a", "label": "x"}\n{"txt": "b", "label": "y"}\n', r"train.jsonl:2: missing field 'text'"),
        ('{"text": "", "label": "x"}\n', r"train.jsonl:1: field 'text' must be a non-empty string"),
        ("", r"no examples found"),
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', r"only one class \('x'\)"),
        ('["text", "label"]\n', r"train.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_training_data_is_located(task, tmp_path, content, message):
    (tmp_path / "train.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        task.load_data(DataSection(train=tmp_path / "train.jsonl", validation=tmp_path / "train.jsonl"), options(task))


def test_non_utf8_bytes_are_located(task, tmp_path):
    (tmp_path / "train.jsonl").write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(DataError, match=r"train.jsonl:2: bytes that are not UTF-8"):
        task.load_data(DataSection(train=tmp_path / "train.jsonl"), options(task))


def test_validation_label_missing_from_training_is_an_error(task, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    write_jsonl(tmp_path / "valid.jsonl", [{"text": "play a song", "label": "music"}])
    with pytest.raises(DataError, match=r"valid.jsonl:1: label 'music' appears in validation but never in training"):
        task.load_data(DataSection(train=tmp_path / "train.jsonl", validation=tmp_path / "valid.jsonl"), options(task))


def test_duplicate_ids_are_rejected(task, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{**r, "id": "same" if i < 2 else str(i)} for i, r in enumerate(ROWS)])
    with pytest.raises(DataError, match=r"train.jsonl:2: duplicate id 'same' \(first seen at line 1\)"):
        task.load_data(DataSection(train=tmp_path / "train.jsonl"), options(task, id_field="id"))


def test_encode_decode_evaluate_round_trip(task, tiny_model_dir, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    loaded = task.load_data(DataSection(train=tmp_path / "train.jsonl", validation=tmp_path / "train.jsonl"), options(task, top_k=2))
    tokenizer = load_tokenizer(tiny_model_dir, 16)
    features = task.encode(loaded.validation, tokenizer, loaded.labels, options(task), 16)
    assert [f["labels"] for f in features] == [0] * 6 + [1] * 6
    assert all(f["input_ids"][0] == tokenizer.token_to_id("[CLS]") for f in features)
    # logits favouring the gold label for all but the last example
    logits = [np.array([2.0, -1.0]) if f["labels"] == 0 else np.array([-1.0, 2.0]) for f in features]
    logits[-1] = np.array([3.0, 0.0])
    predictions = task.decode({"logits": logits}, features, loaded.validation, loaded.labels, options(task, top_k=2))
    assert predictions[0]["label"] == "alarm" and predictions[-1]["label"] == "alarm"
    assert abs(sum(t["score"] for t in predictions[0]["top"]) - 1.0) < 1e-9
    evaluation = task.evaluate(predictions, loaded.validation, loaded.labels)
    assert evaluation.metrics["accuracy"] == pytest.approx(11 / 12)
    assert evaluation.details["confusion_matrix"] == [[6, 0], [1, 5]]
    assert evaluation.details["per_label"]["weather"]["recall"] == pytest.approx(5 / 6)
    assert "| weather |" in evaluation.report and "weather → alarm: 1" in evaluation.report


def test_balanced_class_weights_follow_inverse_frequency(task):
    features = [{"labels": 0}] * 6 + [{"labels": 1}] * 2
    weights = task.class_weights(features, 2)
    assert weights == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])


def test_model_forward_loss_and_mean_pooling_ignores_padding(task, tiny_model_dir):
    import torch

    model = task.build_model(tiny_model_dir, ["a", "b", "c"], options(task, dropout=0.0)).eval()
    ids = torch.tensor([[2, 40, 41, 3]])
    padded = torch.tensor([[2, 40, 41, 3, 0, 0]])
    with torch.no_grad():
        short = model(input_ids=ids, attention_mask=torch.ones_like(ids))["logits"]
        long = model(input_ids=padded, attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]]))["logits"]
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([1]))
    assert short.shape == (1, 3)
    assert torch.allclose(short, long, atol=1e-5)
    assert out["loss"].item() > 0
    assert model.head_modules == ("classifier",)


def test_parse_input_accepts_text_or_object(task):
    assert task.parse_input("  hi there ").text == "hi there"
    assert task.parse_input({"text": "hello"}).text == "hello"
    with pytest.raises(DataError, match="non-empty"):
        task.parse_input("   ")
    with pytest.raises(DataError, match="expected a string or an object"):
        task.parse_input({"body": "x"})
