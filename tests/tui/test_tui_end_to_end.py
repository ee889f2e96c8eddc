"""The whole loop in the app with the real engine on a tiny random model: label by keys -> train on
the store -> evaluate -> send an error back and fix it -> export again with int8 and TorchScript ->
model suggestions from the run's ONNX bundle."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.testing import TOY_INTENTS, write_intent_data
from assistant_builder.tui.app import BuilderApp
from assistant_builder.labelling.formats import import_file
from assistant_builder.tui.project import open_project
from assistant_builder.labelling.store import LABELLED, REVIEW, LabelStore

pytestmark = pytest.mark.slow


def test_label_train_evaluate_fix(tmp_path: Path, write_recipe: Any, registry: Any, tui_helpers: Any) -> None:
    labels = list(TOY_INTENTS)
    write_intent_data(tmp_path, per_label=8, seed=2)
    gold = {}
    for line in (tmp_path / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        gold[row["text"]] = row["intent"]
    (tmp_path / "texts.txt").write_text("\n".join(gold) + "\n")
    recipe = write_recipe(
        tmp_path, name="loop",
        task={"type": "classification", "options": {"label_field": "intent", "labels": labels}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"},
        train={"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, "head_learning_rate": 3e-3, "early_stopping_patience": 0},
        export={"formats": ["onnx"], "max_metric_drop": 1.0, "min_agreement": 0.0}, output={"runs_dir": "runs"},
    )
    project = open_project(recipe, registry)
    with LabelStore(project.store_path) as store:
        import_file(store, tmp_path / "texts.txt", project.kind)

    async def scenario() -> None:
        app = BuilderApp(project, registry)
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            label = app.screen
            while label.current is not None:  # label every distinct text with its true intent
                await pilot.press(str(labels.index(gold[label.current.payload["text"]]) + 1))
            assert app.store.progress().labelled == len(gold)
            await pilot.press("f2", "t")
            train = app.screen
            await tui_helpers.wait_until(pilot, lambda: train.result is not None, timeout=600)
            assert train.result.error == "" and train.state.stage == "finished", train.state.log
            assert train.state.losses and train.state.eval_values and train.state.total_steps
            await pilot.press("f3")
            evaluate = app.screen
            await tui_helpers.wait_until(pilot, lambda: evaluate.evaluation is not None)
            assert evaluate.evaluation.run.path == train.result.run_dir and "accuracy" in evaluate.evaluation.metrics
            if evaluate.evaluation.errors:
                true_label = evaluate.evaluation.errors[0].gold  # the highlighted (most confident) error
                await pilot.press("b")
                await pilot.press("f1")
                assert label.current is not None and label.current.status == REVIEW
                fixed = label.current.id
                await pilot.press(str(labels.index(true_label) + 1))  # fix: confirm the true label
                assert app.store.item(fixed).status == LABELLED
            await pilot.press("f5")
            export = app.screen
            await pilot.pause()
            assert export.run_dir == train.result.run_dir and export.chosen()[0] == ["onnx"]
            await pilot.click("#opt-onnx-quantize")
            await pilot.click("#fmt-torchscript")
            await pilot.press("e")
            await tui_helpers.wait_until(pilot, lambda: export.result is not None, timeout=300)
            assert export.result.error == "", export.result.error
            assert [(r["exporter"], r["variant"]) for r in export.rows] == [("onnx", "fp32"), ("onnx", "int8"), ("torchscript", "fp32")]
            assert all(r["passed"] for r in export.rows)
            run_dir = train.result.run_dir
            assert (run_dir / "exports" / "onnx" / "model.int8.onnx").is_file() and (run_dir / "exports" / "torchscript" / "model.pt").is_file()
            await pilot.press("f1", "m")
            await tui_helpers.wait_until(pilot, lambda: any(i.suggestion for i in app.store.items()), timeout=120)

    asyncio.run(scenario())
    exported = {json.loads(line)["text"] for line in project.training_file().read_text().splitlines()}
    validation = {json.loads(line)["text"] for line in (tmp_path / "valid.jsonl").read_text().splitlines()}
    assert validation & set(gold), "the toy data should share some texts between its splits"
    assert exported == set(gold) - validation  # labelled validation texts never train the model
