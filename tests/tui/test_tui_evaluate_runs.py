"""Evaluate and Runs screens on fake run directories: metrics, per-label scores, confusion matrix,
the error browser, sending an error back to the labelling queue, and comparing runs."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import DataTable

from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.screens.evaluate import EvaluateScreen
from assistant_builder.tui.screens.label import LabelScreen
from assistant_builder.tui.screens.runs import RunsScreen
from assistant_builder.tui.screens.train import TrainScreen
from assistant_builder.labelling.store import LABELLED, REVIEW, LabelStore


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def test_evaluate_shows_the_run_and_sends_errors_back(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    run = tui_helpers.make_run(project.runs_dir, "20260101-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, EvaluateScreen)
            await tui_helpers.wait_until(pilot, lambda: screen.evaluation is not None)
            await pilot.pause()
            assert screen.run_dir == run
            errors = rows(screen.query_one("#eval-errors", DataTable))
            assert errors == [["0.800", "weather", "music", "will it rain"], ["0.600", "alarm", "weather", "alarm at 6"]]
            assert [e.source for e in screen.evaluation.errors] == [f"{run / 'valid.jsonl'}:2", f"{run / 'valid.jsonl'}:4"]
            text = tui_helpers.screen_text(app)
            assert "demo-20260101-000000 (finished) · accuracy 0.5000 · 2 errors" in text
            await pilot.press("s")
            await pilot.pause()
            assert rows(screen.query_one("#eval-metrics", DataTable)) == [["accuracy", "0.5000"], ["macro_f1", "0.4500"]]
            assert len(rows(screen.query_one("#eval-per-label", DataTable))) == 3
            await pilot.press("x")
            await pilot.pause()
            confusion = rows(screen.query_one("#eval-confusion", DataTable))
            assert confusion[0] == ["alarm", "1", "0", "1"] and len(confusion) == 3  # labels: alarm, music, weather
            await pilot.press("b")  # on another tab, b first shows the errors
            await pilot.pause()
            assert screen.sent == []
            await pilot.press("b")  # send back "will it rain" (already in the store as unlabelled)
            await pilot.press("down", "b")  # and "alarm at 6" (new to the store)
            await pilot.pause()
            assert len(set(screen.sent)) == 2
            await pilot.press("f1")
            await pilot.pause()
            label = app.screen
            assert isinstance(label, LabelScreen)
            assert label.current is not None and label.current.payload == {"text": "will it rain"} and label.current.status == REVIEW
            text = tui_helpers.screen_text(app)
            assert "current label: weather" in text and "model suggests: music (0.80)" in text
            assert "gold weather, predicted" in text and "labelled 0 / 7" in text and "review 2" in text
            await pilot.press("3")  # the user decides the model was right
            await pilot.pause()
            assert label.current is not None and label.current.payload == {"text": "alarm at 6"}
            assert app.store.item(screen.sent[0]).gold == "music" and app.store.item(screen.sent[0]).status == LABELLED

    asyncio.run(scenario())


def test_evaluate_without_runs_says_what_to_do(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="evaluate")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            await pilot.press("b")
            assert "No finished run yet" in tui_helpers.screen_text(app)

    asyncio.run(scenario())


def test_runs_screen_compares_runs_and_opens_them(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    old = tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True)
    tui_helpers.make_run(project.runs_dir, "20260102-000000", rows=[("a", "alarm", "alarm", 0.9), ("b", "music", "music", 0.9)])
    running = tui_helpers.make_run(project.runs_dir, "20260103-000000", finished=False)
    tui_helpers.make_run(project.runs_dir, "20260104-000000", name="other")  # another recipe's run: not listed

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="runs")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            table = screen.query_one(DataTable)
            assert [str(c.label) for c in table.columns.values()] == ["run", "status", "trainer/from", "accuracy", "macro_f1", "best/ep", "ex/s", "export"]
            assert rows(table) == [
                ["20260103-000000", "running", "full", "0.5000", "–", "–/4", "–", "–"],
                ["20260102-000000", "finished", "full", "1.0000", "0.9500", "2/4", "88", "–"],
                ["20260101-000000", "finished", "full", "0.5000", "0.4500", "2/4", "88", "onnx/int8 0.500 1.5ms 23MB"],
            ]
            await pilot.press("down", "down", "enter")
            await pilot.pause()
            evaluate = app.screen
            assert isinstance(evaluate, EvaluateScreen)
            await tui_helpers.wait_until(pilot, lambda: evaluate.evaluation is not None and evaluate.run_dir == old)
            await pilot.press("f4", "up", "up", "a")
            await pilot.pause()
            train = app.screen
            assert isinstance(train, TrainScreen)
            await tui_helpers.wait_until(pilot, lambda: train.state.run_dir == running and len(train.state.loss_steps) == 20)
            assert train.attached
            await pilot.press("c")
            await tui_helpers.wait_until(pilot, lambda: train.result is not None)

    asyncio.run(scenario())


def test_runs_screen_shows_model_versions_what_each_update_learned_and_what_waits(make_project: Any, registry: Any,
                                                                                   tui_helpers: Any) -> None:
    import json

    from textual.widgets import Static

    project = make_project()
    parent = tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True)

    def update(stamp: str, passed: bool) -> None:
        run = tui_helpers.make_run(project.runs_dir, stamp)
        gate = {"metric": "accuracy", "parent_validation": {"before": 0.9448, "after": 0.9388 if passed else 0.80, "forgetting": 0.006},
                "held_out_new": {"before": 0.0, "after": 0.68}, "max_forgetting": 0.01, "passed": passed,
                "reasons": [] if passed else ["it forgot: accuracy fell 14.48 points"]}
        plan = {"new_examples": 200, "new_trained": 160, "held_out": 40, "corrected": 3, "replayed": 640, "epochs": 2,
                "new_labels": ["pay_bill", "pin_change", "recipe", "text", "timezone"]}
        (run / "update.json").write_text(json.dumps({"parent": str(parent), "plan": plan, "gate": gate}))

    update("20260102-000000", True)
    update("20260103-000000", False)
    with LabelStore(project.store_path) as store:  # the newest finished run froze nothing of the store: 2 items wait
        store.add_items([({"text": "pay my phone bill"}, "alarm", "serve", None), ({"text": "what time is it in tokyo"}, "alarm", "serve", None)])
    for run in (project.runs_dir / "demo-20260103-000000",):
        (run / "data").mkdir()
        (run / "data" / "extra_report.json").write_text(json.dumps({"stores": [{"path": str(project.store_path), "copy": str(run / "data" / "extra-1.jsonl")}]}))
        (run / "data" / "extra-1.jsonl").write_text("")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="runs")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            table = screen.query_one(DataTable)
            assert [r[2] for r in rows(table)] == ["refused from 20260101-000000", "from 20260101-000000", "full"]
            assert "2 labelled items wait to be learned" in str(screen.query_one("#runs-title", Static).render())
            version = lambda: str(screen.query_one("#runs-version", Static).render())  # noqa: E731
            assert version().startswith("20260103-000000: update of 20260101-000000: 200 new (160 trained, 40 held out, 3 corrections; "
                                        "new labels: pay_bill, pin_change, recipe, text +1), 640 replayed, 2 epochs. Gate REFUSED: it forgot")
            await pilot.press("down")
            await pilot.pause()
            assert "Gate kept: accuracy on the parent's validation 0.9448 -> 0.9388 (may lose 0.0100), held-out new 0.0000 -> 0.6800" in version()
            await pilot.press("down")
            await pilot.pause()
            assert version() == "20260101-000000: a full run (trained from the base model)"

    asyncio.run(scenario())
