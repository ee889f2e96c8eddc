"""SVG snapshots of the five main screens (and the Evaluate screen's out-of-scope tab) at 100x30 (pytest-textual-snapshot; the files live in
``__snapshots__/test_tui_snapshots/``). Everything on screen is fixed: fake runs with fixed names and
figures, a fake training engine, paths shown relative to the project folder, no notifications, no
timings. After a deliberate UI change: ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant_builder.tui.app import BuilderApp
from assistant_builder.labelling.store import LabelStore

pytest.importorskip("pytest_textual_snapshot")

SIZE = (100, 30)


@pytest.fixture
def project(make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # run folders are shown relative to the current directory
    return make_project()


def fake_export(run: Path) -> None:
    """An export report as the engine writes it, with fixed figures."""
    def row(exporter: str, variant: str, metric: float, agreement: float, p50: float, size: int) -> dict[str, Any]:
        return {"exporter": exporter, "variant": variant, "path": str(run / "exports" / exporter), "size_bytes": size, "metric": "accuracy",
                "reference_metric": 0.5, "exported_metric": metric, "metric_drop": 0.5 - metric, "agreement": agreement, "max_abs_diff": 1e-6,
                "latency_batch1_ms_p50": p50, "latency_batch1_ms_p95": p50 * 1.5, "batch32_examples_per_second": 900.0,
                "passed": agreement >= 0.97, "failures": [] if agreement >= 0.97 else ["predictions agree with PyTorch on 75.00% of examples"]}
    rows = [row("onnx", "fp32", 0.5, 1.0, 2.31, 90_900_000), row("onnx", "int8", 0.5, 1.0, 1.12, 23_100_000),
            row("torchscript", "fp32", 0.5, 1.0, 3.05, 91_200_000)]
    for exporter in ("onnx", "torchscript"):
        (run / "exports" / exporter).mkdir(parents=True, exist_ok=True)
    (run / "export_report.json").write_text(json.dumps(rows))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "exports": rows, "predict_example": '"wake me at 7"'}))
    recipe = json.loads((run / "recipe.resolved.json").read_text())
    recipe["export"] = {"formats": ["onnx", "torchscript"], "options": {"onnx": {"quantize": True}},
                        "max_metric_drop": 0.02, "min_agreement": 0.97}
    (run / "recipe.resolved.json").write_text(json.dumps(recipe))


async def settle(pilot: Any) -> None:
    pilot.app.clear_notifications()
    await pilot.pause()


def test_label_screen(snap_compare: Any, project: Any, registry: Any) -> None:
    with LabelStore(project.store_path) as store:
        for label in ("alarm", "weather"):
            item = store.next_item()
            assert item is not None
            store.decide(item.id, label)
    assert snap_compare(BuilderApp(project, registry, start="label"), terminal_size=SIZE, run_before=settle)


def test_train_screen(snap_compare: Any, project: Any, registry: Any, tui_helpers: Any) -> None:
    app = BuilderApp(project, registry, engine=tui_helpers.FakeEngine(steps=40), start="train")

    async def train(pilot: Any) -> None:
        await pilot.press("t")
        await tui_helpers.wait_until(pilot, lambda: app.screen.result is not None)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=train)


def test_evaluate_screen(snap_compare: Any, project: Any, registry: Any, tui_helpers: Any) -> None:
    tui_helpers.make_run(project.runs_dir, "20260101-000000")
    app = BuilderApp(project, registry, start="evaluate")

    async def loaded(pilot: Any) -> None:
        await tui_helpers.wait_until(pilot, lambda: app.screen.evaluation is not None)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)


def test_evaluate_out_of_scope_tab(snap_compare: Any, project: Any, registry: Any, tui_helpers: Any) -> None:
    tui_helpers.make_oos_run(project.runs_dir, "20260101-000000")
    app = BuilderApp(project, registry, start="evaluate")

    async def moved(pilot: Any) -> None:
        await tui_helpers.wait_until(pilot, lambda: app.screen.evaluation is not None)
        await pilot.press("o", "right_square_bracket")  # the threshold one validation score up from the run's
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=moved)


def test_runs_screen(snap_compare: Any, project: Any, registry: Any, tui_helpers: Any) -> None:
    fake_export(tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True))
    tui_helpers.make_run(project.runs_dir, "20260102-000000", rows=[("a", "alarm", "alarm", 0.9), ("b", "music", "music", 0.9)])
    assert snap_compare(BuilderApp(project, registry, start="runs"), terminal_size=SIZE, run_before=settle)


def test_export_screen(snap_compare: Any, project: Any, registry: Any, tui_helpers: Any) -> None:
    fake_export(tui_helpers.make_run(project.runs_dir, "20260101-000000", onnx=True))
    assert snap_compare(BuilderApp(project, registry, start="export"), terminal_size=SIZE, run_before=settle)
