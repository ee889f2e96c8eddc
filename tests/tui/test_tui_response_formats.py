"""The ``response`` labelling kind (``generation``): import TRL records into the store, export them back,
read by the generation task unchanged; located errors; ``builder tui --import/--export`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant_builder.cli.main import main
from assistant_builder.errors import DataError
from assistant_builder.labelling.formats import export_file, import_file
from assistant_builder.labelling.responses import ResponseFields
from assistant_builder.labelling.store import LABELLED, TODO, LabelStore

SYSTEM = {"role": "system", "content": "Answer in one sentence."}
RECORDS = [
    {"messages": [SYSTEM, {"role": "user", "content": "How do I reset the lamp?"},
                  {"role": "assistant", "content": "Hold the button for five seconds."}]},
    {"prompt": "Is it waterproof?", "completion": "No, keep it dry."},
    {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]},
    {"prompt": "Does it come in blue?"},
    {"messages": [{"role": "user", "content": "It blinks red"}, {"role": "assistant", "content": "Charge it."},
                  {"role": "user", "content": "Still blinks"}]},
]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_splits_prompt_and_response_and_export_writes_trl_messages(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        assert import_file(store, write_jsonl(tmp_path / "in.jsonl", RECORDS), "response") == (5, 0)
        items = list(store.items())
        assert [i.status for i in items] == [LABELLED, LABELLED, LABELLED, TODO, TODO]
        assert items[0].payload == {"messages": RECORDS[0]["messages"][:2]} and items[0].gold == "Hold the button for five seconds."
        assert items[1].payload == {"messages": [{"role": "user", "content": "Is it waterproof?"}]} and items[1].gold == "No, keep it dry."
        assert items[4].payload == {"messages": RECORDS[4]["messages"]} and items[4].gold is None  # ends with the user: open
        assert items[0].source == "in.jsonl:1"
        progress = store.progress()
        assert progress.labelled == 3 and progress.per_label == {} and store.labels() == []  # responses are not label names
        store.decide(items[3].id, "Only in white.")
        assert import_file(store, tmp_path / "in.jsonl", "response") == (0, 5)  # a re-import keeps the decisions
        assert export_file(store, tmp_path / "out.jsonl", "response") == 4
        assert export_file(store, tmp_path / "out.csv", "response") == 4
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows[0] == RECORDS[0]
    assert rows[1] == {"messages": [{"role": "user", "content": "Is it waterproof?"}, {"role": "assistant", "content": "No, keep it dry."}]}
    assert rows[3]["messages"][-1] == {"role": "assistant", "content": "Only in white."}


def test_export_feeds_the_generation_task_and_agrees_with_its_store_records(tmp_path: Path) -> None:
    from assistant_builder.registry import build_registry

    task = build_registry().create("task", "generation")
    options = task.Options()
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        import_file(store, write_jsonl(tmp_path / "in.jsonl", RECORDS), "response")
        export_file(store, tmp_path / "train.jsonl", "response")
        export_file(store, tmp_path / "train.csv", "response")
        stored = [(i.payload, i.gold) for i in store.items(LABELLED)]
    for name in ("train.jsonl", "train.csv"):
        data = SimpleNamespace(train=tmp_path / name, validation=tmp_path / name, format="auto", dataset_train_split="train",
                               dataset_validation_split="validation")
        examples = task.load_data(data, options).train
        assert [(e.completion, len(e.prompt)) for e in examples] == [("Hold the button for five seconds.", 2), ("No, keep it dry.", 1),
                                                                    ("Hello!", 1)]
        # the task's own store shape (builder serve --feedback, data.extra) is the one the import made
        assert [(r.payload, r.gold) for r in map(task.to_store, examples)] == stored


def test_plain_text_lines_are_prompts_and_field_names_follow_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "inbox.txt").write_text("Where is the charger?\n\nCan I dim it?\n")
    write_jsonl(tmp_path / "custom.jsonl", [{"question": "Why?", "answer": "Because."}, {"chat": [{"role": "user", "content": "Hey"}]}])
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        assert import_file(store, tmp_path / "inbox.txt", "response") == (2, 0)
        fields = ResponseFields.from_options({"messages_field": "chat", "prompt_field": "question", "completion_field": "answer"})
        assert import_file(store, tmp_path / "custom.jsonl", "response", fields=fields) == (2, 0)
        items = list(store.items())
        assert items[0].payload == {"messages": [{"role": "user", "content": "Where is the charger?"}]} and items[0].source == "inbox.txt:1"
        assert items[2].gold == "Because." and items[3].payload == {"messages": [{"role": "user", "content": "Hey"}]}
        export_file(store, tmp_path / "out.jsonl", "response", messages_field="chat")
    assert list(json.loads((tmp_path / "out.jsonl").read_text()).keys()) == ["chat"]


@pytest.mark.parametrize(("record", "message"), [
    ({"messages": [{"role": "tool", "content": "x"}]}, r"bad.jsonl:2: messages\[1\]: unknown role 'tool'; expected one of system, user"),
    ({"messages": [{"role": "user", "content": 3}]}, r"bad.jsonl:2: messages\[1\]: expected \"content\" to be a string"),
    ({"messages": []}, r"bad.jsonl:2: messages: expected a non-empty list"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, r"bad.jsonl:2: messages: no user or system message before the response"),
    ({"prompt": "Hi", "completion": "  "}, r"bad.jsonl:2: completion: empty completion"),
    ({"completion": "Hello"}, r"bad.jsonl:2: missing field 'prompt'"),
    ({"text": "a story"}, r"bad.jsonl:2: expected a field 'messages', or 'prompt' \(and 'completion'\); found text \(a plain 'text' record"),
    ({"prompt": "Hi", "completion": [{"role": "user", "content": "x"}]}, r"bad.jsonl:2: completion: expected assistant messages only"),
])
def test_bad_records_are_located_and_add_nothing(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    write_jsonl(tmp_path / "bad.jsonl", [RECORDS[1], record])
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        with pytest.raises(DataError, match=message):
            import_file(store, tmp_path / "bad.jsonl", "response")
        assert store.progress().total == 0


def test_bad_csv_cell_and_file_types_are_located(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text('messages\n"[{""role"": ""user"""\n')
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        with pytest.raises(DataError, match=r"bad.csv:2: messages: malformed JSON list of messages"):
            import_file(store, tmp_path / "bad.csv", "response")
        with pytest.raises(DataError, match=r"cannot import '.conll' files for response labelling; expected one of: .txt"):
            import_file(store, tmp_path / "x.conll", "response")


