"""The ``generation`` task's records (TRL ``SFTTrainer`` formats), readers, split and runtime input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from assistant_builder.errors import DataError
from assistant_builder.recipe.schema import DataSection
from assistant_builder_tasks.generation.data import (
    ROLES, Conversation, GenerationFields, Message, load_conversations, load_split, parse_generation_input, parse_record,
)

FIELDS = GenerationFields()
ANSWERED = [{"role": "user", "content": "Is the shop open?"}, {"role": "assistant", "content": "Yes, until noon."}]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- the four shapes ------------------------------------------------------------------------------------


def test_messages_record() -> None:
    row = {"messages": [{"role": "system", "content": "Be brief."}, *ANSWERED, {"role": "user", "content": "Thanks"},
                        {"role": "assistant", "content": "Welcome."}]}
    conversation = parse_record(row, "train.jsonl:1", FIELDS)
    assert conversation.kind == "messages" and conversation.source == "train.jsonl:1" and conversation.text is None
    assert conversation.messages[1] == Message("user", "Is the shop open?")
    assert conversation.completion == conversation.reference == "Welcome."
    assert conversation.prompt == conversation.messages[:-1]


def test_prompt_completion_strings() -> None:
    conversation = parse_record({"prompt": "Is the shop open?", "completion": "Yes, until noon."}, "t.csv:2", FIELDS)
    assert conversation.kind == "prompt_completion"
    assert conversation.messages == (Message("user", "Is the shop open?"), Message("assistant", "Yes, until noon."))
    assert conversation.prompt == (Message("user", "Is the shop open?"),)
    assert conversation.completion == "Yes, until noon."


def test_conversational_prompt_completion() -> None:
    row = {"prompt": [{"role": "system", "content": "Be brief."}, ANSWERED[0]], "completion": [ANSWERED[1]]}
    conversation = parse_record(row, "t.jsonl:1", FIELDS)
    assert conversation.kind == "prompt_completion"
    assert [m.role for m in conversation.messages] == ["system", "user", "assistant"]
    assert conversation.completion == "Yes, until noon."


def test_text_record() -> None:
    conversation = parse_record({"text": "The kettle clicks off when the water boils."}, "lm.jsonl:1", FIELDS)
    assert conversation == Conversation((), "text", "lm.jsonl:1", "The kettle clicks off when the water boils.")
    assert conversation.completion is None and conversation.prompt == ()


def test_custom_field_names_and_json_cells() -> None:
    fields = GenerationFields(messages="dialogue", prompt="question", completion="answer", text="body")
    assert parse_record({"dialogue": json.dumps(ANSWERED)}, "t.csv:2", fields).completion == "Yes, until noon."
    assert parse_record({"question": "Q?", "answer": "A."}, "t.csv:3", fields).completion == "A."
    assert parse_record({"body": "Plain words."}, "t.csv:4", fields).text == "Plain words."
    cells = {"question": json.dumps([ANSWERED[0]]), "answer": json.dumps([ANSWERED[1]])}
    assert parse_record(cells, "t.csv:5", fields).messages == (Message("user", "Is the shop open?"), Message("assistant", "Yes, until noon."))


def test_prompt_text_that_starts_with_a_bracket_stays_text() -> None:
    for prompt in ("[Urgent] my parcel is late", "[1, 2]", "[]"):
        conversation = parse_record({"prompt": prompt, "completion": "[Sorry] it ships today."}, "t.csv:2", FIELDS)
        assert conversation.messages == (Message("user", prompt), Message("assistant", "[Sorry] it ships today."))


# -- located errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "expected"), [
    ({"messages": [{"role": "tool", "content": "42"}, *ANSWERED]},
     r"^train\.jsonl:3: messages\[1\]: unknown role 'tool'; expected one of system, user, assistant$"),
    ({"messages": [{"role": "user", "content": 7}, ANSWERED[1]]}, r"^train\.jsonl:3: messages\[1\]: expected \"content\" to be a string"),
    ({"messages": [{"role": "user"}, ANSWERED[1]]}, r"^train\.jsonl:3: messages\[1\]: expected \"content\" to be a string"),
    ({"messages": [ANSWERED[0], {"role": "assistant", "content": "  "}]}, r"^train\.jsonl:3: messages\[2\]: empty assistant message"),
    ({"messages": [ANSWERED[0]]}, r"^train\.jsonl:3: messages: no assistant message"),
    ({"messages": []}, r"^train\.jsonl:3: messages: expected a non-empty list"),
    ({"messages": "[{\"role\": \"user\""}, r"^train\.jsonl:3: messages: malformed JSON list"),
    ({"prompt": "Q?", "completion": " "}, r"^train\.jsonl:3: completion: empty completion"),
    ({"prompt": "", "completion": "A."}, r"^train\.jsonl:3: prompt: empty prompt"),
    ({"prompt": "Q?"}, r"^train\.jsonl:3: missing field 'completion'"),
    ({"completion": "A."}, r"^train\.jsonl:3: missing field 'prompt'"),
    ({"prompt": [ANSWERED[0]], "completion": [ANSWERED[0]]}, r"^train\.jsonl:3: completion: expected assistant messages only"),
    ({"text": ""}, r"^train\.jsonl:3: text: expected non-empty text"),
    ({"question": "Q?", "label": "x"}, r"^train\.jsonl:3: expected a field 'messages', 'prompt' \+ 'completion', or 'text'; "
                                       r"found label, question$"),
])
def test_record_errors_are_located(row: dict, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        parse_record(row, "train.jsonl:3", FIELDS)


def test_roles() -> None:
    assert ROLES == ("system", "user", "assistant")


# -- files ----------------------------------------------------------------------------------------------


def test_jsonl_file_and_error_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "train.jsonl", [{"messages": ANSWERED}, {"prompt": "Q?", "completion": "A."}, {"text": "Words."}])
    conversations = load_conversations(path, "auto", FIELDS)
    assert [c.kind for c in conversations] == ["messages", "prompt_completion", "text"]
    assert [c.source for c in conversations] == [f"{path}:{n}" for n in (1, 2, 3)]
    _jsonl(path, [{"messages": ANSWERED}, {"prompt": "Q?", "completion": "A."},
                  {"messages": [{"role": "robot", "content": "beep"}, ANSWERED[1]]}])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:3: messages\[1\]: unknown role 'robot'"):
        load_conversations(path, "auto", FIELDS)


def test_csv_file_with_strings_and_a_json_messages_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "completion"])
        writer.writerow(["Is the shop open?", "Yes, until noon."])
        writer.writerow(["Do you sell bread, too?", "Yes: rye and spelt."])
    conversations = load_conversations(path, "auto", FIELDS)
    assert [c.completion for c in conversations] == ["Yes, until noon.", "Yes: rye and spelt."]
    assert [c.source for c in conversations] == [f"{path}:2", f"{path}:3"]

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["messages"])
        writer.writerow([json.dumps(ANSWERED)])
        writer.writerow([json.dumps([ANSWERED[0], {"role": "assistant", "content": ""}])])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:3: messages\[2\]: empty assistant message"):
        load_conversations(path, "csv", FIELDS)


def test_parquet_file_with_message_lists(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"messages": [ANSWERED, [ANSWERED[0], {"role": "assistant", "content": "No."}]]}), path)
    conversations = load_conversations(path, "auto", FIELDS)
    assert [c.completion for c in conversations] == ["Yes, until noon.", "No."]
    assert conversations[1].source == f"{path}:2"


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no examples"):
        load_conversations(path, "auto", FIELDS)


# -- split ----------------------------------------------------------------------------------------------


def test_held_out_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "train.jsonl", [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(20)])
    data = DataSection(train=path, validation_split=0.2, split_seed=3)
    train, validation, sources = load_split(data, FIELDS)
    assert (len(train), len(validation)) == (16, 4)
    assert {c.source for c in train}.isdisjoint(c.source for c in validation)
    assert sorted(c.source for c in train + validation) == sorted(f"{path}:{n}" for n in range(1, 21))
    assert sources == {"train": path, "validation": path}
    again = load_split(data, FIELDS)
    assert [c.source for c in again[1]] == [c.source for c in validation]
    other = load_split(DataSection(train=path, validation_split=0.2, split_seed=4), FIELDS)
    assert [c.source for c in other[1]] != [c.source for c in validation]


def test_held_out_split_keeps_at_least_one_and_needs_two(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "train.jsonl", [{"text": "One."}, {"text": "Two."}, {"text": "Three."}])
    train, validation, _ = load_split(DataSection(train=path, validation_split=0.1), FIELDS)
    assert (len(train), len(validation)) == (2, 1)
    _jsonl(path, [{"text": "Alone."}])
    with pytest.raises(DataError, match="at least 2"):
        load_split(DataSection(train=path), FIELDS)


def test_validation_file(tmp_path: Path) -> None:
    train_path = _jsonl(tmp_path / "train.jsonl", [{"text": "One."}])
    validation_path = _jsonl(tmp_path / "dev.jsonl", [{"messages": ANSWERED}, {"text": "Two."}])
    train, validation, sources = load_split(DataSection(train=train_path, validation=validation_path), FIELDS)
    assert (len(train), len(validation)) == (1, 2)
    assert sources == {"train": train_path, "validation": validation_path}


# -- runtime input --------------------------------------------------------------------------------------


def test_generation_inputs() -> None:
    assert parse_generation_input("Is the shop open?").messages == (Message("user", "Is the shop open?"),)
    assert parse_generation_input({"prompt": "Is the shop open?"}).messages == (Message("user", "Is the shop open?"),)
    prompt = [{"role": "system", "content": "Be brief."}, ANSWERED[0]]
    assert [m.role for m in parse_generation_input({"prompt": prompt}).messages] == ["system", "user"]
    conversation = parse_generation_input({"messages": [*ANSWERED, {"role": "user", "content": "And tomorrow?"}]})
    assert conversation.prompt == conversation.messages and conversation.completion is None
    assert len(conversation.messages) == 3


@pytest.mark.parametrize(("raw", "expected", "example_hint"), [
    ("  ", "non-empty prompt", True),
    (42, "expected a prompt string or an object", True),
    ({"question": "Q?"}, "expected a field \"prompt\" or \"messages\", got keys question", True),
    ({"messages": ANSWERED}, "^messages: the conversation ends with an assistant message", True),
    ({"messages": [{"role": "tool", "content": "x"}]}, r"^messages\[1\]: unknown role 'tool'", False),
])
def test_generation_input_errors(raw: object, expected: str, example_hint: bool) -> None:
    with pytest.raises(DataError, match=expected) as caught:
        parse_generation_input(raw)
    assert bool(caught.value.hint and "e.g." in caught.value.hint) == example_hint
