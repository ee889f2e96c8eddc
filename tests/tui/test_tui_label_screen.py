"""The Label screen driven by key presses (Pilot, 100x30): the store is the source of truth."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from assistant_builder.tui.app import BuilderApp
from assistant_builder.labelling.formats import export_file, import_file
from assistant_builder.tui.screens.label import LabelScreen
from assistant_builder.labelling.store import LABELLED, SKIPPED, TODO, LabelStore
from assistant_builder.tui.widgets.span_editor import SpanEditor


def golds(project: Any) -> dict[str, Any]:
    with LabelStore(project.store_path) as store:
        return {item.payload["text"]: (item.status, item.gold) for item in store.items()}


def test_label_keys_skip_progress_and_footer(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, LabelScreen)
            text = tui_helpers.screen_text(app)
            assert "wake me at 7" in text and "labelled 0 / 6" in text
            assert "1 alarm" in text.splitlines()[-1] and "3 music" in text.splitlines()[-1]  # label keys in the footer
            await pilot.press("1", "2", "s", "3")
            await pilot.pause()
            assert screen.last_ack == "#4 = music"
            text = tui_helpers.screen_text(app)
            assert "labelled 3 / 6" in text and "skipped 1" in text and "✓ saved: #4 = music" in text
            assert "alarm at 6 please" not in text and "is it cold today" in text  # the next item is shown

    asyncio.run(scenario())
    assert golds(project) == {"wake me at 7": (LABELLED, "alarm"), "will it rain": (LABELLED, "weather"), "play jazz": (SKIPPED, None),
                              "alarm at 6 please": (LABELLED, "music"), "is it cold today": (TODO, None), "play some songs": (TODO, None)}


def test_undo_goes_back_and_redo_reapplies(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("1", "2", "3")
            await pilot.press("u", "u")
            await pilot.pause()
            assert screen.current is not None and screen.current.payload["text"] == "will it rain"  # back to it
            assert app.store.progress().labelled == 1
            await pilot.press("r")
            await pilot.pause()
            assert app.store.progress().labelled == 2
            await pilot.press("u", "3")  # re-label the undone item differently
            await pilot.pause()
            assert "play jazz" in tui_helpers.screen_text(app)

    asyncio.run(scenario())
    result = golds(project)
    assert result["wake me at 7"] == (LABELLED, "alarm") and result["will it rain"] == (LABELLED, "music")
    assert result["play jazz"] == (TODO, None)


def test_filter_picks_labels_beyond_nine(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    labels = ["alarm", "weather", "music", "a4", "a5", "a6", "a7", "a8", "a9", "lights", "timer", "translate"]
    project = make_project(labels=labels)

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            footer = tui_helpers.screen_text(app).splitlines()[-1]
            assert "9 a9" in footer and "timer" not in footer
            await pilot.press("slash", *"tim", "enter")
            await pilot.pause()
            await pilot.press("slash", *"11", "enter")  # a number picks that label
            await pilot.pause()
            await pilot.press("slash", *"t", "down", "enter")  # prefix matches first: timer, translate, then others
            await pilot.pause()
            await pilot.press("slash", *"zzz", "enter", "escape")  # no match: nothing labelled, the filter closes
            await pilot.pause()
            assert app.focused is None
            await pilot.press("2")  # keys reach the screen again
            await pilot.pause()

    asyncio.run(scenario())
    result = golds(project)
    assert [result[t][1] for t in ["wake me at 7", "will it rain", "play jazz", "alarm at 6 please"]] == ["timer", "timer", "translate", "weather"]


class FakePredictor:
    """Classification-like predictions: 'play' texts are confidently music, the rest uncertain."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def predict(self, inputs: list[str]) -> list[dict[str, Any]]:
        self.seen.extend(inputs)
        out = []
        for text in inputs:
            sure = "play" in text
            top = [{"label": "music" if sure else "weather", "score": 0.9 if sure else 0.5},
                   {"label": "alarm", "score": 0.05 if sure else 0.4 - 0.01 * len(text) % 7}]
            out.append({"label": top[0]["label"], "score": top[0]["score"], "top": top})
        return out


def test_model_suggestions_fill_the_queue_in_a_worker_and_a_accepts(make_project: Any, registry: Any, tui_helpers: Any,
                                                                     tmp_path: Path) -> None:
    project = make_project()
    tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True)
    predictor = FakePredictor()
    factories: list[Path] = []

    def factory(run_dir: Path) -> FakePredictor:
        factories.append(run_dir)
        return predictor

    async def scenario() -> None:
        app = BuilderApp(project, registry, predictor_factory=factory)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("a")  # no suggestion yet: nothing happens
            await pilot.press("m")
            await tui_helpers.wait_until(pilot, lambda: screen.current is not None and screen.current.suggestion is not None)
            assert "model suggests" in tui_helpers.screen_text(app)
            await pilot.press("o")  # uncertainty order (o toggles input order <-> uncertainty)
            await pilot.press("o")
            head = screen.current
            assert head is not None and "play" not in head.payload["text"]  # least certain first
            await pilot.press("a")
            await pilot.pause()
            assert app.store.item(head.id).gold == "weather"

    asyncio.run(scenario())
    assert factories == [project.runs_dir / "demo-20260101-000000"]
    assert sorted(predictor.seen) == sorted(tui_helpers.TEXTS)


