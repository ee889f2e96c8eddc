"""Chinese ``ner`` end to end on a tiny character-vocabulary model (one token per character, like
bert-base-chinese), with JSONL text + character spans written for this project: train -> export ->
``builder predict`` on plain Chinese text, whose entities slice the user's text exactly and score
the same entity F1 as the run's own validation.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.conformance.tiny_model import make_tiny_bert

PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静"]
CITIES = ["北京", "上海", "广州", "哈尔滨", "深圳"]
DATES = ["明天", "今晚", "周五", "后天"]
PATTERNS = [
    "请给{person}打电话",
    "{date}{city}的天气怎么样",
    "提醒{person}{date}去{city}开会",
    "帮我订一张去{city}的机票",
    "{date}早上七点叫醒我",
    "给{person}发消息说我{date}到{city}",
    "{city}会下雨吗",
]


def sentence(rng: random.Random, pattern: str) -> dict:
    """One record: the pattern with its slots filled, and each slot's character span."""
    text, entities, rest = "", [], pattern
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        text += before
        value = rng.choice({"person": PEOPLE, "city": CITIES, "date": DATES}[slot])
        entities.append({"start": len(text), "end": len(text) + len(value), "label": slot})
        text += value
    return {"text": text + rest, "entities": entities}


def write_jsonl(path: Path, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = [sentence(rng, rng.choice(PATTERNS)) for _ in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return records


def characters() -> set[str]:
    return set("".join(PATTERNS + PEOPLE + CITIES + DATES)) - set("{}") - set("personcitydate")


@pytest.fixture(scope="module")
def chinese_model(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-chinese-bert"), extra_words=sorted(characters()))


def entity_f1(gold: list[dict], predicted: list[list[dict]]) -> float:
    gold_set = {(i, e["start"], e["end"], e["label"]) for i, r in enumerate(gold) for e in r["entities"]}
    found = {(i, e["start"], e["end"], e["label"]) for i, entities in enumerate(predicted) for e in entities}
    return 2 * len(gold_set & found) / (len(gold_set) + len(found)) if gold_set or found else 1.0


def test_chinese_jsonl_trains_and_predicts_plain_text_with_exact_offsets(chinese_model, tmp_path, write_recipe, capsys):
    write_jsonl(tmp_path / "train.jsonl", 160, seed=1)
    valid = write_jsonl(tmp_path / "valid.jsonl", 40, seed=2)
    recipe = write_recipe(tmp_path, task={"type": "ner"}, model={"base": str(chinese_model)},
                          data={"train": "train.jsonl", "validation": "valid.jsonl"},
                          train={"epochs": 6, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3,
                                 "warmup_ratio": 0.0, "early_stopping_patience": 0, "seed": 3,
                                 "freeze_word_embeddings": False},
                          export={"formats": ["onnx"]}, output={"runs_dir": "runs"})
    assert main(["run", str(recipe), "-q"]) == 0
    captured = capsys.readouterr()
    assert "TagRepairWarning" not in captured.err
    (run_dir,) = (tmp_path / "runs").iterdir()
    f1 = json.loads((run_dir / "metrics.json").read_text())["metrics"]["f1"]
    assert f1 > 0.8  # the tiny model learns these patterns by character

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n" for r in valid), encoding="utf-8")
    assert main(["predict", str(run_dir), "--variant", "fp32", "--input", str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(valid)
    for line, record in zip(lines, valid):
        assert line["input"] == {"text": record["text"]}
        for entity in line["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"]
    # the same sentences as plain text score what the run measured on them
    assert entity_f1(valid, [line["entities"] for line in lines]) == pytest.approx(f1, abs=1e-9)
    assert {"person", "city", "date"} <= {e["label"] for line in lines for e in line["entities"]}


def test_two_chinese_entities_in_one_sentence_are_not_an_overlap(tmp_path):
    from assistant_builder.toolkit.readers import char_spans_to_tags

    text = "明天从北京飞哈尔滨"
    words, tags, offsets, widened = char_spans_to_tags(
        text, [{"start": 3, "end": 5, "label": "city"}, {"start": 6, "end": 9, "label": "city"}], "train.jsonl:1")
    assert words == list(text) and widened == 0
    assert tags == ["O", "O", "O", "B-city", "I-city", "O", "B-city", "I-city", "I-city"]
    assert offsets[6] == (6, 7)


def test_data_check_names_a_word_an_entity_cuts(tmp_path, write_recipe, capsys):
    rows = [{"text": "call Johnny now", "entities": [{"start": 5, "end": 9, "label": "person"}]},
            {"text": "给张伟打电话", "entities": [{"start": 1, "end": 3, "label": "person"}]}]
    for name in ("train.jsonl", "valid.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "train.jsonl", "validation": "valid.jsonl"})
    main(["data", "check", str(recipe)])
    out = capsys.readouterr().out
    assert "ner.partial_word" in out
    assert "train.jsonl:1: entity 1 (person, 'John', characters 5-9) starts or ends inside the word 'Johnny'" in out
    assert out.count("starts or ends inside the word") == 2  # train and validation line 1; the Chinese name is whole characters
