"""The Export screen: a real tiny run exported again with other formats and int8 (files, merged report,
the predict/serve commands), failures shown instead of raised, and the Runs screen's ``x``.
Also ``engine.reexport.export_run`` itself: its option checks and report merging."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Select

from assistant_builder.callbacks import ExportVerified, StageStarted
from assistant_builder.engine.reexport import export_run
from assistant_builder.errors import ConfigError, ExportVerificationError
from assistant_builder.testing import write_intent_data
from assistant_builder.tui.app import BuilderApp
from assistant_builder.tui.project import open_project
from assistant_builder.tui.screens.export import ExportScreen
from assistant_builder.tui.widgets.tick_box import TickBox


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def trained(tmp_path: Path, write_recipe: Any, registry: Any) -> tuple[Any, Path]:
    """A project whose one finished run (tiny model, 1 epoch) was exported to TorchScript only."""
    from assistant_builder.engine import run
    from assistant_builder.recipe.loader import load_recipe

    write_intent_data(tmp_path, per_label=6, seed=3)
    recipe = write_recipe(
        tmp_path, name="exp", task={"type": "classification", "options": {"label_field": "intent"}},
        data={"train": "train.jsonl", "validation": "valid.jsonl"}, train={"epochs": 1, "batch_size": 8},
        export={"formats": ["torchscript"], "max_metric_drop": 1.0, "min_agreement": 0.0}, output={"runs_dir": "runs"},
    )
    result = run(load_recipe(recipe, registry=registry), registry)
    return open_project(recipe, registry), result.run_dir


def test_export_screen_exports_verifies_and_shows_the_report(trained: tuple[Any, Path], registry: Any, tui_helpers: Any,
                                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    project, run_dir = trained
    monkeypatch.chdir(tmp_path)

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="export")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, ExportScreen)
            await pilot.pause()
            assert screen.run_dir == run_dir and screen.query_one(Select).value == run_dir
            # the recipe exported torchscript at training time: ticked, and its report row is shown
            assert screen.chosen() == (["torchscript"], {"torchscript": {"strict": False}})
            assert [r[:2] for r in rows(screen.query_one(DataTable))] == [["torchscript", "fp32"]]
            assert screen.query_one("#opt-onnx-quantize", TickBox).disabled  # onnx is not ticked yet
            for box in ("#fmt-torchscript", "#fmt-onnx", "#opt-onnx-quantize"):
                await pilot.click(box)
            formats, options = screen.chosen()
            assert formats == ["onnx"] and options["onnx"]["quantize"] is True
            await pilot.press("e")
            assert screen.worker is not None  # (it may already be done: the tiny model exports in a second)
            if screen.busy:
                assert screen.query_one("#fmt-onnx", TickBox).disabled
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None, timeout=120)
            await pilot.pause()
            assert screen.result.error == "", screen.result.error
            table = rows(screen.query_one(DataTable))
            # onnx exported now (fp32 + int8), the earlier torchscript export kept
            assert [r[:2] for r in table] == [["onnx", "fp32"], ["onnx", "int8"], ["torchscript", "fp32"]]
            assert all(r[-1] == "pass" for r in table) and table[0][4] == "100.0%"
            text = " ".join(tui_helpers.screen_text(app).split())
            name = run_dir.name
            assert f"onnx (fp32+int8): runs/{name}/exports/onnx" in text
            assert f'builder predict runs/{name} "your text here"' in text and f"builder serve runs/{name}" in text
            assert "✓ exported and verified" in text and not screen.query_one("#fmt-onnx", TickBox).disabled

    asyncio.run(scenario())
    assert (run_dir / "exports" / "onnx" / "model.onnx").is_file() and (run_dir / "exports" / "onnx" / "model.int8.onnx").is_file()
    assert (run_dir / "exports" / "torchscript" / "model.pt").is_file()
    report = json.loads((run_dir / "export_report.json").read_text())
    assert [(r["exporter"], r["variant"]) for r in report] == [("onnx", "fp32"), ("onnx", "int8"), ("torchscript", "fp32")]
    assert json.loads((run_dir / "summary.json").read_text())["exports"] == report
    assert "| onnx | int8 |" in (run_dir / "export_report.md").read_text()
    manifest = json.loads((run_dir / "exports" / "onnx" / "manifest.json").read_text())
    assert set(manifest["models"]) == {"fp32", "int8"}


def test_export_run_checks_formats_and_options(trained: tuple[Any, Path], registry: Any) -> None:
    _, run_dir = trained
    with pytest.raises(ConfigError) as error:
        export_run(run_dir, registry, ["onnx", "tflite"], {"onnx": {"quantise": True}})
    message = error.value.render()
    assert "export.formats[1]" in message and "tflite" in message and "export.options.onnx" in message and "quantise" in message
    with pytest.raises(ConfigError, match="at least one format"):
        export_run(run_dir, registry, [])
    events: list[Any] = []

    class Record:
        def __getattr__(self, name: str) -> Any:
            return lambda event: events.append(event)

    outcome = export_run(run_dir, registry, None, None, [Record()])  # the recipe's own formats: torchscript
    assert [(r.exporter, r.variant, r.passed) for r in outcome.reports] == [("torchscript", "fp32", True)]
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["load data", "load model", "reference", "export"]
    assert [e.exporter for e in events if isinstance(e, ExportVerified)] == ["torchscript"]


def test_a_run_without_a_model_is_an_error_on_screen(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    run = tui_helpers.make_run(project.runs_dir, "20260101-000000")  # metrics and summary, but no saved model

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="export")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.pause()
            assert screen.run_dir == run and "not exported yet" in tui_helpers.screen_text(app)
            await pilot.press("e")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            await pilot.pause()
            assert "no trained model to export" in screen.result.error
            assert "no trained model to export" in " ".join(tui_helpers.screen_text(app).split())
            assert not screen.busy and not screen.query_one(Select).disabled

    asyncio.run(scenario())


def test_verification_failure_names_the_variant(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    tui_helpers.make_run(project.runs_dir, "20260101-000000")
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def exporter(run_dir: Path, registry: Any, formats: list[str], options: dict[str, Any], callbacks: list[Any]) -> Any:
        calls.append((formats, options))
        failing = {"exporter": "onnx", "variant": "int8", "metric": "accuracy", "reference_metric": 0.9, "exported_metric": 0.8,
                   "metric_drop": 0.1, "agreement": 0.85, "latency_batch1_ms_p50": 1.0, "size_bytes": 2_000_000, "passed": False,
                   "failures": ["accuracy dropped by 0.1000 (0.9000 -> 0.8000); allowed: export.max_metric_drop = 0.01"]}
        for callback in callbacks:
            callback.on_stage_start(StageStarted("export", "onnx"))
            callback.on_export_verified(ExportVerified("onnx", "int8", run_dir / "exports/onnx/model.int8.onnx", failing, False))
        (run_dir / "export_report.json").write_text(json.dumps([failing]))
        raise ExportVerificationError("1 export(s) broke the recipe's thresholds")

    async def scenario() -> None:
        app = BuilderApp(project, registry, exporter=exporter, start="export")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.pause()
            await pilot.click("#opt-onnx-quantize")
            await pilot.press("e")
            await tui_helpers.wait_until(pilot, lambda: screen.result is not None)
            await pilot.pause()
            assert screen.result.verification_failed
            assert rows(screen.query_one(DataTable)) == [["onnx", "int8", "0.9000", "0.8000", "85.0%", "1.00", "2.0", "FAIL"]]
            text = " ".join(tui_helpers.screen_text(app).split())
            assert "onnx/int8 failed: accuracy dropped by 0.1000" in text and "verification failed" in text
            assert "builder predict and builder serve read the onnx export" in text  # nothing usable was exported

    asyncio.run(scenario())
    assert calls == [(["onnx"], {"onnx": {"optimize": False, "quantize": True, "per_channel": True, "quantize_embeddings": False, "accuracy_aware": True}})]


def test_runs_screen_x_opens_that_run_for_export(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()
    old = tui_helpers.make_run(project.runs_dir, "20260101-000000")
    tui_helpers.make_run(project.runs_dir, "20260102-000000")

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="runs")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            await pilot.pause()
            await pilot.press("down", "x")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ExportScreen)
            assert screen.run_dir == old and screen.query_one(Select).value == old
            await pilot.press("f4", "up", "x")
            await pilot.pause()
            assert app.screen is screen and screen.run_dir != old

    asyncio.run(scenario())


def test_without_runs_the_screen_says_what_to_do(make_project: Any, registry: Any, tui_helpers: Any) -> None:
    project = make_project()

    async def scenario() -> None:
        app = BuilderApp(project, registry, start="export")
        async with app.run_test(size=tui_helpers.SIZE) as pilot:
            screen = app.screen
            await pilot.press("e")
            await pilot.pause()
            assert screen.run_dir is None and screen.worker is None
            text = tui_helpers.screen_text(app)
            assert "No finished run yet: train one (F2)" in text and "gates:" not in text

    asyncio.run(scenario())
