"""The Label screen of a ``generation`` project (Pilot, 100x30): the conversation, the response
editor, saving, drafts, suggestions; and a generative run on the Train and Evaluate screens."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.labelling.formats import import_file
from assistant_builder.labelling.store import LABELLED, TODO, LabelStore
from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.widgets.response_editor import ResponseEditor

SYSTEM = {"role": "system", "content": "Answer in one sentence."}
RECORDS = [
    {"messages": [SYSTEM, {"role": "user", "content": "How do I reset the lamp?"},
                  {"role": "assistant", "content": "Hold the button for five seconds."}]},
    {"messages": [SYSTEM, {"role": "user", "content": "It blinks red"}, {"role": "assistant", "content": "Charge it."},
                  {"role": "user", "content": "Still blinks"}]},
    {"prompt": "Does it come in blue?"},
]


@pytest.fixture
def project(tmp_path: Path, registry: Any) -> Any:
    """A generation recipe with one labelled conversation and two prompts waiting in its store."""
    from assistant_builder.tui.project import open_project

    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:1]))
    recipe = tmp_path / "helpdesk.toml"
    recipe.write_text('recipe_version = 1\nname = "helpdesk"\n[task]\ntype = "generation"\n[data]\ntrain = "train.jsonl"\n'
                      'validation = "train.jsonl"\n[train]\nepochs = 1\n[export]\nformats = []\n[output]\nruns_dir = "runs"\n')
    project = open_project(recipe, registry)
    (tmp_path / "inbox.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "inbox.jsonl", project.kind, **project.import_options())
    return project


def items(project: Any) -> list[Any]:
    with LabelStore(project.store_path) as store:
        return list(store.items())


def test_edit_a_response_and_save_it(project: Any, registry: Any, tui_helpers: Any) -> None:
    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(app.focused, ResponseEditor) and app.focused.text == ""
            text = tui_helpers.screen_text(app)
            assert "user › It blinks red" in text and "assistant › Charge it." in text and "user › Still blinks" in text
            assert "system › Answer in one sentence." in text and "labelled 1 / 3" in text
            footer = text.splitlines()[-1]
            assert "^s save" in footer and "^g use suggestion" in footer and "esc leave editor" in footer
            assert "skip" not in footer and "⏎" not in footer  # one-letter keys and Enter are typed while editing
            await pilot.press(*"Check the cable", "enter", *"and the plug.", "s")  # Enter and letters are typed, not keys
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert screen.last_ack.startswith("#2 = 'Check the cable and the plug.s'")
            assert "Does it come in blue?" in tui_helpers.screen_text(app) and app.focused.text == ""  # the next item, focused

    asyncio.run(scenario())
    saved = items(project)[1]
    assert saved.status == LABELLED and saved.gold == "Check the cable\nand the plug.s"


def test_leaving_an_item_keeps_a_draft_and_only_a_save_labels(project: Any, registry: Any, tui_helpers: Any) -> None:
    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            await pilot.press(*"Try a reset", "escape")
            footer = tui_helpers.screen_text(app).splitlines()[-1]
            assert app.focused is None and "e edit" in footer and "s skip" in footer and "a accept" not in footer
            await pilot.press("s")  # skip: the typed text is kept as the item's draft
            await pilot.pause()
            assert app.screen.current.payload["messages"][0]["content"] == "Does it come in blue?"
            assert app.screen.last_ack == "#2 skipped (what you typed is kept as its draft)"
            await pilot.press("u")  # back to it: the draft is in the editor
            await pilot.pause()
            assert app.screen.editor.text == "Try a reset" and app.focused is None
            await pilot.press("e", *" first")
            await pilot.press("f2")  # another screen, then quit: still a draft, not a label
            await pilot.pause()
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
    item = items(project)[1]
    assert item.status == TODO and item.gold is None
    with LabelStore(project.store_path) as store:
        assert store.draft(item.id) == "Try a reset first"

    async def reopened() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            assert app.screen.current.id == item.id and app.focused.text == "Try a reset first"
            await pilot.press("ctrl+s")
            await pilot.pause()

    asyncio.run(reopened())
    with LabelStore(project.store_path) as store:
        assert store.item(item.id).gold == "Try a reset first" and store.draft(item.id) is None


class AnswerPredictor:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        self.seen.extend(inputs)
        return [{"completion": f"Suggested answer {len(self.seen)}.", "tokens": 4, "finish_reason": "eos"} for _ in inputs]


def test_suggestions_prefill_the_editor_and_ctrl_g_takes_one_back(project: Any, registry: Any, tui_helpers: Any) -> None:
    tui_helpers.make_run(project.runs_dir, "20260101-000000", name="helpdesk", onnx=True)
    predictor = AnswerPredictor()

    async def scenario() -> None:
        app = BuilderApp(project, registry, predictor_factory=lambda run: predictor)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("ctrl+g")  # no suggestion yet: a warning, nothing typed
            assert screen.editor.text == ""
            await pilot.press("escape", "m")
            await tui_helpers.wait_until(pilot, lambda: screen.editor.text == "Suggested answer 1.")
            assert "model suggests: Suggested answer 1." in tui_helpers.screen_text(app)
            await pilot.press("e", "ctrl+a", "ctrl+k", *"My own.")  # clear the line, type another answer
            assert screen.editor.text == "My own."
            await pilot.press("ctrl+g", "ctrl+s")  # the suggestion back, saved as it is
            await pilot.pause()
            await tui_helpers.wait_until(pilot, lambda: screen.current is not None and screen.current.suggestion is not None)
            await pilot.press("escape", "ctrl+g", "ctrl+s")  # ctrl+g works outside the editor too (and focuses it)
            await pilot.pause()

    asyncio.run(scenario())
    assert predictor.seen == [{"messages": RECORDS[1]["messages"]}, {"messages": [{"role": "user", "content": "Does it come in blue?"}]}]
    assert [(i.status, i.gold) for i in items(project)[1:]] == [(LABELLED, "Suggested answer 1."), (LABELLED, "Suggested answer 2.")]


def test_a_generative_run_on_the_train_and_evaluate_screens(project: Any, registry: Any, tui_helpers: Any) -> None:
    from assistant_builder.callbacks import CallbackList, EvalEnded, RunEnded, RunStarted, StepEnded, TrainingStarted
    from assistant_builder.engine.run import RunResult

    def engine(loaded: Any, registry: Any, callbacks: Any, stop_event: Any, overrides: Any = (), resume_dir: Any = None) -> RunResult:
        events = CallbackList(callbacks)
        run_dir = project.runs_dir / "helpdesk-fake"
        run_dir.mkdir(parents=True, exist_ok=True)
        events.on_run_start(RunStarted(run_dir, "helpdesk", "generation", "lora", 2, 1, ()))
        events.on_train_start(TrainingStarted(4, 2, 2, "cpu"))
        for step in range(1, 5):
            events.on_step_end(StepEnded(step, step / 2, 3.0 / step, 2e-4, 10.0))
            if step % 2 == 0:  # loss first: the chart must still follow the recipe's metric, neg_loss
                events.on_eval_end(EvalEnded(step, step // 2, {"loss": 2.0 / step, "perplexity": 3.0, "neg_loss": -2.0 / step}, True))
        events.on_run_end(RunEnded(run_dir, {"metrics": {"neg_loss": -0.5}}))
        return RunResult(run_dir, {"neg_loss": -0.5}, [], {"metrics": {"neg_loss": -0.5}})

    run = tui_helpers.make_run(project.runs_dir, "20260101-000000", name="helpdesk")
    samples = [{"source": "valid.jsonl:1", "prompt": "How do I reset the lamp?", "reference": "Hold the button for five seconds.",
                "answer": "Hold the button.", "base_answer": "I am not sure what lamp you mean.", "token_f1": 0.6}]
    (run / "metrics.json").write_text(json.dumps({"metric": "neg_loss", "metrics": {"neg_loss": -0.5, "token_f1": 0.6}, "samples": samples}))
    (run / "validation_predictions.jsonl").unlink()
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "task": "generation", "metric": "neg_loss", "metrics": {"neg_loss": -0.5}}))

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            train = app.screen
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: train.result is not None)
            assert train.state.metric == "neg_loss" and train.state.eval_values == [-1.0, -0.5]
            assert "training loss and validation neg_loss" in tui_helpers.screen_text(app)
            exported = [json.loads(line) for line in project.training_file().read_text().splitlines()]
            assert exported == RECORDS[:1]  # the store's labelled conversation, as the task reads it
            await pilot.press("f3")
            evaluate = app.screen
            evaluate.show_run(run)
            await tui_helpers.wait_until(pilot, lambda: evaluate.evaluation is not None)
            await pilot.pause()
            text = tui_helpers.screen_text(app)
            assert "1 generated answers on validation prompts" in text and "Answers" in text
            assert "fine-tuned: Hold the button." in text and "base model: I am not sure what lamp you mean." in text
            assert "a answers" in text.splitlines()[-1]

    asyncio.run(scenario())


def test_answers_fill_suggestions_one_item_at_a_time(project: Any) -> None:
    from assistant_builder.tui.suggest import AnswerPredictor, fill_suggestions

    class Answer:
        def __init__(self, text: str) -> None:
            self.text = text

        def to_dict(self) -> dict[str, Any]:
            return {"completion": self.text, "tokens": 2, "finish_reason": "eos"}

    class Assistant:  # the interface of runtime.assistant.Assistant that the TUI uses
        def answer(self, raw: Any, settings: Any = None, where: str = "input") -> Answer:
            return Answer(f"re: {raw['messages'][-1]['content']}")

    batches: list[tuple[int, int]] = []
    done = fill_suggestions(project.store_path, AnswerPredictor(Assistant()), "response", on_progress=lambda d, t: batches.append((d, t)))
    assert done == 2 and batches == [(0, 2), (1, 2), (2, 2)]
    assert [i.suggestion for i in items(project)[1:]] == [{"completion": "re: Still blinks", "tokens": 2, "finish_reason": "eos"},
                                                        {"completion": "re: Does it come in blue?", "tokens": 2, "finish_reason": "eos"}]