def test_ner_spans_by_keyboard(make_project: Any, registry: Any, tui_helpers: Any, tmp_path: Path) -> None:
    project = make_project(labels=None, texts=[], task="ner")
    (tmp_path / "seed.conll").write_text("call B-person\nAunt I-person\nat O\nnoon B-time\n")
    (tmp_path / "new.txt").write_text("call mom at noon\nwake me at seven tomorrow\n")
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "seed.conll", "token_spans")
        import_file(store, tmp_path / "new.txt", "token_spans")

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert screen.labels == ["person", "time"] and isinstance(app.focused, SpanEditor)
            footer = tui_helpers.screen_text(app).splitlines()[-1]
            assert "1 person" in footer and "2 time" in footer and "save" in footer
            await pilot.press("right", "1", "right", "right", "2")
            await pilot.pause()
            assert "mom[person] at noon[time]" in tui_helpers.screen_text(app)
            await pilot.press("enter")
            await pilot.press("right", "right", "right", "shift+right", "2")  # "seven tomorrow"
            assert app.focused.spans == [{"start": 3, "end": 5, "label": "time"}]
            await pilot.press("x", "enter")  # remove it again: a sentence without entities
            await pilot.pause()
            assert screen.current is None and screen.last_ack.endswith("= no entities")

    asyncio.run(scenario())
    with LabelStore(project.store_path) as store:
        golds = {" ".join(i.payload["tokens"]): i.gold for i in store.items()}
    assert golds["call mom at noon"] == [{"start": 1, "end": 2, "label": "person"}, {"start": 3, "end": 4, "label": "time"}]
    assert golds["wake me at seven tomorrow"] == []


def test_ner_suggestions_prefill_the_spans(make_project: Any, registry: Any, tui_helpers: Any, tmp_path: Path) -> None:
    project = make_project(labels=None, texts=[], task="ner")
    tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True)
    (tmp_path / "seed.conll").write_text("call B-person\nat O\nnoon B-time\n")
    (tmp_path / "new.txt").write_text("call mom\nsee you\n")
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "seed.conll", "token_spans")
        import_file(store, tmp_path / "new.txt", "token_spans")

    class Predictor:
        def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{"entities": [{"label": "person", "text": t["tokens"][1], "score": 0.7}],
                     "tags": ["O", "B-person", *["O"] * (len(t["tokens"]) - 2)]} for t in inputs]

    async def scenario() -> None:
        app = BuilderApp(project, registry, predictor_factory=lambda run: Predictor())
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("m")
            await tui_helpers.wait_until(pilot, lambda: screen.current is not None and screen.current.suggestion is not None)
            assert app.focused.spans == [{"start": 1, "end": 2, "label": "person"}]
            assert "model suggests: mom (person 0.70)" in tui_helpers.screen_text(app)
            await pilot.press("a", "enter")  # accept the first; the second is pre-filled and saved as shown

    asyncio.run(scenario())
    with LabelStore(project.store_path) as store:
        assert [i.gold for i in store.items()][1:] == [[{"start": 1, "end": 2, "label": "person"}]] * 2


def test_qa_answer_span_and_unanswerable(make_project: Any, registry: Any, tui_helpers: Any, tmp_path: Path) -> None:
    project = make_project(labels=None, texts=[], task="qa")
    context = "The ferry runs every half hour and the crossing takes six minutes."
    squad = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "How long is the crossing?", "answers": []},
        {"id": "q2", "question": "Who built the ferry?", "answers": []}]}]}]}
    (tmp_path / "qa.json").write_text(json.dumps(squad))
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "qa.json", "answer_span")

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            text = tui_helpers.screen_text(app)
            assert "Q: How long is the crossing?" in text and "The ferry runs every half hour" in text
            await pilot.press("enter")  # nothing selected: nothing saved
            assert app.store.progress().labelled == 0
            await pilot.press(*["right"] * 10, "shift+right", "1", "enter")
            await pilot.press("n")

    asyncio.run(scenario())
    with LabelStore(project.store_path) as store:
        golds = [i.gold for i in store.items()]
        assert golds == [{"answers": [{"text": "six minutes", "answer_start": context.index("six")}]}, {"answers": []}]
        export_file(store, tmp_path / "out.json", "answer_span")
    qas = json.loads((tmp_path / "out.json").read_text())["data"][0]["paragraphs"][0]["qas"]
    assert [q["is_impossible"] for q in qas] == [False, True]


def test_unknown_labelling_kind_says_so(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project(texts=[])
    project.kind = "image_boxes"  # a third-party task the TUI has no widget for

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            assert "No labelling widget for 'image_boxes'" in tui_helpers.screen_text(app)
            assert " accept" not in tui_helpers.screen_text(app).splitlines()[-1]  # labelling keys hidden, not faked
            await pilot.press("1", "a", "s")
            assert app.store.progress().total == 0

    asyncio.run(scenario())


def test_chinese_text_is_labelled_by_character(make_project: Any, registry: Any, tui_helpers: Any, tmp_path: Path) -> None:
    project = make_project(labels=None, texts=[], task="ner")
    (tmp_path / "seed.conll").write_text("call O\nmom B-person\n")  # gives the label set
    (tmp_path / "new.txt").write_text("请给张伟打电话\n", encoding="utf-8")
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "seed.conll", "token_spans")
        import_file(store, tmp_path / "new.txt", "token_spans")

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            await pilot.pause()  # the seed sentence came labelled: the Chinese one is the first to do
            assert "请给张伟打电话" in tui_helpers.screen_text(app)  # shown as written, one character a word
            await pilot.press("right", "right", "shift+right", "1")  # 张伟
            await pilot.pause()
            assert "请给张伟[person]打电话" in tui_helpers.screen_text(app)
            await pilot.press("enter")
            await pilot.pause()

    asyncio.run(scenario())
    with LabelStore(project.store_path) as store:
        golds = {"".join(i.payload["tokens"]): (i.payload["tokens"], i.gold) for i in store.items()}
    tokens, gold = golds["请给张伟打电话"]
    assert tokens == list("请给张伟打电话") and gold == [{"start": 2, "end": 4, "label": "person"}]