def test_export_names_an_item_that_is_not_a_conversation(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        store.add_items([({"text": "not a conversation"}, "an answer", "old.txt:3", None)])
        with pytest.raises(DataError, match=r"s.labels.sqlite item #1 \(old.txt:3\): expected payload \{\"messages\": \[...\]\}"):
            export_file(store, tmp_path / "out.jsonl", "response")
    assert not (tmp_path / "out.jsonl").exists()


def test_drafts_are_kept_apart_from_decisions(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "s.labels.sqlite") as store:
        store.add_items([({"messages": [{"role": "user", "content": "Hi"}]}, None, "x", None)])
        store.set_draft(1, "Hel")
        assert store.draft(1) == "Hel" and store.history() == [] and store.progress().labelled == 0
        store.decide(1, "Hello!")
        assert store.draft(1) is None  # saved: the draft is gone
        store.set_draft(1, "again")
        store.set_draft(1, "  ")
        assert store.draft(1) is None


def write_generation_recipe(directory: Path) -> Path:
    recipe = directory / "helpdesk.toml"
    recipe.write_text('recipe_version = 1\nname = "helpdesk"\n[task]\ntype = "generation"\n[task.options]\nmax_new_tokens = 8\n'
                      '[data]\ntrain = "helpdesk.labels.sqlite"\n[train]\nepochs = 1\n[export]\nformats = []\n[output]\nruns_dir = "runs"\n')
    return recipe


def test_builder_tui_import_and_export_for_a_generation_recipe(tmp_path: Path, capsys: Any) -> None:
    recipe = write_generation_recipe(tmp_path)
    write_jsonl(tmp_path / "chats.jsonl", RECORDS)
    (tmp_path / "more.txt").write_text("Does it come in blue?\nWhat voltage?\n")
    assert main(["tui", str(recipe), "--import", str(tmp_path / "chats.jsonl"), "--import", str(tmp_path / "more.txt")]) == 0
    assert main(["tui", str(recipe), "--export", str(tmp_path / "train.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "chats.jsonl: 5 added, 0 already in helpdesk.labels.sqlite" in out and "more.txt: 1 added, 1 already" in out
    assert "train.jsonl: 3 labelled examples written" in out
    assert json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0]) == RECORDS[0]
    write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "robot", "content": "x"}]}])
    assert main(["tui", str(recipe), "--import", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:1: messages[1]: unknown role 'robot'" in capsys.readouterr().err


def test_a_recipe_naming_the_store_trains_from_its_export(tmp_path: Path) -> None:
    """``data.train = "<recipe>.labels.sqlite"``: the run's copy is the JSONL the task reads."""
    from assistant_builder.engine.store_data import materialise_store_data
    from assistant_builder.registry import build_registry

    task = build_registry().create("task", "generation")
    with LabelStore(tmp_path / "helpdesk.labels.sqlite") as store:
        import_file(store, write_jsonl(tmp_path / "chats.jsonl", RECORDS), "response")
    data = SimpleNamespace(train=tmp_path / "helpdesk.labels.sqlite", validation=None,
                           model_copy=lambda update: SimpleNamespace(**{"validation": None, **update}))
    copied = materialise_store_data(data, task, task.Options(), tmp_path / "run")
    assert copied.train == tmp_path / "run" / "data" / "train.jsonl"
    assert [json.loads(line) for line in copied.train.read_text().splitlines()][0] == RECORDS[0]
