"""The ner task through its public contract: readers, schemes, encoding, windows, decoding, metrics, model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from assistant_builder.errors import DataError
from assistant_builder.recipe.schema import DataSection
from assistant_builder.registry import build_registry
from assistant_builder.tokenization import load_tokenizer
from assistant_builder.toolkit.readers import TagRepairWarning
from assistant_builder.toolkit.tags import detect_scheme, repair, to_iob2
from assistant_builder.toolkit.tags import spans_from_tags as spans
from assistant_builder.toolkit.windows import plan_windows

LABELS = ["O", "B-loc", "I-loc", "B-per", "I-per", "B-time", "I-time"]


@pytest.fixture
def task():
    return build_registry().create("task", "ner")


def options(task, **values):
    return task.Options.model_validate(values)


def load(task, tmp_path: Path, name: str, content: str, validation: str | None = None, fmt: str = "auto", **opts):
    (tmp_path / name).write_text(content)
    data = DataSection(train=tmp_path / name, validation=tmp_path / (validation or name), format=fmt)
    return task.load_data(data, options(task, **opts))


CONLL = """-DOCSTART- -X- -X- O

call VB B-VP O
John NNP B-NP B-per
in IN O O
New NNP B-NP B-loc
York NNP I-NP I-loc

wake VB O O
me PRP O O
at IN O O
7 CD O B-time
"""


# --------------------------------------------------------------------------------------------- readers


def test_reads_conll_with_tag_in_last_column_and_skips_docstart(task, tmp_path):
    loaded = load(task, tmp_path, "train.conll", CONLL)
    assert [e.tokens for e in loaded.train] == [("call", "John", "in", "New", "York"), ("wake", "me", "at", "7")]
    assert loaded.train[0].tags == ("O", "B-per", "O", "B-loc", "I-loc")
    assert loaded.train[0].text == "call John in New York" and loaded.train[0].offsets[3] == (13, 16)
    assert loaded.train[0].source.endswith("train.conll:3")
    assert loaded.labels == ["O", "B-loc", "I-loc", "B-per", "I-per", "B-time", "I-time"]


def test_reads_tab_separated_conll(task, tmp_path):
    loaded = load(task, tmp_path, "train.txt", "call\tO\nJohn\tB-per\n\nhi\tO\nmom\tB-per\n")
    assert [e.tags for e in loaded.train] == [("O", "B-per"), ("O", "B-per")]


def test_reads_parallel_seq_files_from_folder_or_seq_in(task, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "seq.in").write_text("fly to new york \ncall john\n")
    (folder / "seq.out").write_text("O O B-loc I-loc \nO B-per\n")
    (folder / "label").write_text("flight\ncall\n")  # intent labels: ignored
    for path in (folder, folder / "seq.in"):
        loaded = task.load_data(DataSection(train=path, validation=path), options(task))
        assert [e.tokens for e in loaded.train] == [("fly", "to", "new", "york"), ("call", "john")]
        assert loaded.train[0].tags == ("O", "O", "B-loc", "I-loc")
        assert loaded.train[1].source.endswith("seq.in:2")
        assert loaded.sources["train"] == folder / "seq.in" and loaded.sources["train_tags"] == folder / "seq.out"  # both hashed in provenance


def test_reads_jsonl_tokens_and_character_entities(task, tmp_path):
    rows = [
        {"tokens": ["call", "John"], "tags": ["O", "B-per"]},
        {"text": "Meet Ana in São Paulo at 7:30!", "entities": [{"start": 5, "end": 8, "label": "per"},
                                                             {"start": 12, "end": 21, "label": "loc"},
                                                             {"start": 25, "end": 29, "label": "time"}]},
    ]
    loaded = load(task, tmp_path, "train.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    second = loaded.train[1]
    assert second.tokens == ("Meet", "Ana", "in", "São", "Paulo", "at", "7", ":", "30", "!")
    assert second.tags == ("O", "B-per", "O", "B-loc", "I-loc", "O", "B-time", "I-time", "I-time", "O")
    assert second.text == rows[1]["text"] and second.offsets[3] == (12, 15)


def test_jsonl_entity_inside_a_word_is_widened_with_a_warning(task, tmp_path):
    row = {"text": "call Johnny now", "entities": [{"start": 5, "end": 9, "label": "per"}]}
    with pytest.warns(TagRepairWarning, match="1 entity did not start or end on a word boundary"):
        loaded = load(task, tmp_path, "train.jsonl", json.dumps(row) + "\n")
    assert loaded.train[0].tags == ("O", "B-per", "O")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.conll", "call O\nJohn B-per\nin\n", r"train.conll:3: expected a word and its tag"),
        ("train.conll", "call VB O\nJohn NNP B-per\nin O\n", r"train.conll:3: expected 3 columns \(as on line 1\), got 2"),
        ("train.conll", "", r"train.conll: no sentences found \(an empty file\)"),
        ("train.conll", "-DOCSTART- O\n\n", r"no sentences found \(only -DOCSTART- lines\)"),
        ("train.conll", "call O\nJohn PER\n", r"train.conll:2: expected 'O' or a tag such as 'B-TYPE'"),
        ("train.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n', r"train.jsonl:1: 1 tags for 2 tokens"),
        ("train.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["b"]}\n', r"train.jsonl:2: missing field 'tags'"),
        ("train.jsonl", '{"text": "hi there"}\n', r"train.jsonl:1: missing field 'entities'"),
        ("train.jsonl", '{"words": ["a"]}\n', r"train.jsonl:1: missing field 'tokens' or 'text'"),
        ("train.jsonl", "", r"train.jsonl: no sentences found \(empty file\)"),
        ("train.jsonl", '{"text": "ab cd", "entities": [{"start": 0, "end": 9, "label": "x"}]}\n', r"train.jsonl:1: entity 1: expected character offsets"),
        ("train.jsonl", '{"text": "ab cd", "entities": [{"start": 0, "end": 5, "label": "x"}, {"start": 3, "end": 5, "label": "y"}]}\n',
         r"train.jsonl:1: entity 2 \('cd'\) overlaps entity 1"),
        ("train.jsonl", '{"text": "ab cd", "entities": [{"start": 0, "end": 2, "label": "B-x"}]}\n', r"entity type such as 'person'"),
        ("train.data", "a O\n", r"cannot tell the format from the name 'train.data'"),
    ],
)
def test_bad_data_is_located(task, tmp_path, name, content, message):
    with pytest.raises(DataError, match=message):
        load(task, tmp_path, name, content)


@pytest.mark.parametrize(
    ("words", "tags", "message"),
    [
        ("a b\nc d\ne\n", "O O\nO B-x\n", r"seq.in:3: no matching line in seq.out \(seq.in has 3 lines, seq.out has 2\)"),
        ("a b\n", "O O\nO\n", r"seq.out:2: no matching line in seq.in"),
        ("a b\nc d e\n", "O O\nO B-x\n", r"seq.out:2: 2 tags for the 3 words on seq.in:2"),
        ("", "", r"seq.in: empty file"),
    ],
)
def test_bad_seq_files_are_located(task, tmp_path, words, tags, message):
    (tmp_path / "seq.in").write_text(words)
    (tmp_path / "seq.out").write_text(tags)
    with pytest.raises(DataError, match=message):
        task.load_data(DataSection(train=tmp_path, validation=tmp_path), options(task))


def test_missing_seq_out_is_reported(task, tmp_path):
    (tmp_path / "seq.in").write_text("a b\n")
    with pytest.raises(DataError, match=r"needs seq.out beside seq.in"):
        task.load_data(DataSection(train=tmp_path / "seq.in", validation=tmp_path / "seq.in"), options(task))


# --------------------------------------------------------------------------------------------- schemes


def test_scheme_detection():
    assert detect_scheme([["B-x", "I-x", "O"], ["O", "B-y"]]) == "iob2"
    assert detect_scheme([["I-x", "I-x", "B-x", "O", "I-y"]]) == "iob1"
    assert detect_scheme([["S-x", "O", "B-y", "E-y"]]) == "bioes"
    assert detect_scheme([["O", "I-x", "O", "B-y"]]) == "iob2"  # mixed: IOB2 with an invalid sequence


def test_iob1_and_bioes_are_normalised_to_iob2():
    assert to_iob2(["I-x", "I-x", "B-x", "O", "I-y", "B-y"], "iob1") == (["B-x", "I-x", "B-x", "O", "B-y", "B-y"], [])
    assert to_iob2(["S-x", "B-y", "I-y", "E-y", "O", "S-y", "S-y"], "bioes") == (["B-x", "B-y", "I-y", "I-y", "O", "B-y", "B-y"], [])
    assert to_iob2(["O", "I-x", "B-y", "I-x"], "iob2") == (["O", "B-x", "B-y", "B-x"], [1, 3])


@pytest.mark.parametrize(
    ("content", "scheme", "expected"),
    [
        ("New I-loc\nYork I-loc\nBoston B-loc\nis O\nJohn I-per\n", "auto", ("B-loc", "I-loc", "B-loc", "O", "B-per")),
        ("in O\nNew B-loc\nYork E-loc\nand O\nOslo S-loc\n", "auto", ("O", "B-loc", "I-loc", "O", "B-loc")),
        ("in O\nNew I-loc\nYork I-loc\n", "iob1", ("O", "B-loc", "I-loc")),
    ],
)
def test_files_in_other_schemes_are_read_as_iob2(task, tmp_path, content, scheme, expected):
    assert load(task, tmp_path, "train.bio", content, scheme=scheme).train[0].tags == expected


def test_tag_outside_the_declared_scheme_is_located(task, tmp_path):
    with pytest.raises(DataError, match=r"train.conll:2: tag 'S-loc' is not valid in the IOB2 scheme"):
        load(task, tmp_path, "train.conll", "in O\nOslo S-loc\n", scheme="iob2")


def test_invalid_sequences_are_repaired_with_a_warning_or_rejected(task, tmp_path):
    content = "call O\nJohn B-per\n\nin O\nNew I-loc\nYork I-loc\nnow O\nmom I-per\n"
    with pytest.warns(TagRepairWarning, match=r"repaired 2 invalid tag sequences .* first at line 5"):
        loaded = load(task, tmp_path, "train.conll", content)
    assert loaded.train[1].tags == ("O", "B-loc", "I-loc", "O", "B-per")
    with pytest.raises(DataError, match=r"train.conll:5: invalid IOB2 sequence: 'I-loc' \(word 'New'\) follows 'O'"):
        load(task, tmp_path, "train.conll", content, invalid_tags="error")


def test_declared_types_fix_order_and_reject_unknown_ones(task, tmp_path):
    loaded = load(task, tmp_path, "train.conll", CONLL, labels=["time", "per", "loc", "date"])
    assert loaded.labels == ["O", "B-time", "I-time", "B-per", "I-per", "B-loc", "I-loc", "B-date", "I-date"]
    with pytest.raises(DataError, match=r"train.conll:3: entity type 'loc' is not in task.options.labels"):
        load(task, tmp_path, "train.conll", CONLL, labels=["per", "time"])
    with pytest.raises(ValueError, match="without B-/I- prefixes"):
        options(task, labels=["B-per"])


def test_validation_type_unseen_in_training_is_rejected(task, tmp_path):
    (tmp_path / "valid.conll").write_text("in O\nRome B-loc\n\nat O\n7 B-time\n")
    with pytest.raises(DataError, match=r"valid.conll:4: entity type 'time' appears in validation but never in training"):
        load(task, tmp_path, "train.conll", "in O\nParis B-loc\n", validation="valid.conll")


def test_validation_is_held_out_when_absent(task, tmp_path):
    content = "".join(f"call O\nJohn B-per\nnumber O\n{i} O\n\n" for i in range(10))
    (tmp_path / "train.conll").write_text(content)
    loaded = task.load_data(DataSection(train=tmp_path / "train.conll", validation_split=0.2), options(task))
    assert len(loaded.train) == 8 and len(loaded.validation) == 2


# --------------------------------------------------------------------------------------------- encoding


def test_only_the_first_sub_token_of_each_word_is_labelled(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = task.parse_input({"tokens": ["call", "xyzzy", "in", "london"]})
    example = type(example)(example.tokens, ("O", "B-per", "O", "B-loc"), example.text, example.offsets)
    [feature] = task.encode([example], tokenizer, LABELS, options(task), 32)
    pieces = [tokenizer.id_to_token(i) for i in feature["input_ids"]]
    assert pieces == ["[CLS]", "call", "x", "##y", "##z", "##z", "##y", "in", "london", "[SEP]"]
    assert feature["labels"] == [-100, 0, 3, -100, -100, -100, -100, 0, 1, -100]
    assert feature["owned"] == [(0, 1), (1, 2), (2, 7), (3, 8)]


def long_sentence(count: int) -> list[str]:
    cycle = ["call", "xyzzy", "in", "new", "york", "at", "7", "mom", "abcdefg", "tomorrow"]
    return [cycle[i % len(cycle)] for i in range(count)]


def test_long_sentence_becomes_overlapping_windows_and_no_word_is_lost(task, tiny_model_dir):
    words = long_sentence(57)
    max_length = 16
    tokenizer = load_tokenizer(tiny_model_dir, max_length)
    example = task.parse_input({"tokens": words})
    tagged = type(example)(example.tokens, tuple("B-loc" if w == "york" else "O" for w in words), example.text, example.offsets)
    features = task.encode([tagged], tokenizer, LABELS, options(task, stride=4), max_length)
    assert len(features) > 4 and all(len(f["input_ids"]) <= max_length for f in features)
    assert all(f["example_index"] == 0 for f in features)

    # the windows' tokens, put back together, are the whole sentence (nothing truncated away)
    full = load_tokenizer(tiny_model_dir, 4096).encode(words, is_pretokenized=True, add_special_tokens=False)
    covered: dict[int, int] = {}
    for feature in features:
        ids, word_ids = feature["input_ids"], feature["word_ids"]
        assert tokenizer.id_to_token(ids[0]) == "[CLS]" and tokenizer.id_to_token(ids[-1]) == "[SEP]"
        content = ids[1:-1]
        start = next(i for i in range(len(full.ids)) if full.ids[i : i + len(content)] == content and full.word_ids[i : i + len(content)] == word_ids[1:-1])
        covered.update({start + i: token for i, token in enumerate(content)})
    assert [covered[i] for i in range(len(full.ids))] == full.ids

    # every word is owned by exactly one window, at its first sub-token, the most central one
    owned = [w for f in features for w, _ in f["owned"]]
    assert sorted(owned) == list(range(len(words)))
    for feature in features:
        for word, position in feature["owned"]:
            assert feature["word_ids"][position] == word and feature["word_ids"][position - 1] != word
    # labels: each window labels every word starting in it (training sees all of them)
    assert sum(label != -100 for f in features for label in f["labels"]) >= len(words)

    # decoding takes each word from the window that owns it: window k votes B-loc (k even) or B-per (odd)
    outputs = {"logits": [np.tile(np.eye(len(LABELS))[1 if k % 2 == 0 else 3] * 5, (len(f["input_ids"]), 1)) for k, f in enumerate(features)]}
    [prediction] = task.decode(outputs, features, [example], LABELS, options(task))
    owner = {w: k for k, f in enumerate(features) for w, _ in f["owned"]}
    assert prediction["tags"] == [("B-loc" if owner[w] % 2 == 0 else "B-per") for w in range(len(words))]


def test_window_planning_handles_words_longer_than_a_window():
    word_ids = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3, 3, 4]
    windows = plan_windows(word_ids, 4, 2)
    assert windows[0] == (0, 3) and windows[-1][1] == len(word_ids)
    assert all(end - start <= 4 for start, end in windows)
    assert set().union(*(range(s, e) for s, e in windows)) == set(range(len(word_ids)))
    assert plan_windows([0, 1, 2], 10, 4) == [(0, 3)]


# --------------------------------------------------------------------------------------------- decoding


def fake_outputs(task, tokenizer, example, word_tags: dict[int, str], max_length: int = 32):
    """Features for ``example`` and logits that make the model say ``word_tags`` (others O)."""
    features = task.encode([example], tokenizer, LABELS, options(task), max_length)
    logits = []
    for feature in features:
        values = np.zeros((len(feature["input_ids"]), len(LABELS)))
        values[:, 0] = 4.0
        for word, position in feature["owned"]:
            if word in word_tags:
                values[position] = 0.0
                values[position, LABELS.index(word_tags[word])] = 4.0 + word
        logits.append(values)
    return features, {"logits": logits}


def test_decode_gives_character_offsets_in_the_original_text(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    text = "Call Dr. O'Neil at 7:30, please!"
    example = task.parse_input(text)
    assert example.tokens == ("Call", "Dr", ".", "O", "'", "Neil", "at", "7", ":", "30", ",", "please", "!")
    tags = {1: "B-per", 2: "I-per", 3: "I-per", 4: "I-per", 5: "I-per", 7: "B-time", 8: "I-time", 9: "I-time"}
    features, outputs = fake_outputs(task, tokenizer, example, tags)
    [prediction] = task.decode(outputs, features, [example], LABELS, options(task))
    assert [(e["label"], e["start"], e["end"], e["text"]) for e in prediction["entities"]] == [("per", 5, 15, "Dr. O'Neil"), ("time", 19, 23, "7:30")]
    for entity in prediction["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    # score: mean probability of the span's words (logit 4 + word index against 0 for the six other tags)
    expected = np.mean([math.exp(4 + w) / (math.exp(4 + w) + 6) for w in range(7, 10)])
    assert prediction["entities"][1]["score"] == pytest.approx(expected)
    assert task.prediction_key(prediction) == ((5, 15, "per"), (19, 23, "time"))
    json.dumps(prediction)


def test_decode_of_token_input_uses_the_joined_text(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = task.parse_input({"tokens": ["weather", "in", "new", "york", "?"]})
    features, outputs = fake_outputs(task, tokenizer, example, {2: "B-loc", 3: "I-loc"})
    [prediction] = task.decode(outputs, features, [example], LABELS, options(task))
    assert prediction["entities"][0] | {"score": 0} == {"label": "loc", "start": 11, "end": 19, "text": "new york", "score": 0}
    assert example.text == "weather in new york ?"


def test_decode_repairs_invalid_sequences(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = task.parse_input("call mom in london at 7")
    tags = {1: "I-per", 3: "B-loc", 4: "I-per", 5: "I-time"}
    features, outputs = fake_outputs(task, tokenizer, example, tags)
    [prediction] = task.decode(outputs, features, [example], LABELS, options(task, decoder="argmax"))
    assert prediction["tags"] == ["O", "B-per", "O", "B-loc", "B-per", "B-time"]
    assert [(e["label"], e["text"]) for e in prediction["entities"]] == [("per", "mom"), ("loc", "london"), ("per", "at"), ("time", "7")]


def test_best_path_decoder_keeps_an_entity_whole_where_argmax_splits_it(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = task.parse_input("play new york state of mind")
    # word 4 ("of") leans I-per over I-loc; no entity of type per has started, so I-per is invalid there
    features, outputs = fake_outputs(task, tokenizer, example, {1: "B-loc", 2: "I-loc", 3: "I-loc", 4: "I-per", 5: "I-loc"})
    for feature, values in zip(features, outputs["logits"]):
        for word, position in feature["owned"]:
            if word == 4:
                values[position, LABELS.index("I-loc")] = 4.0 + word - 0.5
    [argmax] = task.decode(outputs, features, [example], LABELS, options(task, decoder="argmax"))
    [best] = task.decode(outputs, features, [example], LABELS, options(task))  # the default
    assert argmax["tags"] == ["O", "B-loc", "I-loc", "I-loc", "B-per", "B-loc"]
    assert best["tags"] == ["O", "B-loc", "I-loc", "I-loc", "I-loc", "I-loc"]
    assert [e["text"] for e in best["entities"]] == ["new york state of mind"]


def test_decoders_agree_where_the_argmax_sequence_is_valid(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = task.parse_input("call mom in london at 7")
    features, outputs = fake_outputs(task, tokenizer, example, {1: "B-per", 3: "B-loc", 5: "B-time"})
    [argmax] = task.decode(outputs, features, [example], LABELS, options(task, decoder="argmax"))
    [best] = task.decode(outputs, features, [example], LABELS, options(task, decoder="best_path"))
    assert argmax == best


def test_repair_and_spans():
    assert repair(["I-x", "I-x", "O", "I-y", "B-x", "I-y"]) == ["B-x", "I-x", "O", "B-y", "B-x", "B-y"]
    assert spans(["B-x", "I-x", "O", "B-y", "B-y", "I-y"]) == [(0, 2, "x"), (3, 4, "y"), (4, 6, "y")]


@pytest.mark.parametrize("raw", [42, {"txt": "hi"}, {"tokens": []}, {"tokens": ["a", ""]}, "  ", "   \n"])
def test_parse_input_rejects_bad_inputs(task, raw):
    with pytest.raises(DataError):
        task.parse_input(raw)


# --------------------------------------------------------------------------------------------- metrics


def test_metrics_and_error_categories_match_a_hand_computed_example(task):
    from assistant_builder.toolkit.alignment import join_words
    from assistant_builder_tasks.ner.data import TokenExample

    def example(words, tags):
        text, offsets = join_words(words)
        return TokenExample(tuple(words), tuple(tags), text, tuple(offsets), "valid.conll:1")

    examples = [
        example(["john", "smith", "in", "oslo"], ["B-per", "I-per", "O", "B-loc"]),
        example(["today", "at", "7", "pm", "please"], ["B-time", "O", "B-time", "I-time", "O"]),
        example(["call", "mom"], ["O", "B-per"]),
    ]
    predicted = [["B-per", "I-per", "O", "B-per"], ["B-time", "O", "B-time", "O", "B-loc"], ["O", "O"]]
    predictions = [{"tags": tags, "entities": []} for tags in predicted]
    evaluation = task.evaluate(predictions, examples, LABELS)
    # gold: 5 entities; predicted: 5; correct: john smith (per), today (time)
    assert evaluation.metrics["precision"] == pytest.approx(2 / 5)
    assert evaluation.metrics["recall"] == pytest.approx(2 / 5)
    assert evaluation.metrics["f1"] == pytest.approx(0.4)
    assert evaluation.metrics["token_accuracy"] == pytest.approx(7 / 11)
    per_type = evaluation.details["per_type"]
    assert per_type["per"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per_type["time"]["recall"] == 0.5 and per_type["loc"]["f1"] == 0.0
    assert evaluation.details["error_counts"] == {"wrong type": 1, "wrong boundary": 1, "missed": 1, "spurious": 1}
    kinds = {(e["kind"], (e["gold"] or {}).get("text"), (e["predicted"] or {}).get("text")) for e in evaluation.details["errors"]}
    assert kinds == {("wrong type", "oslo", "oslo"), ("wrong boundary", "7 pm", "7"), ("spurious", None, "please"), ("missed", "mom", None)}
    report = evaluation.report
    assert "# NER report" in report and "| per | 0.500 | 0.500 | 0.500 | 2 |" in report
    assert "- wrong type: loc → per: 1" in report and "- missed per: 1" in report


def test_perfect_predictions_score_one(task):
    from assistant_builder_tasks.ner.data import TokenExample

    example = TokenExample(("in", "oslo"), ("O", "B-loc"), "in oslo", ((0, 2), (3, 7)))
    evaluation = task.evaluate([{"tags": ["O", "B-loc"], "entities": []}], [example], LABELS)
    assert evaluation.metrics == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "token_accuracy": 1.0}
    assert "None: every validation entity is found" in evaluation.report


# --------------------------------------------------------------------------------------------- model


def test_model_outputs_per_token_logits_and_round_trips(task, tiny_model_dir, tmp_path):
    import torch

    tokenizer = load_tokenizer(tiny_model_dir, 32)
    examples = [task.parse_input("call mom"), task.parse_input({"tokens": ["weather", "in", "new", "york"]})]
    examples = [type(e)(e.tokens, tags, e.text, e.offsets) for e, tags in zip(examples, [("O", "B-per"), ("O", "O", "B-loc", "I-loc")])]
    features = task.encode(examples, tokenizer, LABELS, options(task), 32)
    model = task.build_model(tiny_model_dir, LABELS, options(task)).eval()
    assert model.head_modules == ("classifier",)
    batch = task.collate(features, 0)
    assert batch["labels"].shape == batch["input_ids"].shape and int(batch["labels"][0, -1]) == -100
    with torch.no_grad():
        output = model(**batch)
        assert output["logits"].shape == (2, batch["input_ids"].shape[1], len(LABELS))
        assert torch.isfinite(output["loss"])
        unlabelled = model(**{**batch, "labels": torch.full_like(batch["labels"], -100)})
        assert float(unlabelled["loss"]) == 0.0
    task.save_model(model, tmp_path, LABELS)
    again = task.load_model(tmp_path)
    assert again.config.id2label[1] == "B-loc"
    with torch.no_grad():
        assert torch.allclose(again(batch["input_ids"], batch["attention_mask"])["logits"], output["logits"], atol=1e-5)
