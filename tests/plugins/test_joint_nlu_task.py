"""The third-party ``joint_nlu`` task (examples/plugins/builder-joint-nlu) through its public contract:
readers, label checks, encoding, decoding, metrics and the model, registered with the plugin-author
fixtures rather than through the installed entry point."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from assistant_builder.errors import DataError
from assistant_builder.recipe.schema import DataSection
from assistant_builder.testing import conformance_tests
from assistant_builder.tokenization import load_tokenizer

joint_nlu = pytest.importorskip("builder_joint_nlu", reason="install the plugin: pip install examples/plugins/builder-joint-nlu")

from assistant_builder.toolkit.alignment import join_words  # noqa: E402
from assistant_builder.toolkit.tags import repair  # noqa: E402
from assistant_builder.toolkit.tags import spans_from_tags as spans  # noqa: E402
from builder_joint_nlu.data import JointExample, TagRepairWarning, TruncationWarning  # noqa: E402
from builder_joint_nlu.tags import combined_labels, split_labels  # noqa: E402

PACKAGE = Path(joint_nlu.__file__).parent
INTENTS = ["lights", "music"]
TYPES = ["room", "artist"]
LABELS = combined_labels(INTENTS, TYPES)  # intent:lights, intent:music, O, B-room, I-room, B-artist, I-artist


@pytest.fixture
def task(monkeypatch, request):
    """The task as a plugin author tests it: only the built-ins plus this plugin object, no entry points."""
    monkeypatch.setenv("ASSISTANT_BUILDER_DISABLE_ENTRY_POINTS", "1")
    registry = request.getfixturevalue("register_plugin")(joint_nlu)
    return registry.create("task", "joint_nlu")


def options(task, **values):
    return task.Options.model_validate(values)


def write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def load(task, train: Path, validation: Path | None = None, **opts):
    return task.load_data(DataSection(train=train, validation=validation or train), options(task, **opts))


ROWS = [
    {"text": "Dim the living room, please!", "intent": "lights", "slots": [{"start": 8, "end": 19, "label": "room"}]},
    {"text": "play Nina Simone", "intent": "music", "slots": [{"start": 5, "end": 16, "label": "artist"}]},
    {"tokens": ["lights", "off", "in", "the", "hall"], "tags": ["O", "O", "O", "O", "B-room"], "intent": "lights"},
]


# --------------------------------------------------------------------------------------------- registration


def test_task_declares_the_full_contract(task):
    assert task.labelling_kind == "token_spans"
    assert task.primary_metric == "exact_match" and task.primary_metric in task.metric_names
    assert {"intent_accuracy", "slot_f1", "exact_match"} <= set(task.metric_names)
    assert task.output_names == ("intent_logits", "slot_logits") and task.sequence_outputs == ("slot_logits",)
    assert set(task.data_formats) == {"jsonl", "seq"}
    with pytest.raises(ValidationError):
        options(task, pooling="max")
    with pytest.raises(ValidationError):
        options(task, unknown_key=1)
    with pytest.raises(ValidationError, match="duplicates"):
        options(task, intents=["a", "a"])
    with pytest.raises(ValidationError, match="without B-/I- prefixes"):
        options(task, slot_types=["B-city"])


# the host's conformance suite (what `builder plugins check joint_nlu` runs), strict: no skips or warnings
test_joint_nlu_conforms = conformance_tests(joint_nlu.JointNluTask, strict=True)


def test_sample_data_is_readable_with_default_options(task, tmp_path):
    section = task.sample_data(tmp_path)
    loaded = load(task, tmp_path / section["train"], tmp_path / section["validation"])
    assert len(loaded.train) == 6 and len(loaded.validation) == 3
    assert loaded.train[1].tags == ("O", "O", "B-room", "O", "O", "B-level", "I-level")


def test_plugin_imports_only_the_public_core_and_no_heavy_library_at_module_level():
    from assistant_builder.toolkit import TORCH_FREE_MODULES, TORCH_MODULES

    allowed = ("assistant_builder.contracts", "assistant_builder.errors", "assistant_builder.hookspecs", "assistant_builder.batching",
               "assistant_builder.atomic", "assistant_builder.datasources",
               *(f"assistant_builder.toolkit.{module}" for module in (*TORCH_FREE_MODULES, *TORCH_MODULES)))
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith("assistant_builder_"), f"{source.name} imports built-in plugin {name}"
                if name.startswith("assistant_builder"):
                    assert name in allowed, f"{source.name} imports {name}"
    script = ("import sys, builder_joint_nlu.task, builder_joint_nlu.data, builder_joint_nlu.metrics\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'sklearn', 'seqeval', 'onnx')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------- readers


def test_reads_jsonl_text_with_character_slots_and_token_rows(task, tmp_path):
    loaded = load(task, write(tmp_path / "train.jsonl", ROWS))
    first, second, third = loaded.train
    assert first.tokens == ("Dim", "the", "living", "room", ",", "please", "!")
    assert first.tags == ("O", "O", "B-room", "I-room", "O", "O", "O") and first.intent == "lights"
    assert first.text == "Dim the living room, please!" and first.offsets[3] == (15, 19)
    assert second.tags == ("O", "B-artist", "I-artist") and second.source.endswith("train.jsonl:2")
    assert third.text == "lights off in the hall" and third.offsets[4] == (18, 22)
    assert loaded.labels == ["intent:lights", "intent:music", "O", "B-artist", "I-artist", "B-room", "I-room"]
    assert split_labels(loaded.labels) == (["lights", "music"], ["O", "B-artist", "I-artist", "B-room", "I-room"])


def write_seq(folder: Path, words: str, tags: str, intents: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "seq.in").write_text(words)
    (folder / "seq.out").write_text(tags)
    (folder / "label").write_text(intents)
    return folder


def test_reads_the_atis_snips_folder_layout_from_the_folder_or_seq_in(task, tmp_path):
    folder = write_seq(tmp_path / "train", "turn on the kitchen light \nplay adele\n", "O O O B-room O \nO B-artist\n", "lights\nmusic\n")
    for path in (folder, folder / "seq.in"):
        loaded = task.load_data(DataSection(train=path, validation=path, format="auto"), options(task))
        assert [(e.tokens, e.intent) for e in loaded.train] == [(("turn", "on", "the", "kitchen", "light"), "lights"), (("play", "adele"), "music")]
        assert loaded.train[1].tags == ("O", "B-artist") and loaded.train[1].source.endswith("seq.in:2")
        assert {k: v.name for k, v in loaded.sources.items()} == {
            "train": "seq.in", "train_tags": "seq.out", "train_intents": "label",
            "validation": "seq.in", "validation_tags": "seq.out", "validation_intents": "label"}


@pytest.mark.parametrize(("rows", "message"), [
    (['{"text": "hi", "intent": "a", "slots": []', ], "train.jsonl:1: malformed JSON"),
    ([{"text": "hi there", "slots": []}], "train.jsonl:1: missing field 'intent'"),
    ([{"text": "hi there", "intent": "a"}], "train.jsonl:1: missing field 'slots'"),
    ([{"text": "hi there", "intent": "a", "slots": []}, {"text": "in paris", "intent": "b", "slots": [{"start": 3, "end": 6, "label": "city"}]}],
     "train.jsonl:2: slot 1 ('par', 3-6) starts or ends inside the word 'paris'"),
    ([{"text": "new york", "intent": "a", "slots": [{"start": 0, "end": 8, "label": "city"}, {"start": 4, "end": 8, "label": "x"}]}],
     "train.jsonl:1: slot 2 ('york') overlaps slot 1"),
    ([{"text": "paris", "intent": "a", "slots": [{"start": 0, "end": 5, "label": "B-city"}]}], "train.jsonl:1: slot 1: 'label' must be a slot type"),
    ([{"tokens": ["in", "paris"], "tags": ["O"], "intent": "a"}], "train.jsonl:1: 1 tags for 2 tokens"),
    ([{"tokens": ["in", "paris"], "tags": ["O", "X-city"], "intent": "a"}], "train.jsonl:1: word 2: expected 'O', 'B-TYPE' or 'I-TYPE'"),
    ([{"text": "hi", "intent": 3, "slots": []}], "train.jsonl:1: field 'intent' must be a non-empty string"),
])
def test_bad_jsonl_is_located(task, tmp_path, rows, message):
    with pytest.raises(DataError) as error:
        load(task, write(tmp_path / "train.jsonl", rows))
    assert message in error.value.message


@pytest.mark.parametrize(("words", "tags", "intents", "message"), [
    ("a b\nc d\n", "O O\nO O O\n", "x\ny\n", "seq.out:2: 3 tags for the 2 words on seq.in:2"),
    ("a b\nc d\n", "O O\nO O\n", "x\n", "seq.in:2: no matching line in label"),
    ("a b\nc d\n", "O O\nO O\n", "x\ntwo words\n", "label:2: expected one intent name (no spaces), got 'two words'"),
    ("a b\nc d\n", "O O\nO Z-x\n", "x\ny\n", "seq.out:2: word 2: expected 'O', 'B-TYPE' or 'I-TYPE'"),
])
def test_bad_seq_files_are_located(task, tmp_path, words, tags, intents, message):
    folder = write_seq(tmp_path / "train", words, tags, intents)
    with pytest.raises(DataError) as error:
        load(task, folder)
    assert message in error.value.message


def test_missing_label_file_is_reported(task, tmp_path):
    folder = write_seq(tmp_path / "train", "a\n", "O\n", "x\n")
    (folder / "label").unlink()
    with pytest.raises(DataError, match="needs label"):
        load(task, folder)


def test_invalid_tag_sequences_are_repaired_with_a_warning_or_rejected(task, tmp_path):
    rows = [{"tokens": ["in", "new", "york"], "tags": ["O", "I-city", "I-city"], "intent": "a"},
            {"tokens": ["hi"], "tags": ["O"], "intent": "b"}]
    path = write(tmp_path / "train.jsonl", rows)
    with pytest.warns(TagRepairWarning, match="repaired 1 invalid tag sequence"):
        assert load(task, path).train[0].tags == ("O", "B-city", "I-city")
    with pytest.raises(DataError, match=r"train.jsonl:1: invalid IOB2 sequence: 'I-city' \(word 'new'\) follows 'O'"):
        load(task, path, invalid_tags="error")


def test_label_set_checks(task, tmp_path):
    train = write(tmp_path / "train.jsonl", ROWS)
    only_one = write(tmp_path / "one.jsonl", [ROWS[0]])
    with pytest.raises(DataError, match="only one intent"):
        load(task, only_one)
    no_slots = write(tmp_path / "noslots.jsonl", [{"text": "hi", "intent": "a", "slots": []}, {"text": "yo", "intent": "b", "slots": []}])
    with pytest.raises(DataError, match="no slots"):
        load(task, no_slots)
    declared = load(task, train, intents=["music", "lights", "alarm"], slot_types=["room", "artist", "time"])
    assert declared.labels[:3] == ["intent:music", "intent:lights", "intent:alarm"]
    assert declared.labels[3:] == ["O", "B-room", "I-room", "B-artist", "I-artist", "B-time", "I-time"]
    with pytest.raises(DataError, match="train.jsonl:2: intent 'music' is not in task.options.intents"):
        load(task, train, intents=["lights", "alarm"])
    with pytest.raises(DataError, match="train.jsonl:2: slot type 'artist' is not in task.options.slot_types"):
        load(task, train, slot_types=["room"])


def test_validation_labels_unseen_in_training_fail_or_count_as_wrong(task, tmp_path, tiny_model_dir):
    train = write(tmp_path / "train.jsonl", ROWS)
    valid = write(tmp_path / "valid.jsonl", [{"text": "wake me at 7", "intent": "alarm", "slots": [{"start": 11, "end": 12, "label": "time"}]},
                                             {"text": "play adele", "intent": "music", "slots": [{"start": 5, "end": 10, "label": "artist"}]}])
    with pytest.raises(DataError, match="valid.jsonl:1: validation intent 'alarm' never appears in training"):
        load(task, train, valid)
    loaded = load(task, train, valid, unseen_labels="count_as_wrong")
    assert "intent:alarm" not in loaded.labels and "B-time" not in loaded.labels
    features = task.encode(loaded.validation, load_tokenizer(tiny_model_dir, 32), loaded.labels, options(task), 32)
    assert features[0]["intent_labels"] == -100 and set(features[0]["slot_labels"]) == {-100, 0}
    predictions = [{"intent": "lights", "intent_score": 0.9, "tags": ["O"] * 4, "entities": []},
                   {"intent": "music", "intent_score": 0.9, "tags": ["O", "B-artist"], "entities": []}]
    metrics = task.evaluate(predictions, loaded.validation, loaded.labels).metrics
    assert metrics["intent_accuracy"] == 0.5 and metrics["exact_match"] == 0.5 and metrics["slot_recall"] == 0.5


def test_validation_is_held_out_when_absent(task, tmp_path):
    rows = [{"text": f"play song {i}", "intent": "music", "slots": [{"start": 10, "end": 10 + len(str(i)), "label": "song"}]} for i in range(10)]
    rows += [{"text": f"dim room {i}", "intent": "lights", "slots": [{"start": 4, "end": 8, "label": "room"}]} for i in range(10)]
    data = DataSection(train=write(tmp_path / "train.jsonl", rows), validation_split=0.2, split_seed=3)
    loaded = task.load_data(data, options(task))
    assert len(loaded.train) == 16 and len(loaded.validation) == 4
    assert {e.text for e in loaded.train}.isdisjoint({e.text for e in loaded.validation})


# --------------------------------------------------------------------------------------------- encoding and decoding


def labelled(example: JointExample, intent: str, tags: tuple[str, ...]) -> JointExample:
    return JointExample(example.tokens, example.text, example.offsets, intent, tags, "test:1")


def test_encode_labels_the_first_sub_token_of_each_word_and_the_intent(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    example = labelled(task.parse_input({"tokens": ["play", "xyzzy", "in", "london"]}), "music", ("O", "B-artist", "O", "B-room"))
    [feature] = task.encode([example], tokenizer, LABELS, options(task), 32)
    pieces = [tokenizer.id_to_token(i) for i in feature["input_ids"]]
    assert pieces == ["[CLS]", "play", "x", "##y", "##z", "##z", "##y", "in", "london", "[SEP]"]
    tag_id = {tag: i for i, tag in enumerate(split_labels(LABELS)[1])}
    assert feature["slot_labels"] == [-100, 0, tag_id["B-artist"], -100, -100, -100, -100, 0, tag_id["B-room"], -100]
    assert feature["intent_labels"] == 1 and feature["first_tokens"] == [(0, 1), (1, 2), (2, 7), (3, 8)]
    [unlabelled] = task.encode([task.parse_input("play adele")], tokenizer, LABELS, options(task), 32)
    assert "intent_labels" not in unlabelled and "slot_labels" not in unlabelled


def fake_outputs(task, tokenizer, examples, intents, word_tags, max_length=32):
    """Features for ``examples`` and model outputs whose argmax is ``intents[i]`` and ``word_tags[i][word]``."""
    intent_names, tags = split_labels(LABELS)
    features = task.encode(examples, tokenizer, LABELS, options(task), max_length)
    intent_logits, slot_logits = [], []
    for feature, intent, chosen in zip(features, intents, word_tags):
        intent_logits.append(np.where(np.arange(len(intent_names)) == intent_names.index(intent), 3.0, 0.0).astype(np.float32))
        values = np.zeros((len(feature["input_ids"]), len(tags)), dtype=np.float32)
        values[:, 0] = 1.0
        for word, position in feature["first_tokens"]:
            if word in chosen:
                values[position, tags.index(chosen[word])] = 4.0 + word
        slot_logits.append(values)
    return features, {"intent_logits": intent_logits, "slot_logits": slot_logits}


def test_decode_gives_intent_scores_and_slots_with_character_offsets(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    text = "Play Nina Simone in the Living-Room!"
    example = task.parse_input(text)
    assert example.tokens == ("Play", "Nina", "Simone", "in", "the", "Living", "-", "Room", "!")
    tags = {1: "B-artist", 2: "I-artist", 5: "B-room", 6: "I-room", 7: "I-room"}
    features, outputs = fake_outputs(task, tokenizer, [example], ["music"], [tags])
    [prediction] = task.decode(outputs, features, [example], LABELS, options(task, top_k=5))
    assert prediction["intent"] == "music"
    assert prediction["intent_score"] == pytest.approx(math.exp(3) / (math.exp(3) + 1))
    assert [t["label"] for t in prediction["intent_top"]] == ["music", "lights"]  # top_k capped at the intent count
    assert [(e["label"], e["start"], e["end"], e["text"]) for e in prediction["entities"]] == [
        ("artist", 5, 16, "Nina Simone"), ("room", 24, 35, "Living-Room")]
    for entity in prediction["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"] and 0 < entity["score"] <= 1
    assert prediction["tags"][5:8] == ["B-room", "I-room", "I-room"]
    assert task.prediction_key(prediction) == ("music", ((5, 16, "artist"), (24, 35, "room")))
    json.dumps(prediction)


def test_decode_repairs_invalid_sequences_and_keeps_example_order(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 32)
    examples = [task.parse_input("dim the hall"), task.parse_input({"tokens": ["play", "adele", "now"]})]
    features, outputs = fake_outputs(task, tokenizer, examples, ["lights", "music"], [{2: "I-room"}, {1: "I-artist", 2: "I-room"}])
    first, second = task.decode(outputs, features, examples, LABELS, options(task, top_k=1))
    assert first["tags"] == ["O", "O", "B-room"] and first["intent"] == "lights" and len(first["intent_top"]) == 1
    assert second["tags"] == ["O", "B-artist", "B-room"] and second["entities"][0]["text"] == "adele"
    assert task.decode({"intent_logits": [], "slot_logits": []}, [], [], LABELS, options(task)) == []


def test_utterances_longer_than_max_length_are_cut_with_a_warning(task, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir, 8)
    words = ("dim", "the", "lights", "in", "the", "morning", "and", "the", "evening")
    example = labelled(task.parse_input({"tokens": list(words)}), "lights", ("O",) * 5 + ("B-room", "O", "O", "B-room"))
    with pytest.warns(TruncationWarning, match="1 labelled utterance is longer than model.max_length = 8"):
        [feature] = task.encode([example], tokenizer, LABELS, options(task), 8)
    assert len(feature["input_ids"]) == 8 and [w for w, _ in feature["first_tokens"]] == list(range(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features, outputs = fake_outputs(task, tokenizer, [task.parse_input(" ".join(words))], ["lights"], [{5: "B-room"}], 8)
    [prediction] = task.decode(outputs, features, [task.parse_input(" ".join(words))], LABELS, options(task))
    assert len(prediction["tags"]) == 9 and prediction["tags"][6:] == ["O", "O", "O"]
    assert [e["text"] for e in prediction["entities"]] == ["morning"]


@pytest.mark.parametrize("raw", [42, {"txt": "hi"}, {"tokens": []}, {"tokens": ["a", ""]}, "  ", ""])
def test_parse_input_rejects_bad_inputs(task, raw):
    with pytest.raises(DataError):
        task.parse_input(raw)


def test_tag_helpers():
    assert repair(["I-x", "I-x", "O", "I-y", "B-x", "I-y"]) == ["B-x", "I-x", "O", "B-y", "B-x", "B-y"]
    assert spans(["B-x", "I-x", "O", "B-y", "B-y", "I-y"]) == [(0, 2, "x"), (3, 4, "y"), (4, 6, "y")]
    assert split_labels(combined_labels(["a:b", "c"], ["intent"])) == (["a:b", "c"], ["O", "B-intent", "I-intent"])


# --------------------------------------------------------------------------------------------- metrics


def example(words, intent, tags, line=1):
    text, offsets = join_words(words)
    return JointExample(tuple(words), text, tuple(offsets), intent, tuple(tags), f"valid.jsonl:{line}")


def test_metrics_match_a_hand_computed_example(task):
    examples = [
        example(["dim", "the", "living", "room"], "lights", ["O", "O", "B-room", "I-room"], 1),
        example(["play", "adele", "in", "the", "hall"], "music", ["O", "B-artist", "O", "O", "B-room"], 2),
        example(["play", "queen"], "music", ["O", "B-artist"], 3),
        example(["lights", "off"], "lights", ["O", "O"], 4),
    ]
    predicted = [("lights", ["O", "O", "B-room", "I-room"]),          # exact
                 ("music", ["O", "B-artist", "O", "O", "B-artist"]),   # wrong slot type
                 ("lights", ["O", "B-artist"]),                        # wrong intent
                 ("lights", ["B-room", "O"])]                          # spurious slot
    predictions = [{"intent": i, "intent_score": 0.5 + n / 10, "tags": t, "entities": []} for n, (i, t) in enumerate(predicted)]
    evaluation = task.evaluate(predictions, examples, LABELS)
    m = evaluation.metrics
    assert set(m) == set(task.metric_names)
    assert m["intent_accuracy"] == 0.75 and m["exact_match"] == 0.25
    # gold slots: living room, adele, hall, queen (4); predicted: living room, adele, hall(artist), queen, lights(room) (5); correct 3
    assert m["slot_precision"] == pytest.approx(3 / 5) and m["slot_recall"] == pytest.approx(3 / 4)
    assert m["slot_f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    # intents: lights P 2/3 R 1, music P 1 R 1/2 -> F1 0.8 and 2/3
    assert m["intent_macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    details = evaluation.details
    assert details["labels"] == INTENTS and details["confusion_matrix"] == [[2, 0], [1, 1]]
    assert details["error_counts"] == {"wrong type": 1, "wrong boundary": 0, "missed": 0, "spurious": 1}
    assert [(e["kind"], e["source"]) for e in details["errors"]] == [
        ("slots", "valid.jsonl:4"), ("intent", "valid.jsonl:3"), ("slots", "valid.jsonl:2")]
    assert details["errors"][2]["gold"] == "music (artist: adele, room: hall)"
    assert details["errors"][2]["predicted"] == "music (artist: adele, artist: hall)"
    report = evaluation.report
    assert report.startswith("# Joint intent + slot report") and "| exact_match | 0.2500 |" in report
    assert "| music | 1.000 | 0.500 | 0.667 | 2 |" in report and "music → lights (1)" in report
    assert "| play queen | intent | music (artist: queen) | lights (artist: queen) |" in report


def test_perfect_predictions_score_one(task):
    examples = [example(["play", "queen"], "music", ["O", "B-artist"]), example(["dim", "it"], "lights", ["O", "O"])]
    predictions = [{"intent": e.intent, "intent_score": 1.0, "tags": list(e.tags), "entities": []} for e in examples]
    evaluation = task.evaluate(predictions, examples, LABELS)
    assert all(value == 1.0 for value in evaluation.metrics.values()), evaluation.metrics
    assert "None: every validation utterance has the right intent and slots." in evaluation.report


# --------------------------------------------------------------------------------------------- model


def test_model_has_both_heads_trains_on_the_summed_loss_and_round_trips(task, tiny_model_dir, tmp_path):
    import torch

    tokenizer = load_tokenizer(tiny_model_dir, 32)
    examples = [labelled(task.parse_input("play adele"), "music", ("O", "B-artist")),
                labelled(task.parse_input("dim the hall lights"), "lights", ("O", "O", "B-room", "O"))]
    features = task.encode(examples, tokenizer, LABELS, options(task), 32)
    model = task.build_model(tiny_model_dir, LABELS, options(task, dropout=0.0)).eval()
    assert model.head_modules == ("intent_classifier", "slot_classifier")
    batch = task.collate(features, 0)
    assert batch["intent_labels"].tolist() == [1, 0] and batch["slot_labels"].shape == batch["input_ids"].shape
    with torch.no_grad():
        output = model(**batch)
        assert output["intent_logits"].shape == (2, 2)
        assert output["slot_logits"].shape == (2, batch["input_ids"].shape[1], 5)
        intent_only = model(batch["input_ids"], batch["attention_mask"], intent_labels=batch["intent_labels"])["loss"]
        slots_only = model(batch["input_ids"], batch["attention_mask"], slot_labels=batch["slot_labels"])["loss"]
        assert float(output["loss"]) == pytest.approx(float(intent_only + slots_only), rel=1e-5)
        model.slot_loss_weight = 2.0
        assert float(model(**batch)["loss"]) == pytest.approx(float(intent_only + 2 * slots_only), rel=1e-5)
        ignored = model(**{**batch, "slot_labels": torch.full_like(batch["slot_labels"], -100)})["loss"]
        assert float(ignored) == pytest.approx(float(intent_only), rel=1e-5)
    task.save_model(model, tmp_path, LABELS)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert "joint_nlu_heads.safetensors" in saved and "joint_nlu_heads.json" in saved
    assert not [name for name in saved if name.endswith((".bin", ".pt", ".pkl", ".pickle"))], saved
    assert json.loads((tmp_path / "joint_nlu_heads.json").read_text())["intents"] == INTENTS
    again = task.load_model(tmp_path)
    assert not again.training
    with torch.no_grad():
        reloaded = again(batch["input_ids"], batch["attention_mask"])
    for name in task.output_names:
        assert torch.allclose(reloaded[name], output[name], atol=1e-5)
