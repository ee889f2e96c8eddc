"""The NER and QA task checks of `builder data check`, through the CLI, on dirty data made here."""

from __future__ import annotations

import json

from assistant_builder.cli.main import main


def run_check(capsys, recipe) -> tuple[int, dict[str, dict]]:
    code = main(["data", "check", str(recipe), "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, {c["check"]: c for c in report["checks"]}


def line_of(path, word: str) -> int:
    """The line of the first CoNLL word line starting with ``word``."""
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.split()[:1] == [word])


def conll(sentences: list[str]) -> str:
    return "\n\n".join("\n".join(" ".join(pair.split("|")) for pair in s.split()) for s in sentences) + "\n"


TRAIN = ["call|O mom|B-person tonight|B-time", "wake|O me|O at|O 7|B-time am|I-time", "call|O dad|B-person at|O 6|B-time",
         "text|O john|B-person now|O", "remind|O mom|B-person at|O 9|B-time", "call|O ann|B-person",
         "weather|O in|O paris|I-place",  # an entity starting with I- (repaired)
         "ping|O bob|X-person"]           # a malformed tag
VALID = ["call|O john|B-person at|O 5|B-time", "fly|O to|O rome|B-city"]  # 'city' never in training


def test_ner_tag_checks_name_the_line(tmp_path, write_recipe, capsys):
    (tmp_path / "train.conll").write_text(conll(TRAIN))
    (tmp_path / "valid.conll").write_text(conll(VALID))
    recipe = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "train.conll", "validation": "valid.conll"})
    code, checks = run_check(capsys, recipe)
    assert code == 1
    train, valid = tmp_path / "train.conll", tmp_path / "valid.conll"
    (invalid,) = checks["ner.invalid_tags"]["findings"]
    assert invalid["where"] == f"{train}:{line_of(train, 'paris')}" and invalid["level"] == "warning" and "'I-place'" in invalid["message"]
    (malformed,) = checks["ner.malformed_tag"]["findings"]
    assert malformed["where"] == f"{train}:{line_of(train, 'bob')}" and malformed["level"] == "error" and "'X-person'" in malformed["message"]
    rare = {f["message"].split("'")[1]: f for f in checks["rare_label"]["findings"]}
    assert rare["place"]["where"] == f"{train}:{line_of(train, 'weather')}" and "seen only once" in rare["place"]["message"]
    (only_valid,) = [f for f in checks["label_split"]["findings"] if f["level"] == "error"]
    assert only_valid["where"] == f"{valid}:{line_of(valid, 'fly')}" and "'city'" in only_valid["message"]
    # with invalid_tags = "error" training would stop: the same finding is an error
    recipe = write_recipe(tmp_path, task={"type": "ner", "options": {"invalid_tags": "error"}},
                          data={"train": "train.conll", "validation": "valid.conll"})
    _, checks = run_check(capsys, recipe)
    assert checks["ner.invalid_tags"]["findings"][0]["level"] == "error"


def test_ner_long_sentences_are_windowed_not_cut(tmp_path, write_recipe, capsys):
    long = " ".join(["word|O"] * 40 + ["paris|B-place"])
    (tmp_path / "train.conll").write_text(conll([*TRAIN[:6], long]))
    (tmp_path / "valid.conll").write_text(conll(VALID[:1]))
    recipe = write_recipe(tmp_path, task={"type": "ner"}, data={"train": "train.conll", "validation": "valid.conll"})
    _, checks = run_check(capsys, recipe)
    assert "length" not in checks
    (windowed,) = checks["windowed"]["findings"]
    assert windowed["level"] == "info" and windowed["where"] == f"{tmp_path / 'train.conll'}:{line_of(tmp_path / 'train.conll', 'word')}"


def squad(questions: list[tuple[str, str, str, int]], context: str) -> dict:
    qas = [{"id": qid, "question": q, "answers": [{"text": a, "answer_start": s}]} for qid, q, a, s in questions]
    return {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_qa_answer_offsets_and_long_questions(tmp_path, write_recipe, capsys):
    context = "The bakery opens at 7 am and closes at 6 pm. It is on Mill Street."
    train = squad([("q1", "when does the bakery open", "7 am", context.index("7 am")),
                   ("q2", "where is the bakery", "Mill Street", 3),  # wrong offset
                   ("q3", " ".join(["what"] * 30) + " time", "6 pm", context.index("6 pm"))], context)
    (tmp_path / "train.json").write_text(json.dumps(train, indent=1))
    other = "The park has a lake with ducks."
    (tmp_path / "valid.json").write_text(json.dumps(squad([("v1", "what is on the lake", "ducks", other.index("ducks"))], other), indent=1))
    recipe = write_recipe(tmp_path, task={"type": "qa"}, data={"train": "train.json", "validation": "valid.json"},
                          model={"max_length": 64})
    code, checks = run_check(capsys, recipe)
    assert code == 1
    lines = (tmp_path / "train.json").read_text().splitlines()
    line_of = {qid: next(n for n, text in enumerate(lines, 1) if f'"{qid}"' in text) for qid in ("q2", "q3")}
    (offset,) = checks["qa.answer_offset"]["findings"]
    assert offset["where"] == f"{tmp_path / 'train.json'}:{line_of['q2']}: question 'q2'"
    assert "answer_start 3" in offset["message"] and f"occurs at answer_start {context.index('Mill Street')}" in offset["message"]
    (long,) = checks["qa.long_question"]["findings"]
    assert long["where"].endswith(f":{line_of['q3']}: question 'q3'") and "max_length = 64" in long["message"]
