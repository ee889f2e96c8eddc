"""The Train screen with a fake engine (no torch): live chart data, cancel with a checkpoint and the
resume command, training on the labelled store, attaching to a run started headless, and quitting."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.screens.train import TrainScreen
from assistant_builder.labelling.store import LabelStore


def label_some(project: Any, count: int) -> None:
    with LabelStore(project.store_path) as store:
        for _ in range(count):
            item = store.next_item()
            assert item is not None
            store.decide(item.id, "alarm")


def test_training_updates_chart_data_and_trains_on_the_store(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    label_some(project, 2)
    engine = tui_helpers.FakeEngine(steps=20)

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            assert "labelled store (2 items)" in tui_helpers.screen_text(app)
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            state = screen.state
            assert state.loss_steps == list(range(1, 21)) and state.losses[0] == 2.0
            assert state.eval_steps == [5, 10, 15, 20] and state.eval_values == [0.25, 0.5, 0.75, 1.0] and state.metric == "accuracy"
            assert state.total_steps == 20 and state.stage == "finished" and state.run_dir == project.runs_dir / "demo-fake"
            assert any("exported 2 labelled items" in line for line in state.log)
            await pilot.pause()
            text = tui_helpers.screen_text(app)
            assert "training loss and validation accuracy" in text and "step 20/20" in text and "finished" in text

    asyncio.run(scenario())
    overrides = engine.calls[0]["overrides"]
    target = project.training_file()
    assert overrides == [f"data.train={json.dumps(str(target))}"]
    assert engine.calls[0]["loaded"].recipe.data.train == target
    assert [json.loads(line)["intent"] for line in target.read_text().splitlines()] == ["alarm", "alarm"]


def test_cancel_sets_stop_event_and_shows_the_resume_command(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    engine = tui_helpers.FakeEngine(steps=20, hold_at=5)

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert not screen.use_store  # nothing labelled: the recipe's own data
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: engine.reached_hold.is_set() and len(screen.state.loss_steps) == 4)
            assert screen.busy
            await pilot.press("c")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            assert screen.stop_event.is_set() and not screen.busy
            assert screen.result.interrupted and screen.state.stage == "stopped"
            assert screen.result.resume_command == f"builder run --resume {project.runs_dir / 'demo-fake'}"
            assert screen.state.loss_steps == [1, 2, 3, 4]
            await pilot.pause()
            assert "builder run --resume" in " ".join(tui_helpers.screen_text(app).split())

    asyncio.run(scenario())
    assert engine.calls[0]["overrides"] == []


def test_attach_follows_a_headless_run_until_it_finishes(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    run = tui_helpers.make_run(project.runs_dir, "20260101-000000", finished=False)

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("a")
            await tui_helpers.wait_until(pilot, lambda: len(screen.state.loss_steps) == 20)
            assert screen.attached and screen.state.run_dir == run and screen.state.epochs == 4
            assert screen.state.total_steps == 40  # estimated: 20 steps were 2.0 epochs of 4
            assert screen.state.eval_values == [0.5, 0.5]
            with open(run / "metrics.jsonl", "a") as log:
                log.write(json.dumps({"event": "step", "step": 21, "epoch": 2.1, "loss": 0.05, "time": 30.0}) + "\n")
            await tui_helpers.wait_until(pilot, lambda: screen.state.loss_steps[-1] == 21)
            (run / "summary.json").write_text(json.dumps({"metrics": {"accuracy": 0.9}}))
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            assert screen.state.stage == "finished" and not screen.result.interrupted

    asyncio.run(scenario())


def test_detach_leaves_the_run_alone(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    run = tui_helpers.make_run(project.runs_dir, "20260101-000000", finished=False)

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("a")
            await tui_helpers.wait_until(pilot, lambda: len(screen.state.loss_steps) == 20)
            await pilot.press("c")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            assert screen.result.detached and screen.state.stage == "detached"

    asyncio.run(scenario())
    assert not (run / "summary.json").exists()


def test_quitting_while_training_stops_cleanly_first(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    engine = tui_helpers.FakeEngine(steps=20, hold_at=3)
    holder: dict[str, Any] = {}

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            holder["screen"] = screen = app.screen
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: engine.reached_hold.is_set())
            await pilot.press("ctrl+q")
            deadline = time.monotonic() + 15
            while app.is_running and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    asyncio.run(scenario())
    screen = holder["screen"]
    assert screen.stop_event.is_set() and screen.result is not None and screen.result.interrupted


def test_stale_unfinished_run_counts_as_stopped(tmp_path: Path, tui_helpers: Any) -> None:
    from assistant_builder.tui.project import run_status

    run = tui_helpers.make_run(tmp_path, "20260101-000000", finished=False)
    assert run_status(run) == "running"
    old = time.time() - 3600
    for name in ("metrics.jsonl", "provenance.json"):
        os.utime(run / name, (old, old))
    assert run_status(run) == "stopped"


def test_a_recipe_problem_is_shown_not_raised(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    (project.recipe_path.parent / "valid.jsonl").unlink()
    engine = tui_helpers.FakeEngine()

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            assert screen.state.stage == "failed" and "data.validation: file not found" in screen.result.error
            assert app.is_running

    asyncio.run(scenario())
    assert engine.calls == []


def test_the_ui_keeps_working_while_training(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    engine = tui_helpers.FakeEngine(steps=20, hold_at=3)

    async def scenario() -> None:
        app = BuilderApp(project, registry, engine=engine, start="train")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            train = app.screen
            await pilot.press("t")
            await tui_helpers.wait_until(pilot, lambda: engine.reached_hold.is_set())
            await pilot.press("f1", "1", "2")  # label while the engine thread is busy
            await pilot.pause()
            assert app.store.progress().labelled == 2 and train.busy
            await pilot.press("f2", "c")
            await tui_helpers.wait_until(pilot, lambda: train.result is not None)

    asyncio.run(scenario())
